//! `lag-replica`: the replica's WAL replay stopped for N s — SIGSTOP to its `startup` process,
//! then SIGCONT — while it keeps receiving WAL. A replica that falls behind, as one does under
//! a long replay conflict or a slow disk: what reading clients see before Patroni's `?lag=`
//! check takes it out of the reader pool, and after it is back.
//!
//! Not `pg_wal_replay_pause()`: Patroni resumes a paused replay on its next HA loop
//! (PostgreSQL 14+; "Resuming paused WAL replay", 0.93 s after a pause here), so the fault
//! would not last. Patroni does not look at the startup process: the stop holds, and the hold
//! checks every second that it does.

use patroni_lab_cluster::cluster;
use crate::fault::steps::{PROOF_LIMIT, err, hold_checked, host, process_stopped, prove};
use patroni_lab_cluster::host::{Action, Signal};
use patroni_lab_cluster::findings::leftover;
use crate::fault::{Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;
use patroni_lab_cluster::guard::Guard;

pub struct LagReplica;

/// What it is, as data: its name, how long it lasts, what it needs and does beyond its steps,
/// what it can leave behind.
const DECLARED: Declared = Declared {
    name: "lag-replica",
    default_secs: Some(20),
    needs: Needs::Containers,
    bound_rule: None,
    effects: Effects {
        // A soak is about writers; its schedule stays as it was.
        in_soak: false,
        needs_readers: true,
        ..Effects::PLAIN
    },
    params: &[],
    leftovers: &[leftover::PROCESS_STOPPED],
};

impl FaultKind for LagReplica {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, args: &Args) -> String {
        let secs = args.secs;
        format!(
            "SIGSTOP to the replica's WAL replay (its startup process) for {} s, then SIGCONT; it keeps receiving; clients also read on the reader endpoint, graded: replica reads past the lag threshold <= loop_wait + (fall + 1) x inter + 1 s",
            secs.unwrap_or_default()
        )
    }
    /// Asynchronous replication (and `sync`'s remote flush, which the walreceiver still gives):
    /// writers do not notice.
    fn expectations(&self, _: &Args, _: Timing) -> Expectations {
        Expectations {
            // After the hold (the default 20 s hold: 90 s from the injection, as before).
            whole_within: std::time::Duration::from_secs(70),
            ..Expectations::writers_unaffected()
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        let replica = ctx.replica.as_str();
        let h = host(ctx.lab, replica)?;
        let pid = patroni_lab_cluster::lab::startup_pid(h.as_ref()).map_err(FaultError::Step)?;
        let stop = Action::Signal {
            pid: pid.clone(),
            signal: Signal::Stop,
        };
        let undo = Guard::arm(patroni_lab_cluster::host::undo(h.clone(), &stop).expect("a SIGSTOP undoes"));
        ctx.step(format!("SIGSTOP to {replica}'s startup process (pid {pid})"));
        let who = format!("{replica}'s startup process");
        let stopped = || process_stopped(h.as_ref(), &pid, &who);
        let both = || Ok(format!("{}; {}", stopped()?, behind(ctx)?));
        let limit = PROOF_LIMIT;
        let done = h
            .act(&stop)
            .map_err(err)
            .and_then(|_| prove(ctx.timeline, "replay stopped", limit, ctx.stopped, stopped))
            .and_then(|_| prove(ctx.timeline, "WAL not replayed", limit, ctx.stopped, both))
            .and_then(|_| hold_checked(ctx, "the replay stop", both));
        ctx.step(undo.what().to_string());
        undo.undo().map_err(FaultError::Step)?;
        done
    }
}

/// The replica, on a direct connection, has received WAL it has not replayed.
fn behind(ctx: &Ctx) -> Result<String, String> {
    let gap = cluster::direct_cell(
        ctx.lab,
        &ctx.replica,
        "SELECT pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::bigint::text",
    )?;
    match gap.as_deref().and_then(|g| g.parse::<i64>().ok()) {
        Some(bytes) if bytes > 0 => Ok(format!("received {bytes} bytes of WAL not replayed")),
        _ => Err(format!("nothing received beyond the replayed position ({gap:?})")),
    }
}
