//! Sequences of faults: `switchover,+1.5s,stop-leader` runs its steps in order, each fault on
//! whoever leads when it starts, with the delays between them and no wait for a whole cluster
//! in between (ordinary operations a few seconds apart are what break clusters). Graded and
//! reported like any scenario; each step is on the fault timeline. A sequence given on the
//! command line lives for the whole command (its kind is leaked once, as a registry entry is
//! static).

use std::time::Duration;

use patroni_lab_probe::settings::parse_duration;

use super::Fault;
use crate::fault::steps::hold;
use crate::fault::{Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;
use patroni_lab_cluster::cluster;

/// One step of a sequence.
#[derive(Debug, Clone, Copy)]
pub enum Step {
    Fault(Fault),
    Delay(Duration),
}

/// The longest delay between two steps.
const MAX_DELAY: Duration = Duration::from_secs(600);
/// How long a step waits for someone to hold the leader key before it acts on them.
const LEADER_WAIT: Duration = Duration::from_secs(60);

/// A parsed sequence.
pub struct Sequence {
    pub name: &'static str,
    pub steps: Vec<Step>,
    /// Its declaration, worked out once from its steps' ([`declared`]).
    pub declared: Declared,
}

impl Sequence {
    /// `fault[:secs],+delay,fault...`: at least two faults, delays as durations with a `+`.
    pub fn parse(text: &str) -> Result<Self, FaultError> {
        let bad = |why: String| {
            FaultError::Step(format!(
                "{text}: {why} (a sequence is faults and +delays, comma-separated: switchover,+1.5s,stop-leader)"
            ))
        };
        let mut steps = Vec::new();
        for part in text.split(',').map(str::trim) {
            if let Some(d) = part.strip_prefix('+') {
                let d = parse_duration(d).map_err(|e| bad(format!("{part}: {e}")))?;
                if d > MAX_DELAY {
                    return Err(bad(format!(
                        "{part} is more than {} s",
                        MAX_DELAY.as_secs()
                    )));
                }
                steps.push(Step::Delay(d));
                continue;
            }
            if part.is_empty() {
                return Err(bad("an empty step".into()));
            }
            let f = Fault::from_spec(part).map_err(|e| match e {
                FaultError::Unknown(name) => bad(format!("unknown fault '{name}'")),
                e => bad(e.to_string()),
            })?;
            steps.push(Step::Fault(f));
        }
        if steps.iter().filter(|s| matches!(s, Step::Fault(_))).count() < 2 {
            return Err(bad("it needs two faults at least".into()));
        }
        let name: &'static str = Box::leak(text.replace(' ', "").into_boxed_str());
        Ok(Self {
            name,
            declared: declared(name, &steps),
            steps,
        })
    }

    fn faults(&self) -> impl Iterator<Item = &Fault> {
        self.steps.iter().filter_map(|s| match s {
            Step::Fault(f) => Some(f),
            Step::Delay(_) => None,
        })
    }

    /// Runs each step in order (see the module's doc).
    pub fn run_steps(&self, ctx: &Ctx) -> Result<(), FaultError> {
        let total = self.steps.len();
        for (i, step) in self.steps.iter().enumerate() {
            match step {
                Step::Delay(d) => {
                    ctx.step(format!(
                        "step {} of {total}: wait {:.1} s",
                        i + 1,
                        d.as_secs_f64()
                    ));
                    hold(*d, ctx.stopped)?;
                }
                Step::Fault(f) => {
                    let leader = current_leader(ctx)?;
                    ctx.step(format!(
                        "step {} of {total}: {} on {leader}",
                        i + 1,
                        f.written()
                    ));
                    f.run(ctx.lab, &leader, ctx.timeline, ctx.stopped)?;
                }
            }
        }
        Ok(())
    }
}

/// Whoever holds the leader key now (etcd's own key in the lab), waiting for a holder.
fn current_leader(ctx: &Ctx) -> Result<String, FaultError> {
    let end = std::time::Instant::now() + LEADER_WAIT;
    loop {
        if let Ok(Some(h)) = cluster::lock_holder(ctx.lab) {
            return Ok(h);
        }
        if std::time::Instant::now() >= end {
            return Err(FaultError::Step(format!(
                "nobody held the leader key within {} s for the next step",
                LEADER_WAIT.as_secs()
            )));
        }
        hold(Duration::from_millis(100), ctx.stopped)?;
    }
}

impl FaultKind for Sequence {
    fn declared(&self) -> Declared {
        self.declared
    }
    fn describe(&self, _: &Args) -> String {
        describe(&self.steps)
    }
    fn expectations(&self, _: &Args, timing: Timing) -> Expectations {
        expectations(self.faults(), timing)
    }
    /// Every step's client settings, in order; what each changed.
    fn adjust_probe(&self, probe: &mut patroni_lab_probe::settings::Settings) -> Option<String> {
        let notes: Vec<String> = self
            .faults()
            .filter_map(|f| f.adjust_probe(probe))
            .collect();
        (!notes.is_empty()).then(|| notes.join("; "))
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        self.run_steps(ctx)
    }
}

/// A sequence's declaration, from its steps': it needs what its steps need; the lease read at
/// the injection is the first step's, so the lock's prediction is its; as many pinned clients
/// as the step that needs most; readers if any step needs them; whatever any step can leave
/// behind. Never in the soak's draw (a soak draws single faults). Worked out once per
/// sequence: its leftovers live as long as the program.
pub fn declared(name: &'static str, steps: &[Step]) -> Declared {
    let faults: Vec<(Declared, Effects)> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Fault(f) => Some((f.declared(), f.effects())),
            Step::Delay(_) => None,
        })
        .collect();
    let first = faults.first().map(|(_, e)| *e).unwrap_or(Effects::PLAIN);
    let mut leftovers: Vec<&'static str> = Vec::new();
    for l in faults.iter().flat_map(|(d, _)| d.leftovers.iter()) {
        if !leftovers.contains(l) {
            leftovers.push(l);
        }
    }
    Declared {
        name,
        default_secs: None,
        needs: needs(steps),
        bound_rule: None,
        effects: Effects {
            lock_expires: first.lock_expires,
            mended_on_next_loop: first.mended_on_next_loop,
            in_soak: false,
            in_matrix: false,
            pinned_clients: faults
                .iter()
                .map(|(_, e)| e.pinned_clients)
                .max()
                .unwrap_or(0),
            needs_readers: faults.iter().any(|(_, e)| e.needs_readers),
        },
        params: &[],
        leftovers: Box::leak(leftovers.into_boxed_slice()),
    }
}

/// "switchover, then after 1.5 s stop-leader: each on whoever leads then, ...".
pub fn describe(steps: &[Step]) -> String {
    let mut out = String::new();
    for s in steps {
        match s {
            Step::Fault(f) if out.is_empty() => out.push_str(&f.written()),
            Step::Fault(f) => out.push_str(&format!(" {}", f.written())),
            Step::Delay(d) => out.push_str(&format!(", then after {} s", d.as_secs_f64())),
        }
    }
    out + ": each fault on whoever leads then, no wait for a whole cluster in between"
}

/// The strongest need of the steps (containers over PgBouncer's console over REST only).
pub fn needs(steps: &[Step]) -> Needs {
    let all: Vec<Needs> = steps
        .iter()
        .filter_map(|s| match s {
            Step::Fault(f) if f.needs_containers() => Some(Needs::Containers),
            Step::Fault(f) if f.needs_pgbouncer() => Some(Needs::PgbouncerAdmin),
            Step::Fault(_) => Some(Needs::Rest),
            Step::Delay(_) => None,
        })
        .collect();
    [Needs::Containers, Needs::PgbouncerAdmin]
        .into_iter()
        .find(|n| all.contains(n))
        .unwrap_or(Needs::Rest)
}

/// Each step may cost its own window, stall, failed and in-doubt writes: their sums bound the
/// sequence's (a limit only where every step has one; a step that does not bound a figure
/// leaves it unbounded), and the cluster has each step's time to be whole again. Nothing lost,
/// no split brain, no old leader's write after it lost the lock: the strictest of the steps.
pub fn expectations<'a>(faults: impl Iterator<Item = &'a Fault>, timing: Timing) -> Expectations {
    fn sum<T: std::ops::Add<Output = T>>(a: Option<T>, b: Option<T>) -> Option<T> {
        Some(a? + b?)
    }
    fn strictest<T: Ord>(a: Option<T>, b: Option<T>) -> Option<T> {
        match (a, b) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
    let mut faults = faults.map(|f| f.expectations_for(timing));
    let Some(first) = faults.next() else {
        return Expectations::base();
    };
    faults.fold(first, |e, x| Expectations {
        max_window: sum(e.max_window, x.max_window),
        max_stall: sum(e.max_stall, x.max_stall),
        max_failed: sum(e.max_failed, x.max_failed),
        max_in_doubt: sum(e.max_in_doubt, x.max_in_doubt),
        max_lost: strictest(e.max_lost, x.max_lost),
        max_split_brain: strictest(e.max_split_brain, x.max_split_brain),
        max_old_leader_writes: strictest(e.max_old_leader_writes, x.max_old_leader_writes),
        whole_within: e.whole_within + x.whole_within,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sequence_parses_its_faults_and_delays_or_says_what_is_wrong() {
        let s = Sequence::parse("switchover, +1.5s ,stop-leader").unwrap();
        assert_eq!(s.name, "switchover,+1.5s,stop-leader");
        assert_eq!(s.steps.len(), 3);
        assert!(matches!(s.steps[1], Step::Delay(d) if d == Duration::from_millis(1500)));
        assert_eq!(needs(&s.steps), Needs::Containers);
        assert_eq!(
            describe(&s.steps),
            "switchover, then after 1.5 s stop-leader: each fault on whoever leads then, no wait for a whole cluster in between"
        );
        let e = expectations(s.faults(), Timing::DEFAULT);
        assert_eq!(e.max_window, Some(Duration::from_secs(14)));
        assert_eq!(e.max_lost, Some(0));
        for (bad, why) in [
            ("switchover", "two faults at least"),
            ("switchover,+1.5s", "two faults at least"),
            ("switchover,+soon,stop-leader", "+soon"),
            ("switchover,,stop-leader", "an empty step"),
            ("switchover,nope", "unknown fault 'nope'"),
            ("switchover,+11m,stop-leader", "more than 600 s"),
        ] {
            let e = Sequence::parse(bad).err().unwrap().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
        let f = Sequence::parse("freeze-leader:5,+1s,kill-leader").unwrap();
        assert!(matches!(f.steps[0], Step::Fault(x) if x.secs() == Some(5)));
        // One grammar: a step is written as a fault alone is, with the same checks.
        for (bad, why) in [
            (
                "switchover,+1s,freeze-leader:0",
                "freeze-leader held 0 s is out of range",
            ),
            ("switchover,+1s,freeze-leader:601", "allowed 1 to 600 s"),
            ("switchover:30,+1s,stop-leader", "switchover does not last"),
            (
                "switchover,+1s,freeze-leader:20:5",
                "the seconds are given twice",
            ),
            ("switchover,+1s,freeze-leader:30%", "takes no '30%'"),
        ] {
            let e = Sequence::parse(bad).err().unwrap().to_string();
            assert!(e.contains(why), "{bad}: {e}");
        }
    }

    /// What a step needs of the run is the sequence's: a frozen Patroni's pinned clients (its
    /// split brain is seen only through them), a lag's readers, a paused switchover's client
    /// time-outs and its failed / in-doubt / stall limits.
    #[test]
    fn a_sequence_carries_every_steps_needs_and_limits() {
        let effects = |text: &str| Sequence::parse(text).unwrap().declared().effects;
        let s = effects("freeze-patroni:40,+1s,switchover");
        assert_eq!(s.pinned_clients, 2);
        assert!(s.lock_expires, "the first step's lease is the one read");
        assert!(!s.needs_readers);
        assert!(!s.in_soak);
        let s = effects("switchover,+1s,freeze-patroni:40");
        assert_eq!(s.pinned_clients, 2);
        assert!(
            !s.lock_expires,
            "the lease at the injection is a switchover's"
        );
        assert!(effects("crash-postgres,+1s,switchover").mended_on_next_loop);
        assert!(effects("switchover,+1s,lag-replica:5").needs_readers);
        // Whatever any step can leave behind, once.
        let left = Sequence::parse("stop-leader,+1s,partition-leader:5,+1s,kill-leader")
            .unwrap()
            .declared()
            .leftovers;
        assert_eq!(
            left,
            [
                patroni_lab_cluster::findings::leftover::CONTAINER_NOT_RUNNING,
                patroni_lab_cluster::findings::leftover::PACKET_FILTER_LEFT
            ]
        );

        let s = Sequence::parse("switchover-paused,+2s,switchover-paused").unwrap();
        let mut probe = patroni_lab_probe::settings::Settings::lab_defaults("host=x");
        probe.statement_timeout = Duration::from_secs(1);
        assert!(s.adjust_probe(&mut probe).is_some());
        assert!(probe.statement_timeout > Duration::from_secs(1));
        let one = Fault::parse("switchover-paused", None)
            .unwrap()
            .expectations();
        let e = s.expectations(&Args::default(), Timing::DEFAULT);
        assert_eq!(e.max_failed, Some(0));
        assert_eq!(e.max_in_doubt, Some(0));
        assert_eq!(e.max_stall, one.max_stall.map(|d| d * 2));
        // A step that bounds no failed writes leaves the sequence's unbounded.
        let e = Sequence::parse("switchover-paused,+2s,switchover")
            .unwrap()
            .expectations(&Args::default(), Timing::DEFAULT);
        assert_eq!((e.max_failed, e.max_stall), (None, None));
        let e = Sequence::parse("replica-loss:5,+1s,lag-replica:5")
            .unwrap()
            .expectations(&Args::default(), Timing::DEFAULT);
        assert_eq!(
            (e.max_failed, e.max_window),
            (Some(0), Some(Duration::from_secs(2)))
        );
    }
}
