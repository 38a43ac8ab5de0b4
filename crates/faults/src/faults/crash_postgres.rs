//! `crash-postgres`: SIGKILL to the leader's postmaster only; Patroni and the container stay
//! up. Proven twice: the postmaster's pid is gone, then Patroni noticed (at its next loop).

use std::time::Duration;

use patroni_lab_cluster::cluster;
use crate::fault::steps::{NOTICE_LIMIT, PROOF_LIMIT, err, host, postmaster_start, prove};
use crate::fault::{Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;
use patroni_lab_cluster::host::{Action, Signal};

pub struct CrashPostgres;

/// What it is, as data: its name, how long it lasts, what it needs and does beyond its steps,
/// what it can leave behind.
const DECLARED: Declared = Declared {
    name: "crash-postgres",
    default_secs: None,
    needs: Needs::Containers,
    bound_rule: Some("loop_wait + 10 s"),
    effects: Effects {
        mended_on_next_loop: true,
        ..Effects::PLAIN
    },
    params: &[],
    leftovers: &[],
};

impl FaultKind for CrashPostgres {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, _: &Args) -> String {
        "SIGKILL to the leader's postmaster only; Patroni stays up".into()
    }
    /// Patroni notices at its next loop (within loop_wait) and restarts the postmaster in place
    /// (primary_start_timeout 300 s).
    fn expectations(&self, _: &Args, t: Timing) -> Expectations {
        Expectations {
            max_window: Some(Duration::from_secs(t.loop_wait + 10)),
            ..Expectations::base()
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        let (lab, leader, timeline, stopped) = (ctx.lab, ctx.leader, ctx.timeline, ctx.stopped);
        let step = |what: String| ctx.step(what);
        let node = lab
            .node(leader)
            .ok_or_else(|| FaultError::Step(format!("no REST API for {leader}")))?;
        let before = postmaster_start(&node.api_url)?;
        let h = host(lab, leader)?;
        let pid = patroni_lab_cluster::lab::postmaster_pid(h.as_ref()).map_err(FaultError::Step)?;
        step(format!("SIGKILL to {leader}'s postmaster (pid {pid})"));
        h.act(&Action::Signal {
            pid: pid.to_string(),
            signal: Signal::Kill,
        })
        .map_err(err)?;
        // Gone, or a zombie Patroni has not reaped yet: either way no postmaster.
        let gone =
            format!("[ ! -e /proc/{pid} ] || grep -q '^State:.*Z' /proc/{pid}/status");
        prove(
            timeline,
            "the postmaster gone",
            PROOF_LIMIT,
            stopped,
            || {
                h.sh(&gone)
                    .map(|_| format!("{leader}'s postmaster (pid {pid}) is gone"))
                    .map_err(|_| format!("pid {pid} still runs"))
            },
        )?;
        // Patroni notices at its next loop (up to loop_wait later): its state leaves
        // running, or the postmaster it reports started anew. "unknown" and an empty start
        // time are not that: they are the REST API failing to query the dead postmaster
        // before the loop ran.
        prove(
            timeline,
            "Patroni noticing the crash",
            NOTICE_LIMIT,
            stopped,
            || {
                let me = cluster::member_status(&node.api_url)?;
                let state = me["state"].as_str().unwrap_or("?");
                let start = me["postmaster_start_time"].as_str().unwrap_or_default();
                if !matches!(state, "running" | "unknown" | "?") {
                    Ok(format!("Patroni on {leader} noticed: state {state}"))
                } else if !start.is_empty() && start != before {
                    Ok(format!(
                        "Patroni on {leader} noticed: postmaster started again at {start}"
                    ))
                } else {
                    Err(format!("{leader} still says running since {before}"))
                }
            },
        )
    }
}
