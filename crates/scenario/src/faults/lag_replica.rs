//! `lag-replica`: WAL replay paused on the replica for N s (`pg_wal_replay_pause()`), then
//! resumed. The replica keeps receiving WAL and stays a running replica; only its data stops
//! moving, so readers on it (HAProxy's 5433, `scenario run --readers`) see older and older data
//! until the lag threshold takes it out of the reader pool: Patroni's `/replica?lag=` compares
//! its replayed position with the leader's last one in etcd.

use std::time::Duration;

use crate::cluster::direct_cell;
use crate::fault::steps::{PROOF_LIMIT, hold, prove};
use crate::fault::{Ctx, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;
use crate::guard::{Guard, Undo};

pub struct LagReplica;

impl FaultKind for LagReplica {
    fn name(&self) -> &'static str {
        "lag-replica"
    }
    fn describe(&self, secs: Option<u64>) -> String {
        format!(
            "WAL replay paused on the replica for {} s (pg_wal_replay_pause), then resumed; run with --readers to see what readers got",
            secs.unwrap_or_default()
        )
    }
    fn default_secs(&self) -> Option<u64> {
        Some(20)
    }
    fn needs(&self) -> Needs {
        Needs::Containers
    }
    fn in_soak(&self) -> bool {
        false
    }
    /// The writers' primary is untouched: they do not notice.
    fn expectations(&self, _: Option<u64>, _: Timing) -> Expectations {
        Expectations {
            max_window: Some(Duration::from_secs(1)),
            max_failed: Some(0),
            max_in_doubt: Some(0),
            ..Expectations::base()
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        let (lab, replica) = (ctx.lab.clone(), ctx.replica.clone());
        let undo = Guard::arm(Undo::new(
            format!("pg_wal_replay_resume() on {replica}"),
            move || direct_cell(&lab, &replica, "SELECT pg_wal_replay_resume()").map(|_| ()),
        ));
        ctx.step(format!("pg_wal_replay_pause() on {}", ctx.replica));
        let done = direct_cell(ctx.lab, &ctx.replica, "SELECT pg_wal_replay_pause()")
            .map_err(FaultError::Step)
            .and_then(|_| {
                prove(
                    ctx.timeline,
                    &format!("{}'s replay paused", ctx.replica),
                    PROOF_LIMIT,
                    ctx.stopped,
                    || {
                        match direct_cell(ctx.lab, &ctx.replica, "SELECT pg_get_wal_replay_pause_state()")?
                            .as_deref()
                        {
                            Some("paused") => Ok(format!("{} replay paused (pg_get_wal_replay_pause_state)", ctx.replica)),
                            other => Err(format!("replay state {other:?}")),
                        }
                    },
                )
            })
            .and_then(|_| hold(ctx.duration(), ctx.stopped));
        ctx.step(undo.what().to_string());
        let undone = undo.undo().map_err(FaultError::Step);
        done.and(undone)
    }
}
