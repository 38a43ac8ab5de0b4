//! The fault vocabulary's shape: what every fault is ([`FaultKind`]: a name in plain words, a
//! one-line description, how long it lasts by default, what it needs, what clients should see
//! under the live settings, and `run`: inject, prove, hold, undo), what a fault runs in
//! ([`Ctx`]), and how it fails ([`FaultError`]). The faults themselves live one per file in
//! `crate::faults`, with the registry and the value the runner passes around.

use std::time::Duration;

use serde::Serialize;

use crate::grade::Expectations;
use patroni_lab_cluster::lab::Lab;
use patroni_lab_cluster::timeline::{Source, Timeline};

pub mod steps;

/// What a fault needs of the cluster.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Needs {
    /// Only Patroni's REST API: runs against any cluster given by URLs.
    Rest,
    /// The REST API and PgBouncer's admin console (`--pgbouncer` outside the lab).
    PgbouncerAdmin,
    /// The lab's containers (`docker`).
    Containers,
}

/// The Patroni timing that bounds what some faults cost, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timing {
    pub ttl: u64,
    pub loop_wait: u64,
}

impl Timing {
    /// The lab's defaults (.env.example, profiles/default.ini).
    pub const DEFAULT: Timing = Timing {
        ttl: 30,
        loop_wait: 10,
    };

    /// The timing in Patroni's dynamic configuration (`GET /config`).
    pub fn from_config(config: &serde_json::Value) -> Result<Self, String> {
        let secs = |k: &str| {
            config[k]
                .as_f64()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map(|v| v.ceil() as u64)
                .ok_or_else(|| format!("GET /config has no {k} ({})", config[k]))
        };
        Ok(Self {
            ttl: secs("ttl")?,
            loop_wait: secs("loop_wait")?,
        })
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FaultError {
    #[error("unknown scenario '{0}': `patroni-lab scenario list` shows them")]
    Unknown(String),
    /// A fault written wrongly (bad seconds, a parameter it does not take).
    #[error("{0}")]
    Spec(String),
    #[error("{0}")]
    Step(String),
    /// A signal cut the fault short (it was undone): the run is not a measurement of it.
    #[error("interrupted by a signal {0}; the fault was undone")]
    Interrupted(String),
    /// The fault's effect was not seen: nothing says the cluster met the fault.
    #[error("the fault was not proven: {0}")]
    Unproven(String),
    /// The fault happened (proven) and no other member took the lead: the availability
    /// failure a run exists to measure, graded (FAIL), not a step that went wrong (ERROR).
    #[error("no failover: {0}")]
    NoFailover(String),
}

/// Where a fault runs: the cluster, the leader it acts on (and the member to fail over to),
/// the timeline its steps and proofs go on, how long it lasts, and whether a signal asked to
/// stop (a hold or a wait then ends early; the undo still runs).
pub struct Ctx<'a> {
    pub lab: &'a Lab,
    pub leader: &'a str,
    pub replica: String,
    pub timeline: &'a Timeline,
    pub secs: Option<u64>,
    pub stopped: &'a dyn Fn() -> bool,
}

impl Ctx<'_> {
    /// Records a step on the timeline.
    pub fn step(&self, what: impl Into<String>) {
        self.timeline.record(Source::Fault, what);
    }

    /// How long a lasting fault is held (0 for one that does not last).
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.secs.unwrap_or(0))
    }
}

/// One fault, in one file under `crate::faults`.
pub trait FaultKind: Sync {
    /// Its name, in plain words (kebab-case): `kill-leader`.
    fn name(&self) -> &'static str;
    /// What it does, in one line (`secs`: how long, for a fault that lasts).
    fn describe(&self, secs: Option<u64>) -> String;
    /// How long it lasts by default (`None`: it does not last; `--secs` is refused).
    fn default_secs(&self) -> Option<u64> {
        None
    }
    fn needs(&self) -> Needs;
    /// What clients should see, from measurements here with a margin; where a Patroni setting
    /// sets the bound, from the live `timing`. Starts from [`Expectations::base`].
    fn expectations(&self, secs: Option<u64>, timing: Timing) -> Expectations;
    /// How a live setting sets the window's bound, when one does ("ttl + 15 s").
    fn bound_rule(&self) -> Option<&'static str> {
        None
    }
    /// Whether it leaves the leader's lock to expire: the leader can neither renew nor release
    /// it, so the lock leaves it when the lease it had at the injection runs out (the
    /// prediction of the window's lock phase, `patroni_lab_scenario::phases`).
    fn lock_expires(&self) -> bool {
        false
    }
    /// Whether the leader's own Patroni mends it on its next HA loop (a crashed postmaster
    /// started again): the member comes back then (the prediction of `patroni_lab_scenario::phases`).
    fn mended_on_next_loop(&self) -> bool {
        false
    }
    /// Whether the soak draws it by default. A fault that makes a split brain on purpose
    /// (freeze-patroni) is not: a soak is a claim that nothing is lost.
    fn in_soak(&self) -> bool {
        true
    }
    /// Clients the probe keeps on the leader's own address besides the others (to see what
    /// a leader that lost its lock still acknowledges).
    fn pinned_clients(&self) -> u32 {
        0
    }
    /// Whether clients also read on the reader endpoint (`--readers`) whatever the command
    /// line says: the fault is about what readers see.
    fn needs_readers(&self) -> bool {
        false
    }
    /// Client settings the fault needs; returns what it changed, for the report.
    fn adjust_probe(&self, _probe: &mut patroni_lab_probe::settings::Settings) -> Option<String> {
        None
    }
    /// Injects the fault, proves it took effect, holds it, and undoes it (guards: the undo also
    /// runs on failure, panic and signals), recording each step. Blocking.
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError>;
}
