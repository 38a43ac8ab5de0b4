//! `oom-backend`: SIGKILL to one busy client backend of the leader, as the kernel's OOM killer
//! does. PostgreSQL cannot know what the dead backend left in shared memory, so the postmaster
//! ends every other session and runs crash recovery in place: no failover, every client cut at
//! once. Proven by PostgreSQL's own log (the backend "terminated by signal 9", then "all server
//! processes terminated; reinitializing", then ready to accept connections), every session
//! listed at the kill gone, and the postmaster the same process with the same start time as
//! Patroni reports it. Written on the `Host` seam.

use std::time::Duration;

use patroni_lab_cluster::cluster;
use crate::fault::steps::{PROOF_LIMIT, api_url, err, host, postmaster_start, prove};
use crate::fault::{Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;
use patroni_lab_cluster::host::{Action, Host, Signal};

pub struct OomBackend;

/// The leader's client backends that have lived a second or more (PgBouncer's server
/// connections; not this runner's own short checks, which may be gone before the kill),
/// busiest first (active, then the longest in a transaction), Patroni's sessions left out:
/// `pid application_name` per line.
fn backends_sql() -> String {
    format!(
        "SELECT string_agg(pid || ' ' || coalesce(nullif(application_name, ''), '-'), E'\\n' \
         ORDER BY state = 'active' DESC, xact_start NULLS LAST) FROM pg_stat_activity \
         WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() \
         AND application_name NOT LIKE 'Patroni%' AND application_name <> '{}' \
         AND backend_start < now() - interval '1 second'",
        patroni_lab_cluster::direct::APPLICATION_NAME
    )
}

/// What it is, as data: its name, how long it lasts, what it needs and does beyond its steps,
/// what it can leave behind.
const DECLARED: Declared = Declared {
    name: "oom-backend",
    default_secs: None,
    needs: Needs::Containers,
    bound_rule: None,
    effects: Effects {
        // Not in the soak's draw until measured over many runs.
        in_soak: false,
        ..Effects::PLAIN
    },
    params: &[],
    leftovers: &[],
};

impl FaultKind for OomBackend {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, _: &Args) -> String {
        "SIGKILL to one busy client backend of the leader, as the OOM killer does: PostgreSQL resets every session and recovers in place".into()
    }
    /// No failover, nothing lost; the reset costs clients a short window, bounded at 2x the
    /// worst measured (docs/measurements/2026-12-04-verdicts-and-the-host-seam.md).
    fn expectations(&self, _: &Args, _: Timing) -> Expectations {
        Expectations {
            max_window: Some(Duration::from_secs(1)),
            ..Expectations::base()
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        let leader = ctx.leader;
        let h = host(ctx.lab, leader)?;
        let postmaster = patroni_lab_cluster::lab::postmaster_pid(h.as_ref()).map_err(FaultError::Step)?;
        let url = api_url(ctx.lab, leader)?;
        let started_before = postmaster_start(url)?;
        let listed = cluster::direct_cell(ctx.lab, leader, &backends_sql())
            .map_err(|e| FaultError::Step(format!("{leader}'s sessions cannot be listed: {e}")))?
            .unwrap_or_default();
        let backends: Vec<(String, String)> = listed
            .lines()
            .filter_map(|l| {
                let (pid, app) = l.split_once(' ')?;
                Some((pid.to_string(), app.to_string()))
            })
            .collect();
        let Some((victim, app)) = backends.first().cloned() else {
            return Err(FaultError::Step(format!(
                "{leader} has no client backend to kill"
            )));
        };
        ctx.step(format!(
            "SIGKILL to {leader}'s backend pid {victim} ({app}), one of {} client sessions",
            backends.len()
        ));
        // A second early: the log's clock and this one's are the same machine's here.
        let killed_at = patroni_lab_common::unix_us() / 1_000_000 - 1;
        h.act(&Action::Signal {
            pid: victim.clone(),
            signal: Signal::Kill,
        })
        .map_err(err)?;
        let pids: Vec<&str> = backends.iter().map(|(p, _)| p.as_str()).collect();
        prove(
            ctx.timeline,
            "every session reset",
            PROOF_LIMIT,
            ctx.stopped,
            || {
                logged(h.as_ref(), &victim, killed_at)?;
                let alive = alive(h.as_ref(), &pids)?;
                if !alive.is_empty() {
                    return Err(format!("still running: {}", alive.join(", ")));
                }
                let now = patroni_lab_cluster::lab::postmaster_pid(h.as_ref())?;
                if now != postmaster {
                    return Err(format!(
                        "the postmaster is another process ({postmaster} -> {now}): restarted, not recovered in place"
                    ));
                }
                let started = postmaster_start(url).map_err(|e| e.to_string())?;
                if started != started_before {
                    return Err(format!(
                        "Patroni reports another postmaster start ({started_before} -> {started})"
                    ));
                }
                Ok(format!(
                    "{leader}'s log: backend {victim} terminated by signal 9, every server process terminated, reinitializing, ready again; the {} sessions listed at the kill are gone; the postmaster (pid {postmaster}, started {started}) recovered in place",
                    pids.len()
                ))
            },
        )
    }
}

/// PostgreSQL's log (from `since` on) says the backend was killed and every session reset
/// after it.
fn logged(h: &dyn Host, victim: &str, since: u64) -> Result<(), String> {
    let killed = format!("server process (PID {victim}) was terminated by signal 9");
    let log = h.log_since(since).map_err(|e| e.to_string())?;
    let Some(at) = log.find(&killed) else {
        return Err(format!("no \"{killed}\" in {}'s log", h.name()));
    };
    // PostgreSQL 17's words (a client backend is a "server process" there; the lab pins 17 and
    // an English locale).
    let after = &log[at..];
    let Some(reset) = after.find("all server processes terminated; reinitializing") else {
        return Err("the reset (\"all server processes terminated; reinitializing\") not logged yet".into());
    };
    if !after[reset..].contains("database system is ready to accept connections") {
        return Err("crash recovery not finished yet (no \"ready to accept connections\")".into());
    }
    Ok(())
}

/// Which of `pids` still run (a zombie not yet reaped counts as gone).
fn alive(h: &dyn Host, pids: &[&str]) -> Result<Vec<String>, String> {
    let list = pids.join(" ");
    let script = format!(
        "for p in {list}; do [ -e /proc/$p ] && ! grep -q '^State:.*Z' /proc/$p/status 2>/dev/null && echo $p; done; true"
    );
    let out = h.sh(&script).map_err(|e| e.to_string())?;
    Ok(out.split_whitespace().map(str::to_string).collect())
}
