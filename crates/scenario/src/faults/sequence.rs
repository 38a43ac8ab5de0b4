//! Sequences of faults: `switchover,+1.5s,stop-leader` runs its steps in order, each fault on
//! whoever leads when it starts, with the delays between them and no wait for a whole cluster
//! in between (ordinary operations a few seconds apart are what break clusters). Graded and
//! reported like any scenario; each step is on the fault timeline. A sequence given on the
//! command line lives for the whole command (its kind is leaked once, as a registry entry is
//! static).

use std::time::Duration;

use patroni_lab_probe::settings::parse_duration;

use super::Fault;
use crate::cluster;
use crate::fault::steps::hold;
use crate::fault::{Ctx, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;

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
            let (name, secs) = match part.split_once(':') {
                Some((n, s)) => (
                    n,
                    Some(
                        s.parse::<u64>()
                            .map_err(|_| bad(format!("{part}: seconds after ':'")))?,
                    ),
                ),
                None => (part, None),
            };
            if name.contains(',') || name.is_empty() {
                return Err(bad("an empty step".into()));
            }
            let f = Fault::parse(name, secs).map_err(|_| bad(format!("unknown fault '{name}'")))?;
            if f.name().contains(',') {
                return Err(bad("a sequence inside a sequence".into()));
            }
            steps.push(Step::Fault(f));
        }
        if steps.iter().filter(|s| matches!(s, Step::Fault(_))).count() < 2 {
            return Err(bad("it needs two faults at least".into()));
        }
        Ok(Self {
            name: Box::leak(text.replace(' ', "").into_boxed_str()),
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
                        f.name()
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
    fn name(&self) -> &'static str {
        self.name
    }
    fn describe(&self, _: Option<u64>) -> String {
        describe(&self.steps)
    }
    fn needs(&self) -> Needs {
        needs(&self.steps)
    }
    fn expectations(&self, _: Option<u64>, timing: Timing) -> Expectations {
        expectations(self.faults(), timing)
    }
    fn in_soak(&self) -> bool {
        false
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        self.run_steps(ctx)
    }
}

/// "switchover, then after 1.5 s stop-leader: each on whoever leads then, ...".
pub fn describe(steps: &[Step]) -> String {
    let mut out = String::new();
    for s in steps {
        match s {
            Step::Fault(f) if out.is_empty() => out.push_str(f.name()),
            Step::Fault(f) => out.push_str(&format!(" {}", f.name())),
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

/// Each step may cost its own window: their sum bounds the longest, and the cluster has each
/// step's time to be whole again. Nothing lost, no split brain, as for every fault.
pub fn expectations<'a>(faults: impl Iterator<Item = &'a Fault>, timing: Timing) -> Expectations {
    let mut e = Expectations::base();
    let mut window = Duration::ZERO;
    let mut whole = Duration::ZERO;
    for f in faults {
        let x = f.expectations_for(timing);
        window += x.max_window.unwrap_or(Duration::ZERO);
        whole += x.whole_within;
    }
    e.max_window = Some(window);
    e.whole_within = whole;
    e
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
    }
}
