//! The fault vocabulary's shape: what every fault is, as data ([`Declared`]: a name in plain
//! words, how long it lasts by default, what it needs, its [`Effects`], what it can leave
//! behind) and what it does ([`FaultKind`]: a one-line description, what clients should see
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
    /// The hosts the cluster runs on (the lab's containers today), through the `Host` seam.
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

/// What a fault does to the cluster beyond its steps: what the runner, the phases' predictions,
/// the probe's settings and the soak's draw plan around.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Effects {
    /// The leader can neither renew nor release its lock, so the lock leaves it when the lease
    /// it had at the injection runs out (the prediction of the window's lock phase).
    pub lock_expires: bool,
    /// The leader's own Patroni mends it on its next HA loop (a crashed postmaster started
    /// again): the member comes back then (the phases' prediction).
    pub mended_on_next_loop: bool,
    /// Drawn by the soak by default. A fault that makes a split brain or loses writes on
    /// purpose is not: a soak is a claim that nothing is lost.
    pub in_soak: bool,
    /// Clients the probe keeps on the leader's own address besides the others (to see what a
    /// leader that lost its lock still acknowledges).
    pub pinned_clients: u32,
    /// Clients also read on the reader endpoint (`--readers`) whatever the command line says:
    /// the fault is about what readers see.
    pub needs_readers: bool,
}

impl Effects {
    /// A fault that does nothing beyond its steps, and that the soak draws.
    pub const PLAIN: Effects = Effects {
        lock_expires: false,
        mended_on_next_loop: false,
        in_soak: true,
        pinned_clients: 0,
        needs_readers: false,
    };
}

/// What a fault is, as data: everything the registry, `scenario list`, the runner, the soak,
/// the matrix and the doctor need to know of it without running it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Declared {
    /// Its name, in plain words (kebab-case): `kill-leader`.
    pub name: &'static str,
    /// How long it lasts by default (`None`: it does not last; `--secs` is refused).
    pub default_secs: Option<u64>,
    pub needs: Needs,
    /// How a live setting sets the window's bound, when one does ("ttl + 15 s").
    pub bound_rule: Option<&'static str>,
    pub effects: Effects,
    /// What it can leave behind when its undo never ran, as the doctor names it
    /// (`patroni_lab_cluster::findings::leftover`).
    pub leftovers: &'static [&'static str],
}

/// One fault, in one file under `crate::faults`: its declaration, and what it does.
pub trait FaultKind: Sync {
    /// What it is, as data.
    fn declared(&self) -> Declared;
    /// What it does, in one line (`secs`: how long, for a fault that lasts).
    fn describe(&self, secs: Option<u64>) -> String;
    /// What clients should see, from measurements here with a margin; where a Patroni setting
    /// sets the bound, from the live `timing`. Starts from [`Expectations::base`].
    fn expectations(&self, secs: Option<u64>, timing: Timing) -> Expectations;
    /// Client settings the fault needs; returns what it changed, for the report.
    fn adjust_probe(&self, _probe: &mut patroni_lab_probe::settings::Settings) -> Option<String> {
        None
    }
    /// Injects the fault, proves it took effect, holds it, and undoes it (guards: the undo also
    /// runs on failure, panic and signals), recording each step. Blocking.
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError>;
}
