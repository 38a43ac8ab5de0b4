//! `switchover`: a planned switchover to the replica through Patroni's REST API.

use std::time::Duration;

use crate::fault::steps::{post_to_leader, prove_new_holder};
use crate::fault::{Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;

pub struct Switchover;

/// What it is, as data: its name, how long it lasts, what it needs and does beyond its steps,
/// what it can leave behind.
const DECLARED: Declared = Declared {
    name: "switchover",
    default_secs: None,
    needs: Needs::Rest,
    bound_rule: None,
    effects: Effects {
        in_matrix: true,
        ..Effects::PLAIN
    },
    params: &[],
    leftovers: &[],
};

impl FaultKind for Switchover {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, _: &Args) -> String {
        "planned switchover to the replica (POST /switchover)".into()
    }
    /// The bound leaves room for the test build of the probe on a busy machine; the seed's
    /// `server_login_retry` makes it fail (the current figures: README, `bench figures`).
    fn expectations(&self, _: &Args, _: Timing) -> Expectations {
        Expectations {
            max_window: Some(Duration::from_secs(6)),
            ..Expectations::base()
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        ctx.step(format!(
            "switchover requested ({} -> {})",
            ctx.leader, ctx.replica
        ));
        let body = format!(
            r#"{{"leader": "{}", "candidate": "{}"}}"#,
            ctx.leader, ctx.replica
        );
        let reply = post_to_leader(ctx, "/switchover", &body, Duration::from_secs(30))?;
        ctx.step(format!("switchover done: {reply}"));
        prove_new_holder(ctx.lab, ctx.leader, ctx.timeline, ctx.stopped)
    }
}
