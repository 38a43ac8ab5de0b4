//! `switchover-then-stop`: a switchover, and 1.5 s later the new leader stopped — before the old
//! leader streams from it. The old leader is promoted again onto a timeline with the same ID as
//! the one the stopped member made, so the write the stopped member acknowledged is lost and,
//! started again, it is a "running" replica that never streams (Patroni #1251, #2118). Other
//! delays: `scenario run switchover,+0.5s,stop-leader`.

use std::time::Duration;

use super::sequence::{self, Sequence, Step};
use super::Fault;
use crate::fault::{Args, Ctx, Declared, FaultError, FaultKind, Timing};
use crate::grade::Expectations;

pub struct SwitchoverThenStop;

const NAME: &str = "switchover-then-stop";

/// The delay of the sequence found by hand (1.7 s then).
const DELAY: Duration = Duration::from_millis(1500);

fn steps() -> Vec<Step> {
    vec![
        Step::Fault(Fault::parse("switchover", None).expect("a registered fault")),
        Step::Delay(DELAY),
        Step::Fault(Fault::parse("stop-leader", None).expect("a registered fault")),
    ]
}

impl FaultKind for SwitchoverThenStop {
    /// Its steps' declaration; it breaks the cluster on purpose, so it is not in the soak's
    /// draw (a soak claims nothing is lost).
    fn declared(&self) -> Declared {
        static ONCE: std::sync::OnceLock<Declared> = std::sync::OnceLock::new();
        *ONCE.get_or_init(|| sequence::declared(NAME, &steps()))
    }
    fn describe(&self, _: &Args) -> String {
        sequence::describe(&steps())
    }
    fn expectations(&self, _: &Args, timing: Timing) -> Expectations {
        let s = steps();
        let faults: Vec<Fault> = s
            .iter()
            .filter_map(|x| match x {
                Step::Fault(f) => Some(*f),
                Step::Delay(_) => None,
            })
            .collect();
        sequence::expectations(faults.iter(), timing)
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        Sequence {
            name: NAME,
            steps: steps(),
            declared: self.declared(),
        }
        .run_steps(ctx)
    }
}
