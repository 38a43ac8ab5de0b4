//! `freeze-postmaster`: SIGSTOP to the leader's postmaster only for N s, then SIGCONT. Its
//! backends, the WAL sender and Patroni's own connection live on (they are other processes),
//! so Patroni's loop and its REST API see a healthy primary and nobody fails over (Patroni
//! #1371); only a new connection to that server hangs, unanswered, until the postmaster runs
//! again. Clients behind PgBouncer are served on the server connections it already holds
//! (docs/measurements/2026-12-04-verdicts-and-the-host-seam.md).
//! Written on the `Host` seam: a pid read, a signal with its recorded inverse.

use std::time::Duration;

use patroni_lab_cluster::cluster;
use crate::fault::steps::{PROOF_LIMIT, api_url, err, hold, host, process_stopped, prove};
use patroni_lab_cluster::findings::leftover;
use crate::fault::{Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;
use patroni_lab_cluster::guard::Guard;
use patroni_lab_cluster::host::{Action, Signal};

pub struct FreezePostmaster;

/// What it is, as data: its name, how long it lasts, what it needs and does beyond its steps,
/// what it can leave behind.
const DECLARED: Declared = Declared {
    name: "freeze-postmaster",
    default_secs: Some(20),
    needs: Needs::Containers,
    bound_rule: None,
    effects: Effects {
        // Not in the soak's draw until its figures are measured over many runs.
        in_soak: false,
        ..Effects::PLAIN
    },
    params: &[],
    leftovers: &[leftover::PROCESS_STOPPED],
};

impl FaultKind for FreezePostmaster {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, args: &Args) -> String {
        let secs = args.secs;
        format!(
            "SIGSTOP to the leader's postmaster only for {} s (its backends and Patroni run on), then SIGCONT",
            secs.unwrap_or_default()
        )
    }
    /// No failover, nothing lost, and through PgBouncer's pool nothing seen: a client would
    /// wait only if PgBouncer needed a new server connection during the hold.
    fn expectations(&self, _: &Args, _: Timing) -> Expectations {
        Expectations {
            // After the hold (the default 20 s hold: 90 s from the injection).
            whole_within: Duration::from_secs(70),
            ..Expectations::writers_unaffected()
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        let leader = ctx.leader;
        let h = host(ctx.lab, leader)?;
        let pid = patroni_lab_cluster::lab::postmaster_pid(h.as_ref()).map_err(FaultError::Step)?;
        let stop = Action::Signal {
            pid: pid.clone(),
            signal: Signal::Stop,
        };
        let undo = Guard::arm(patroni_lab_cluster::host::undo(h.clone(), &stop).expect("a SIGSTOP undoes"));
        ctx.step(format!("SIGSTOP to {leader}'s postmaster (pid {pid})"));
        let who = format!("{leader}'s postmaster");
        let done = h
            .act(&stop)
            .map_err(err)
            .and_then(|_| {
                prove(ctx.timeline, "the postmaster stopped", PROOF_LIMIT, ctx.stopped, || {
                    process_stopped(h.as_ref(), &pid, &who)
                })
            })
            .and_then(|_| {
                prove(
                    ctx.timeline,
                    "Patroni still seeing a running primary",
                    PROOF_LIMIT,
                    ctx.stopped,
                    || patroni_sees_primary(ctx),
                )
            })
            .and_then(|_| {
                prove(
                    ctx.timeline,
                    "a new connection left unanswered",
                    PROOF_LIMIT,
                    ctx.stopped,
                    || unanswered(ctx),
                )
            })
            .and_then(|_| hold(ctx.duration(), ctx.stopped));
        ctx.step(undo.what().to_string());
        undo.undo().map_err(FaultError::Step)?;
        done
    }
}

/// A new direct connection to the leader gets no answer (the postmaster does not accept it).
fn unanswered(ctx: &Ctx) -> Result<String, String> {
    match cluster::direct_cell(ctx.lab, ctx.leader, "SELECT 1") {
        // The connect's own time-out (`direct::query`: TCP, startup and auth within 3 s; the
        // probe's classifier words it so). A time-out after a connect would mean the
        // postmaster had accepted: not this.
        Err(e) if e.contains("did not finish within") => {
            Ok(format!("a new connection to {} is not answered: {e}", ctx.leader))
        }
        Err(e) => Err(format!("a new connection failed otherwise: {e}")),
        Ok(_) => Err(format!("a new connection to {} was answered", ctx.leader)),
    }
}

/// The leader's Patroni, on its REST API, still says "primary, running" (its own connection to
/// PostgreSQL is a backend, not the postmaster).
fn patroni_sees_primary(ctx: &Ctx) -> Result<String, String> {
    let url = api_url(ctx.lab, ctx.leader).map_err(|e| e.to_string())?;
    let me = cluster::member_status(url)?;
    let (role, state) = (
        me["role"].as_str().unwrap_or("?"),
        me["state"].as_str().unwrap_or("?"),
    );
    if matches!(role, "primary" | "master") && state == "running" {
        Ok(format!(
            "{}'s Patroni still says {role} ({state})",
            ctx.leader
        ))
    } else {
        Err(format!("{}'s Patroni says {role} ({state})", ctx.leader))
    }
}
