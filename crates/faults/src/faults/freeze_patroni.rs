//! `freeze-patroni`: SIGSTOP to the leader's Patroni daemon only for N s, then SIGCONT. Its PostgreSQL keeps running as a primary: with no watchdog (none in
//! containers, as on many VMs) nothing stops it when the lock expires and the replica is
//! promoted, so clients still connected to it keep committing — a split brain. The probe keeps
//! clients on the leader's own address to see those writes; the scenario must FAIL on them.

use std::time::Duration;

use patroni_lab_cluster::cluster;
use crate::fault::steps::{PROOF_LIMIT, err, hold, host, process_stopped, prove};
use patroni_lab_cluster::host::{Action, Signal};
use patroni_lab_cluster::findings::leftover;
use crate::fault::{Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;
use patroni_lab_cluster::guard::Guard;

pub struct FreezePatroni;

/// What it is, as data: its name, how long it lasts, what it needs and does beyond its steps,
/// what it can leave behind.
const DECLARED: Declared = Declared {
    name: "freeze-patroni",
    default_secs: Some(45),
    needs: Needs::Containers,
    bound_rule: Some("min(secs, ttl) + 10 s"),
    effects: Effects {
        in_matrix: true,
        lock_expires: true,
        in_soak: false,
        pinned_clients: 2,
        ..Effects::PLAIN
    },
    params: &[],
    leftovers: &[leftover::PROCESS_STOPPED],
};

impl FaultKind for FreezePatroni {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, args: &Args) -> String {
        let secs = args.secs;
        format!(
            "SIGSTOP to the leader's Patroni only for {} s (PostgreSQL keeps running as primary, no watchdog), then SIGCONT; 2 more clients on the leader's own address",
            secs.unwrap_or_default()
        )
    }
    /// Through 5432 as freeze-leader: HAProxy drops the frozen member once its REST API stops
    /// answering, and clients wait for the lock to expire. The writes of the clients on the
    /// old leader's own address after it lost the lock are what this fault shows: graded 0,
    /// so it fails whenever the split brain happens (a freeze longer than ttl).
    fn expectations(&self, args: &Args, t: Timing) -> Expectations {
        let secs = args.secs;
        Expectations {
            max_window: Some(Duration::from_secs(secs.unwrap_or(0).min(t.ttl) + 10)),
            // After the hold (the default 45 s hold: 150 s from the injection, as before).
            whole_within: Duration::from_secs(105),
            ..Expectations::base()
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        let leader = ctx.leader;
        let h = host(ctx.lab, leader)?;
        let pid = patroni_lab_cluster::lab::patroni_pid(h.as_ref()).map_err(FaultError::Step)?;
        let stop = Action::Signal {
            pid: pid.clone(),
            signal: Signal::Stop,
        };
        let undo = Guard::arm(patroni_lab_cluster::host::undo(h.clone(), &stop).expect("a SIGSTOP undoes"));
        ctx.step(format!("SIGSTOP to {leader}'s Patroni daemon (pid {pid})"));
        let done = h
            .act(&stop)
            .map_err(err)
            .and_then(|_| {
                let who = format!("{leader}'s Patroni");
                prove(ctx.timeline, "Patroni stopped", PROOF_LIMIT, ctx.stopped, || {
                    process_stopped(h.as_ref(), &pid, &who)
                })
            })
            .and_then(|_| {
                prove(
                    ctx.timeline,
                    "PostgreSQL still a primary",
                    PROOF_LIMIT,
                    ctx.stopped,
                    || primary_still(ctx),
                )
            })
            .and_then(|_| hold(ctx.duration(), ctx.stopped));
        ctx.step(undo.what().to_string());
        undo.undo().map_err(FaultError::Step)?;
        done
    }
}

/// The frozen leader's PostgreSQL, on a direct connection, is still out of recovery.
fn primary_still(ctx: &Ctx) -> Result<String, String> {
    let in_recovery =
        cluster::direct_cell(ctx.lab, ctx.leader, "SELECT pg_is_in_recovery()::text")?;
    match in_recovery.as_deref() {
        Some("false") => Ok(format!(
            "PostgreSQL on {} still runs as a primary",
            ctx.leader
        )),
        other => Err(format!("in recovery: {other:?}")),
    }
}
