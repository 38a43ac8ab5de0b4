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
    /// `synchronous_mode` on: a commit waits for a replica (a fault that cuts the leader from
    /// its replicas then stalls writers).
    pub synchronous: bool,
}

impl Timing {
    /// The lab's defaults (.env.example, profiles/default.ini).
    pub const DEFAULT: Timing = Timing {
        ttl: 30,
        loop_wait: 10,
        synchronous: false,
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
            synchronous: patroni_lab_cluster::cluster::synchronous_on(config),
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
    /// How long it is held, and its parameters' values.
    pub args: Args,
    pub stopped: &'a dyn Fn() -> bool,
}

impl Ctx<'_> {
    /// Records a step on the timeline.
    pub fn step(&self, what: impl Into<String>) {
        self.timeline.record(Source::Fault, what);
    }

    /// How long a lasting fault is held (0 for one that does not last).
    pub fn duration(&self) -> Duration {
        Duration::from_secs(self.args.secs.unwrap_or(0))
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
    /// A row of the matrix by default (`patroni-lab matrix` without `--scenarios`): the faults
    /// whose outcome a profile changes, within the matrix's time.
    pub in_matrix: bool,
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
        in_matrix: false,
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
    /// The parameters it takes besides its hold (at most [`MAX_PARAMS`]), in the order they
    /// are listed; written after its name in any order (`partition-leader:etcd:30s`).
    pub params: &'static [Param],
    /// What it can leave behind when its undo never ran, as the doctor names it
    /// (`patroni_lab_cluster::findings::leftover`).
    pub leftovers: &'static [&'static str],
}

/// The most parameters one fault takes besides its hold (a unit test holds every fault to it).
pub const MAX_PARAMS: usize = 4;

/// A parameter a fault takes besides its hold, declared with it ([`Declared::params`]) and
/// written after its name in the one grammar every place that names a fault shares (the
/// command line, a sequence's step, the soak's `--faults`, the matrix's rows):
/// `partition-leader:etcd:30s`. A written part is matched to the parameter whose form it has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    /// Its name, for the help and the errors (`from`).
    pub name: &'static str,
    pub kind: ParamKind,
    /// Its value when the fault is written without it.
    pub default: Value,
    /// What it means, in a few words.
    pub help: &'static str,
}

/// A parameter's form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// The part of the cluster the fault acts on, or cuts the leader from: one of these words.
    Target(&'static [&'static str]),
    /// A path between two parts of the cluster: one of these words (`leader-etcd`).
    Link(&'static [&'static str]),
    /// A share from 1 to 100 (none would be no fault): `30%`.
    Percentage,
    /// Bits per second: `1mbit`, `256kbit`, `64000bit`.
    Rate,
    /// Whole milliseconds from 1 to 60000: `200ms` (a hold is whole seconds: `20s`).
    Delay,
}

/// A parameter's value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Value {
    /// One of a target's or a link's words.
    Word(&'static str),
    Percent(u8),
    BitsPerSecond(u64),
    Millis(u32),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match *self {
            Value::Word(w) => f.write_str(w),
            Value::Percent(p) => write!(f, "{p}%"),
            Value::BitsPerSecond(b) if b > 0 && b % 1_000_000_000 == 0 => {
                write!(f, "{}gbit", b / 1_000_000_000)
            }
            Value::BitsPerSecond(b) if b > 0 && b % 1_000_000 == 0 => {
                write!(f, "{}mbit", b / 1_000_000)
            }
            Value::BitsPerSecond(b) if b > 0 && b % 1_000 == 0 => write!(f, "{}kbit", b / 1_000),
            Value::BitsPerSecond(b) => write!(f, "{b}bit"),
            Value::Millis(ms) => write!(f, "{ms}ms"),
        }
    }
}

impl ParamKind {
    /// The value `part` is for this form, if it has the form (`None`: another form).
    pub fn read(&self, part: &str) -> Option<Result<Value, String>> {
        match self {
            ParamKind::Target(words) | ParamKind::Link(words) => words
                .iter()
                .find(|w| **w == part)
                .map(|w| Ok(Value::Word(w))),
            ParamKind::Percentage => part.strip_suffix('%').map(|n| match n.parse::<u8>() {
                Ok(p) if (1..=100).contains(&p) => Ok(Value::Percent(p)),
                _ => Err(format!("'{part}' is not a percentage from 1% to 100%")),
            }),
            ParamKind::Delay => part.strip_suffix("ms").map(|n| match n.parse::<u32>() {
                Ok(ms) if (1..=60_000).contains(&ms) => Ok(Value::Millis(ms)),
                _ => Err(format!("'{part}' is not a delay from 1ms to 60000ms")),
            }),
            ParamKind::Rate => {
                let (n, unit) = ["gbit", "mbit", "kbit", "bit"]
                    .iter()
                    .find_map(|u| part.strip_suffix(u).map(|n| (n, *u)))?;
                let scale: u64 = match unit {
                    "gbit" => 1_000_000_000,
                    "mbit" => 1_000_000,
                    "kbit" => 1_000,
                    _ => 1,
                };
                Some(
                    n.parse::<u64>()
                        .ok()
                        .and_then(|n| n.checked_mul(scale))
                        .filter(|b| *b > 0)
                        .map(Value::BitsPerSecond)
                        .ok_or_else(|| {
                            format!("'{part}' is not a rate (a whole number and bit, kbit, mbit or gbit)")
                        }),
                )
            }
        }
    }

    /// The form in words, for the help and the errors.
    pub fn form(&self) -> String {
        match self {
            ParamKind::Target(words) | ParamKind::Link(words) => words.join("|"),
            ParamKind::Percentage => "N%".into(),
            ParamKind::Rate => "N(bit|kbit|mbit|gbit)".into(),
            ParamKind::Delay => "Nms".into(),
        }
    }
}

/// A written fault's arguments: how long it is held (a fault that lasts) and each declared
/// parameter's value (given, or its default).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Args {
    pub secs: Option<u64>,
    values: [Option<(&'static str, Value)>; MAX_PARAMS],
}

impl Args {
    /// A fault's arguments: `secs`, and every parameter at its default.
    pub fn defaults(declared: &Declared, secs: Option<u64>) -> Self {
        let mut args = Args {
            secs,
            ..Args::default()
        };
        for (slot, p) in args.values.iter_mut().zip(declared.params) {
            *slot = Some((p.name, p.default));
        }
        args
    }

    /// The value of the parameter `name` (`None`: the fault declares no such parameter).
    pub fn get(&self, name: &str) -> Option<Value> {
        self.values
            .iter()
            .flatten()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }

    /// The word of the target or link parameter `name`.
    pub fn word(&self, name: &str) -> Option<&'static str> {
        match self.get(name)? {
            Value::Word(w) => Some(w),
            _ => None,
        }
    }

    /// The word of the target or link parameter `param`: the one written, else its declared
    /// default (the default lives in the declaration only). A parameter whose default is no
    /// word names none: `""`.
    pub fn word_of(&self, param: &Param) -> &'static str {
        match self.get(param.name).unwrap_or(param.default) {
            Value::Word(w) => w,
            _ => "",
        }
    }

    /// Sets the parameter `name`; `false` when it was given already (its default aside).
    fn set(&mut self, name: &str, value: Value, given: &mut [bool; MAX_PARAMS]) -> bool {
        let found = self
            .values
            .iter_mut()
            .enumerate()
            .find_map(|(i, slot)| slot.as_mut().filter(|(n, _)| *n == name).map(|s| (i, s)));
        match found {
            Some((i, (_, v))) if !given[i] => {
                given[i] = true;
                *v = value;
                true
            }
            _ => false,
        }
    }

    /// Its parameters as they are written after the fault's name, each with its `:` (the
    /// declared order; those at their default left out).
    pub fn written(&self, declared: &Declared) -> String {
        declared
            .params
            .iter()
            .filter_map(|p| self.get(p.name).filter(|v| *v != p.default))
            .map(|v| format!(":{v}"))
            .collect()
    }

    /// Reads the written parts that are not seconds into the declared parameters: each part
    /// goes to the parameter whose form it has; a part no parameter takes, or a parameter
    /// given twice, is refused naming what the fault does take.
    pub fn read(declared: &Declared, secs: Option<u64>, parts: &[&str]) -> Result<Self, String> {
        let mut args = Args::defaults(declared, secs);
        let mut given = [false; MAX_PARAMS];
        for part in parts {
            let mut matched = None;
            for p in declared.params {
                if let Some(v) = p.kind.read(part) {
                    matched = Some((p, v?));
                    break;
                }
            }
            let Some((p, v)) = matched else {
                let mut takes: Vec<String> = declared
                    .params
                    .iter()
                    .map(|p| format!("{} ({})", p.name, p.kind.form()))
                    .collect();
                if declared.default_secs.is_some() {
                    takes.push("the seconds it is held".into());
                }
                let takes = match takes.len() {
                    0 => "it takes no parameter".to_string(),
                    1 if declared.params.is_empty() => format!("it takes only {}", takes[0]),
                    _ => format!("it takes {}", takes.join(", ")),
                };
                return Err(format!("{} takes no '{part}'; {takes}", declared.name));
            };
            if !args.set(p.name, v, &mut given) {
                return Err(format!("its {} is given twice", p.name));
            }
        }
        Ok(args)
    }
}

/// One fault, in one file under `crate::faults`: its declaration, and what it does.
pub trait FaultKind: Sync {
    /// What it is, as data.
    fn declared(&self) -> Declared;
    /// What it does, in one line (`args.secs`: how long, for a fault that lasts).
    fn describe(&self, args: &Args) -> String;
    /// What clients should see, from measurements here with a margin; where a Patroni setting
    /// sets the bound, from the live `timing`. Starts from [`Expectations::base`].
    fn expectations(&self, args: &Args, timing: Timing) -> Expectations;
    /// What it does beyond its steps with these arguments (a parameter may change it: a leader
    /// cut from its replicas only keeps its lock); the declared [`Effects`] unless it says.
    fn effects(&self, _args: &Args) -> Effects {
        self.declared().effects
    }
    /// Client settings the fault needs; returns what it changed, for the report.
    fn adjust_probe(&self, _probe: &mut patroni_lab_probe::settings::Settings) -> Option<String> {
        None
    }
    /// Whether the cluster's hosts have what the fault needs, asked before anything is done
    /// (read-only, or on something of our own made and removed at once); the refusal, in one
    /// line naming the host and what it lacks.
    fn preflight(&self, _lab: &patroni_lab_cluster::lab::Lab, _args: &Args) -> Result<(), String> {
        Ok(())
    }
    /// Injects the fault, proves it took effect, holds it, and undoes it (guards: the undo also
    /// runs on failure, panic and signals), recording each step. Blocking.
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_form_reads_its_own_parts_and_refuses_a_bad_value() {
        let target = ParamKind::Target(&["etcd", "replicas"]);
        assert_eq!(target.read("etcd"), Some(Ok(Value::Word("etcd"))));
        assert_eq!(target.read("30%"), None);
        assert_eq!(
            ParamKind::Percentage.read("30%"),
            Some(Ok(Value::Percent(30)))
        );
        assert_eq!(
            ParamKind::Percentage.read("100%"),
            Some(Ok(Value::Percent(100)))
        );
        assert!(matches!(ParamKind::Percentage.read("0%"), Some(Err(_))));
        assert!(matches!(ParamKind::Percentage.read("101%"), Some(Err(_))));
        assert!(matches!(ParamKind::Percentage.read("x%"), Some(Err(_))));
        assert_eq!(ParamKind::Percentage.read("etcd"), None);
        for (text, bits) in [
            ("1mbit", 1_000_000),
            ("256kbit", 256_000),
            ("64500bit", 64_500),
            ("2gbit", 2_000_000_000),
        ] {
            assert_eq!(
                ParamKind::Rate.read(text),
                Some(Ok(Value::BitsPerSecond(bits)))
            );
            // Written back as read.
            assert_eq!(Value::BitsPerSecond(bits).to_string(), text);
        }
        for bad in ["0bit", "1.5mbit", "mbit"] {
            assert!(matches!(ParamKind::Rate.read(bad), Some(Err(_))), "{bad}");
        }
        assert_eq!(ParamKind::Rate.read("30%"), None);
        assert_eq!(Value::Percent(30).to_string(), "30%");
    }

    const DECLARED: Declared = Declared {
        name: "lossy-example",
        default_secs: Some(20),
        needs: Needs::Containers,
        bound_rule: None,
        effects: Effects::PLAIN,
        params: &[
            Param {
                name: "link",
                kind: ParamKind::Link(&["leader-etcd", "leader-replica"]),
                default: Value::Word("leader-etcd"),
                help: "which link",
            },
            Param {
                name: "loss",
                kind: ParamKind::Percentage,
                default: Value::Percent(10),
                help: "packets dropped",
            },
        ],
        leftovers: &[],
    };

    #[test]
    fn written_parts_go_to_the_parameter_of_their_form_in_any_order() {
        let a = Args::read(&DECLARED, Some(5), &["30%", "leader-replica"]).unwrap();
        let b = Args::read(&DECLARED, Some(5), &["leader-replica", "30%"]).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.get("loss"), Some(Value::Percent(30)));
        assert_eq!(a.word("link"), Some("leader-replica"));
        assert_eq!(a.written(&DECLARED), ":leader-replica:30%");
        // Not given: the default, and not written.
        let d = Args::read(&DECLARED, Some(5), &[]).unwrap();
        assert_eq!(d.word("link"), Some("leader-etcd"));
        assert_eq!(d.written(&DECLARED), "");
        assert_eq!(d.get("nope"), None);
        for (parts, why) in [
            (&["30%", "40%"][..], "its loss is given twice"),
            (
                &["leader-pgbouncer"][..],
                "lossy-example takes no 'leader-pgbouncer'; it takes link (leader-etcd|leader-replica), loss (N%), the seconds it is held",
            ),
            (&["130%"][..], "'130%' is not a percentage from 1% to 100%"),
        ] {
            assert_eq!(Args::read(&DECLARED, None, parts).unwrap_err(), why);
        }
    }
}
