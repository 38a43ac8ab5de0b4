//! `kill-leader`: the leader's container killed (SIGKILL); its lock lives until it expires.
//! Started again once another member leads.

use std::time::Duration;

use crate::fault::steps::leader_down;
use crate::fault::{Ctx, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;

pub struct KillLeader;

impl FaultKind for KillLeader {
    fn name(&self) -> &'static str {
        "kill-leader"
    }
    fn describe(&self, _: Option<u64>) -> String {
        "docker kill -s KILL of the leader; started again once the other leads".into()
    }
    fn bound_rule(&self) -> Option<&'static str> {
        Some("ttl + 15 s")
    }
    fn lock_expires(&self) -> bool {
        true
    }
    fn needs(&self) -> Needs {
        Needs::Containers
    }
    /// ttl-bound: ttl + 15 s. Measured 26-31 s with ttl 30 / loop_wait 10 (26.9 s by the
    /// runner); 12.5 s median, 17.8 s worst with fast's ttl 20 (bound 35 s).
    fn expectations(&self, _: Option<u64>, t: Timing) -> Expectations {
        Expectations {
            max_window: Some(Duration::from_secs(t.ttl + 15)),
            whole_within: Duration::from_secs(120),
            ..Expectations::base()
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        leader_down(
            ctx,
            &["kill", "--signal", "KILL"],
            &format!("docker kill -s KILL {}", ctx.leader),
        )
    }
}
