//! `restart-leader`: PostgreSQL on the leader restarted by Patroni (`POST /restart`), no
//! failover; proven by a new postmaster start time.

use std::time::Duration;

use crate::fault::steps::{PROOF_LIMIT, api_url, post_to_leader, postmaster_start, prove};
use crate::fault::{Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;

pub struct RestartLeader;

/// What it is, as data: its name, how long it lasts, what it needs and does beyond its steps,
/// what it can leave behind.
const DECLARED: Declared = Declared {
    name: "restart-leader",
    default_secs: None,
    needs: Needs::Rest,
    bound_rule: None,
    effects: Effects::PLAIN,
    params: &[],
    leftovers: &[],
};

impl FaultKind for RestartLeader {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, _: &Args) -> String {
        "PostgreSQL on the leader restarted by Patroni (POST /restart); no failover".into()
    }
    /// A fast shutdown and start of the same primary; the bound is under 2x the worst run
    /// measured with the test build of the probe on a busy machine (docs/measurements/).
    fn expectations(&self, _: &Args, _: Timing) -> Expectations {
        Expectations {
            max_window: Some(Duration::from_secs(6)),
            ..Expectations::base()
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        let url = api_url(ctx.lab, ctx.leader)?;
        let before = postmaster_start(url)?;
        ctx.step(format!("restart requested ({})", ctx.leader));
        let reply = post_to_leader(ctx, "/restart", "{}", Duration::from_secs(60))?;
        ctx.step(format!("restart done: {reply}"));
        prove(ctx.timeline, "a new postmaster", PROOF_LIMIT, ctx.stopped, || {
            let now = postmaster_start(url).map_err(|e| e.to_string())?;
            if now != before {
                Ok(format!(
                    "{}'s postmaster started again at {now} (was {before})",
                    ctx.leader
                ))
            } else {
                Err(format!("postmaster_start_time still {before}"))
            }
        })
    }
}
