//! The faults, one file each, and the registry: one line per fault. Everything that lists
//! faults (`scenario list`, the `--secs` help, SCENARIOS.md's table, the CLI test) reads it,
//! and [`Fault`] (a kind and, for a fault that lasts, its seconds) is what the runner, the
//! matrix and the soak pass around. Adding a fault: a file here implementing
//! [`crate::fault::FaultKind`], its line below, and its test.

use serde::{Serialize, Serializer};

use crate::fault::{Args, Declared, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;
use patroni_lab_cluster::lab::Lab;
use patroni_lab_cluster::timeline::Timeline;

macro_rules! registry {
    ($($file:ident :: $kind:ident),* $(,)?) => {
        $(mod $file;)*
        /// Every fault, in the order `scenario list` shows them.
        pub static REGISTRY: &[&dyn FaultKind] = &[$(&$file::$kind),*];
    };
}

registry! {
    switchover::Switchover,
    switchover_paused::SwitchoverPaused,
    restart_leader::RestartLeader,
    stop_leader::StopLeader,
    kill_leader::KillLeader,
    crash_postgres::CrashPostgres,
    oom_backend::OomBackend,
    freeze_leader::FreezeLeader,
    freeze_patroni::FreezePatroni,
    freeze_postmaster::FreezePostmaster,
    partition_leader::PartitionLeader,
    lossy_link::LossyLink,
    thin_link::ThinLink,
    delay_link::DelayLink,
    etcd_loss::EtcdLoss,
    freeze_etcd::FreezeEtcd,
    replica_loss::ReplicaLoss,
    lag_replica::LagReplica,
    pgbouncer_restart::PgbouncerRestart,
    haproxy_restart::HaproxyRestart,
    switchover_then_stop::SwitchoverThenStop,
}

pub mod sequence;

pub use switchover_paused::{PAUSE_DEAD_MAN, resume_after};

/// How long a lasting fault may be held, in seconds (everywhere a fault is written).
pub const SECS: std::ops::RangeInclusive<u64> = 1..=600;

/// Whole seconds, as a written fault's hold: `20`, `20s`, `2m` (`None`: not that form;
/// `Some(Err)`: a duration, but not whole seconds).
fn written_secs(p: &str) -> Option<Result<u64, String>> {
    // `200ms` is a delay's form, never a hold's.
    if !p.starts_with(|c: char| c.is_ascii_digit()) || p.ends_with("ms") {
        return None;
    }
    match patroni_lab_probe::settings::parse_duration(p) {
        Ok(d) if d.subsec_nanos() == 0 => Some(Ok(d.as_secs())),
        Ok(_) => Some(Err(format!(
            "'{p}' is a fraction of a second; the hold is whole seconds"
        ))),
        Err(_) => None,
    }
}

/// Whether a written fault (or one of a sequence's steps) gives its hold (`freeze-leader:20`),
/// so that `--secs` as well gives it twice.
pub fn hold_written(text: &str) -> bool {
    text.split([',', ':'])
        .skip(1)
        .any(|p| matches!(written_secs(p.trim()), Some(Ok(_))))
}

/// A fault as the runner uses it: its kind, and its arguments (its seconds for a fault that
/// lasts, its declared parameters' values).
#[derive(Clone, Copy)]
pub struct Fault {
    kind: &'static dyn FaultKind,
    args: Args,
}

impl PartialEq for Fault {
    fn eq(&self, other: &Self) -> bool {
        self.name() == other.name() && self.args == other.args
    }
}
impl Eq for Fault {}

/// As it is written: `partition-leader:etcd:45`.
impl std::fmt::Debug for Fault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.written())?;
        match self.args.secs {
            Some(s) => write!(f, ":{s}"),
            None => Ok(()),
        }
    }
}

/// As before the registry: `{"fault": "freeze-leader", "secs": 40}` or `{"fault": "switchover"}`;
/// a parameter given away from its default is added by its name (`"from": "etcd"`).
impl Serialize for Fault {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut m = s.serialize_map(None)?;
        m.serialize_entry("fault", self.name())?;
        if let Some(secs) = self.args.secs {
            m.serialize_entry("secs", &secs)?;
        }
        for p in self.declared().params {
            if let Some(v) = self.args.get(p.name).filter(|v| *v != p.default) {
                m.serialize_entry(p.name, &v.to_string())?;
            }
        }
        m.end()
    }
}

/// Every fault with its default duration, in the registry's order.
pub fn all() -> Vec<Fault> {
    REGISTRY
        .iter()
        .map(|k| Fault {
            kind: *k,
            args: Args::defaults(&k.declared(), k.declared().default_secs),
        })
        .collect()
}

impl Fault {
    pub fn name(&self) -> &'static str {
        self.kind.declared().name
    }

    /// What it is, as data (its needs, effects, parameters, leftovers).
    pub fn declared(&self) -> Declared {
        self.kind.declared()
    }

    /// Its name and the parameters given away from their defaults, as written
    /// (`partition-leader:etcd`), without the hold.
    pub fn written(&self) -> String {
        format!("{}{}", self.name(), self.args.written(&self.declared()))
    }

    /// What it does beyond its steps, with its arguments.
    pub fn effects(&self) -> crate::fault::Effects {
        self.kind.effects(&self.args)
    }

    /// Its parameters as a person writes them, for the Markdown table: `` `[:all\|etcd]` `` (a
    /// table cell's pipes escaped; empty when it takes none).
    pub fn params_written(&self) -> String {
        self.declared()
            .params
            .iter()
            .map(|p| format!(" `[:{}]`", p.kind.form().replace('|', "\\|")))
            .collect()
    }

    /// Its arguments: the hold and each parameter's value.
    pub fn args(&self) -> Args {
        self.args
    }

    /// The fault named `name`, with `secs` for the faults that last (their default otherwise).
    /// Seconds on a fault that does not last, or outside [`SECS`], are refused.
    pub fn parse(name: &str, secs: Option<u64>) -> Result<Self, FaultError> {
        if name.contains(',') {
            if secs.is_some() {
                return Err(FaultError::Spec(format!(
                    "{name}: a sequence takes no seconds; give them to its steps (freeze-leader:20)"
                )));
            }
            let kind: &'static dyn FaultKind =
                Box::leak(Box::new(sequence::Sequence::parse(name)?));
            return Ok(Self {
                kind,
                args: Args::default(),
            });
        }
        let kind = *REGISTRY
            .iter()
            .find(|k| k.declared().name == name)
            .ok_or_else(|| FaultError::Unknown(name.to_string()))?;
        let default = kind.declared().default_secs;
        if let Some(s) = secs {
            if default.is_none() {
                return Err(FaultError::Spec(format!(
                    "{name} does not last; it takes no seconds"
                )));
            }
            if !SECS.contains(&s) {
                return Err(FaultError::Spec(format!(
                    "{name} held {s} s is out of range: allowed {} to {} s",
                    SECS.start(),
                    SECS.end()
                )));
            }
        }
        Ok(Self {
            kind,
            args: Args::defaults(&kind.declared(), default.map(|d| secs.unwrap_or(d))),
        })
    }

    /// A fault as it is written everywhere: on the command line, as a sequence's step, in the
    /// soak's `--faults` and the matrix's rows. `name[:part]...`, or a sequence of them
    /// (`switchover,+1s,freeze-leader:20`). A part is recognised by its form: whole seconds
    /// (`20`, `20s`, `2m`, in [`SECS`]) are the hold of a fault that lasts; any other part goes
    /// to the declared parameter whose form it has (a target or a link by its word, `30%`,
    /// `1mbit`: [`crate::fault::Param`]), in any order: `partition-leader:etcd:30s`.
    pub fn from_spec(text: &str) -> Result<Self, FaultError> {
        let text = text.trim();
        if text.contains(',') {
            return Self::parse(text, None);
        }
        let mut parts = text.split(':');
        let name = parts.next().unwrap_or_default();
        let in_text = |why: String| FaultError::Spec(format!("{text}: {why}"));
        let mut secs = None;
        let mut rest = Vec::new();
        for p in parts {
            match written_secs(p) {
                Some(Ok(s)) if secs.is_none() => secs = Some(s),
                Some(Ok(_)) => return Err(in_text("the seconds are given twice".into())),
                Some(Err(why)) => {
                    // Unknown names first: "nope:0.5s" is about the name.
                    Self::parse(name, None)?;
                    return Err(in_text(why));
                }
                None => rest.push(p),
            }
        }
        let fault = Self::parse(name, secs).map_err(|e| match e {
            FaultError::Spec(why) if text != name => in_text(why),
            e => e,
        })?;
        let args = Args::read(&fault.declared(), fault.args.secs, &rest).map_err(in_text)?;
        Ok(Self { args, ..fault })
    }

    /// This fault held `secs` instead (the command line's `--secs`), with the same checks as
    /// a written one; its parameters kept.
    pub fn with_secs(self, secs: u64) -> Result<Self, FaultError> {
        let held = Self::parse(self.name(), Some(secs))?;
        let mut args = self.args;
        args.secs = held.args.secs;
        Ok(Self { args, ..self })
    }

    /// How long the fault lasts, for the faults that last.
    pub fn secs(&self) -> Option<u64> {
        self.args.secs
    }

    /// What it does, in one line.
    pub fn describe(&self) -> String {
        self.kind.describe(&self.args)
    }

    /// Whether it acts on the cluster's hosts (refused against a cluster given by URLs).
    pub fn needs_containers(&self) -> bool {
        self.declared().needs == Needs::Containers
    }

    /// Whether it needs PgBouncer's admin console (given with `--pgbouncer` outside the lab).
    pub fn needs_pgbouncer(&self) -> bool {
        self.declared().needs == Needs::PgbouncerAdmin
    }

    /// Whether the cluster's hosts have what it needs (before anything is done): the refusal
    /// in one line.
    pub fn preflight(&self, lab: &Lab) -> Result<(), String> {
        self.kind.preflight(lab, &self.args)
    }

    /// Client settings the scenario needs; returns what it changed (`None`: nothing).
    pub fn adjust_probe(
        &self,
        probe: &mut patroni_lab_probe::settings::Settings,
    ) -> Option<String> {
        self.kind.adjust_probe(probe)
    }

    /// What it expects under the default timing, in one line, with the rule that makes a bound
    /// follow the live settings.
    pub fn expects(&self) -> String {
        let e = self.expectations().summary();
        match self.declared().bound_rule {
            Some(rule) => e.replacen(
                ", ",
                &format!(" (window bound: {rule}, from the live settings), "),
                1,
            ),
            None => e,
        }
    }

    /// What clients should see under the default timing (ttl 30 s, loop_wait 10 s).
    pub fn expectations(&self) -> Expectations {
        self.expectations_for(Timing::DEFAULT)
    }

    /// What clients should see under the live `timing`. Flags override each.
    /// The fault's expectations under `timing`. "Whole again" is measured from the injection,
    /// so its limit has the fault's hold in it: the kind's own figure is for after the hold
    /// (a 120 s `replica-loss` is not a failure to come back).
    pub fn expectations_for(&self, timing: Timing) -> Expectations {
        let mut e = self.kind.expectations(&self.args, timing);
        e.whole_within += std::time::Duration::from_secs(self.args.secs.unwrap_or(0));
        e
    }

    /// Injects the fault, proves it, holds it, and undoes it, recording each step. Blocking;
    /// `stopped` cuts a hold or a wait short (the undo still runs).
    pub fn run(
        &self,
        lab: &Lab,
        leader: &str,
        timeline: &Timeline,
        stopped: &dyn Fn() -> bool,
    ) -> Result<(), FaultError> {
        let replica = lab
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .find(|n| *n != leader)
            .ok_or_else(|| FaultError::Step("no replica to fail over to".into()))?
            .to_string();
        self.kind.run(&crate::fault::Ctx {
            lab,
            leader,
            replica,
            timeline,
            args: self.args,
            stopped,
        })
    }
}

/// The scenarios as a Markdown table (SCENARIOS.md's, generated: a test fails when it drifts).
pub fn markdown_table() -> String {
    let mut out = String::from(
        "| scenario | what it does | expected (at ttl 30 / loop_wait 10) | can leave behind (the doctor's code) |\n|---|---|---|---|\n",
    );
    for f in all() {
        let leftovers = f.declared().leftovers;
        let leftovers = if leftovers.is_empty() {
            "nothing".to_string()
        } else {
            leftovers
                .iter()
                .map(|l| format!("`{l}`"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        out.push_str(&format!(
            "| `{}`{} | {} | {} | {leftovers} |\n",
            f.name(),
            f.params_written(),
            f.describe(),
            f.expects()
        ));
    }
    out
}

/// The faults a soak draws from by default (in the registry's order: a seed's schedule stays
/// the same when a fault outside the soak is added).
pub fn soak_defaults() -> Vec<Fault> {
    all()
        .into_iter()
        .filter(|f| f.declared().effects.in_soak)
        .collect()
}

/// The matrix's rows by default (in the registry's order).
pub fn matrix_defaults() -> Vec<Fault> {
    all()
        .into_iter()
        .filter(|f| f.declared().effects.in_matrix)
        .collect()
}

/// The faults that last, with their defaults, for the `--secs` help.
pub fn lasting_defaults() -> String {
    all()
        .iter()
        .filter_map(|f| f.secs().map(|s| format!("{} {s} s", f.name())))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The soak's default draw, pinned: a seeded schedule (CI's seed 26) is the same only while
    /// this list is; a new fault that forgets `in_soak: false` fails here, not in a soak.
    /// The matrix's default rows, pinned: a fault joins them by saying so in its `DECLARED`.
    #[test]
    fn the_matrix_rows_by_default_are_the_faults_that_say_so() {
        let names: Vec<&str> = matrix_defaults().iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            [
                "switchover",
                "switchover-paused",
                "stop-leader",
                "kill-leader",
                "freeze-leader",
                "freeze-patroni",
                "partition-leader",
                "etcd-loss"
            ]
        );
    }

    #[test]
    fn the_soaks_default_draw_is_these_faults_in_this_order() {
        let names: Vec<&str> = soak_defaults().iter().map(|f| f.name()).collect();
        assert_eq!(
            names,
            [
                "switchover",
                "switchover-paused",
                "restart-leader",
                "stop-leader",
                "kill-leader",
                "crash-postgres",
                "freeze-leader",
                "partition-leader",
                "etcd-loss",
                "replica-loss",
                "pgbouncer-restart",
                "haproxy-restart",
            ]
        );
    }

    #[test]
    fn whole_again_is_allowed_the_hold_on_top_of_the_faults_own_time() {
        let whole = |spec: &str| {
            Fault::from_spec(spec)
                .unwrap()
                .expectations_for(Timing::DEFAULT)
                .whole_within
                .as_secs()
        };
        // The default holds keep the limits they had (from the injection).
        assert_eq!(whole("freeze-leader"), 120);
        assert_eq!(whole("partition-leader"), 150);
        assert_eq!(whole("etcd-loss"), 120);
        // A longer hold moves the limit with it: 120 s of replica loss is not a failure to
        // come back.
        assert_eq!(whole("replica-loss"), 90);
        assert_eq!(whole("lag-replica"), 90);
        assert_eq!(whole("replica-loss:120") - whole("replica-loss"), 110);
        assert_eq!(whole("freeze-leader:100"), 180);
    }

    #[test]
    fn every_fault_has_a_unique_name_that_parses_back() {
        for f in all() {
            assert_eq!(Fault::parse(f.name(), None).unwrap(), f);
            assert!(!f.describe().is_empty());
            assert_eq!(all().iter().filter(|g| g.name() == f.name()).count(), 1);
        }
        let freeze = Fault::parse("freeze-leader", Some(8)).unwrap();
        assert_eq!(freeze.secs(), Some(8));
        assert_eq!(
            serde_json::to_value(freeze).unwrap(),
            serde_json::json!({"fault": "freeze-leader", "secs": 8})
        );
        assert_eq!(
            serde_json::to_value(Fault::parse("switchover", None).unwrap()).unwrap(),
            serde_json::json!({"fault": "switchover"}),
        );
        assert_eq!(
            Fault::parse("switchover", Some(8)).unwrap_err().to_string(),
            "switchover does not last; it takes no seconds",
            "seconds on a fault that does not last are refused, not dropped"
        );
        assert_eq!(
            Fault::parse("nope", None).unwrap_err().to_string(),
            "unknown scenario 'nope': `patroni-lab scenario list` shows them"
        );
    }

    /// One grammar for a fault wherever it is written: the command line, a sequence's step,
    /// the soak's `--faults`, the matrix's rows.
    #[test]
    fn a_written_fault_is_checked_the_same_everywhere() {
        let f = Fault::from_spec("freeze-leader:20").unwrap();
        assert_eq!((f.name(), f.secs()), ("freeze-leader", Some(20)));
        assert_eq!(Fault::from_spec("freeze-leader:20s").unwrap(), f);
        assert_eq!(
            Fault::from_spec("freeze-leader:2m").unwrap().secs(),
            Some(120)
        );
        assert_eq!(Fault::from_spec("switchover").unwrap().secs(), None);
        assert_eq!(
            Fault::from_spec("freeze-leader")
                .unwrap()
                .with_secs(7)
                .unwrap()
                .secs(),
            Some(7)
        );
        for (bad, why) in [
            (
                "freeze-leader:0",
                "freeze-leader:0: freeze-leader held 0 s is out of range: allowed 1 to 600 s",
            ),
            ("freeze-leader:601", "allowed 1 to 600 s"),
            ("freeze-leader:1.5s", "'1.5s' is a fraction of a second"),
            (
                "switchover:30",
                "switchover:30: switchover does not last; it takes no seconds",
            ),
            ("freeze-leader:5:6", "the seconds are given twice"),
            (
                "partition-leader:30%",
                "partition-leader:30%: partition-leader takes no '30%'; it takes from (all|etcd|replicas), way (both|in|out), action (drop|reject), the seconds it is held",
            ),
            (
                "partition-leader:etcd:replicas",
                "partition-leader:etcd:replicas: its from is given twice",
            ),
            (
                "switchover:etcd",
                "switchover takes no 'etcd'; it takes no parameter",
            ),
            (
                "freeze-leader:leader-etcd",
                "freeze-leader takes no 'leader-etcd'; it takes only the seconds it is held",
            ),
            ("nope:30%", "unknown scenario 'nope'"),
            ("switchover,+1s,freeze-leader:0", "out of range"),
        ] {
            let e = Fault::from_spec(bad).err().unwrap().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        assert!(hold_written("freeze-leader:20") && hold_written("partition-leader:etcd:2m"));
        assert!(!hold_written("partition-leader:etcd") && !hold_written("switchover"));
        assert!(hold_written("switchover,+1s,freeze-leader:20"));
        assert!(!hold_written("switchover,+1s,freeze-leader"));
        // A declared parameter, in any order with the seconds; kept by `--secs`; said in the
        // report only away from its default; it changes what the fault does and expects.
        let etcd = Fault::from_spec("partition-leader:etcd:30").unwrap();
        assert_eq!(etcd, Fault::from_spec("partition-leader:30s:etcd").unwrap());
        assert_eq!(etcd.args().word("from"), Some("etcd"));
        assert_eq!(format!("{etcd:?}"), "partition-leader:etcd:30");
        assert_eq!(
            serde_json::to_value(etcd).unwrap(),
            serde_json::json!({"fault": "partition-leader", "secs": 30, "from": "etcd"})
        );
        let held = etcd.with_secs(10).unwrap();
        assert_eq!(
            (held.secs(), held.written()),
            (Some(10), "partition-leader:etcd".into())
        );
        let all = Fault::from_spec("partition-leader").unwrap();
        assert_eq!(all, Fault::from_spec("partition-leader:all").unwrap());
        assert_eq!(
            serde_json::to_value(all).unwrap(),
            serde_json::json!({"fault": "partition-leader", "secs": 45})
        );
        let replicas = Fault::from_spec("partition-leader:replicas").unwrap();
        assert!(all.effects().lock_expires && etcd.effects().lock_expires);
        assert!(!replicas.effects().lock_expires);
        assert!(replicas.describe().contains("the other members only"));
        // Under synchronous replication the cut stalls commits: no bound is claimed.
        let sync = Timing {
            synchronous: true,
            ..Timing::DEFAULT
        };
        assert_eq!(replicas.expectations_for(sync).max_window, None);
        // Every fault within the parameters' room.
        for f in super::all() {
            assert!(
                f.declared().params.len() <= crate::fault::MAX_PARAMS,
                "{}",
                f.name()
            );
        }
        assert_eq!(replicas.expectations().max_failed, Some(0));
        assert_eq!(all.expectations().max_failed, None);
        assert!(
            Fault::from_spec("switchover")
                .unwrap()
                .with_secs(3)
                .is_err()
        );
        assert!(
            Fault::from_spec("freeze-leader")
                .unwrap()
                .with_secs(0)
                .is_err()
        );
    }

    #[test]
    fn every_fault_expects_no_loss_and_no_split_brain() {
        for f in all() {
            let e = f.expectations();
            assert_eq!(e.max_lost, Some(0), "{}", f.name());
            assert_eq!(e.max_split_brain, Some(0), "{}", f.name());
            assert_eq!(e.max_old_leader_writes, Some(0), "{}", f.name());
            assert!(e.max_window.is_some(), "{}", f.name());
        }
    }

    #[test]
    fn ttl_bound_faults_are_graded_against_the_live_ttl() {
        let fast = Timing {
            ttl: 20,
            loop_wait: 5,
            synchronous: false,
        };
        let w = |name: &str, secs: Option<u64>, t: Timing| {
            Fault::parse(name, secs)
                .unwrap()
                .expectations_for(t)
                .max_window
                .unwrap()
                .as_secs()
        };
        assert_eq!(w("kill-leader", None, Timing::DEFAULT), 45);
        assert_eq!(w("kill-leader", None, fast), 35);
        assert_eq!(w("freeze-leader", Some(40), fast), 30);
        assert_eq!(w("crash-postgres", None, fast), 15);
        // A fault no setting bounds keeps its measured bound.
        assert_eq!(
            w("switchover", None, fast),
            w("switchover", None, Timing::DEFAULT)
        );
        let config = serde_json::json!({"ttl": 20, "loop_wait": 5, "retry_timeout": 3});
        assert_eq!(Timing::from_config(&config), Ok(fast));
        assert!(Timing::from_config(&serde_json::json!({})).is_err());
    }
}
