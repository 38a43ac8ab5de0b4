//! `switchover-paused`: the zero-error planned switchover. HAProxy holds clients (its `hold`
//! line), PgBouncer pauses (waiting for running transactions), the switchover runs, and
//! PgBouncer resumes once it runs with the new leader and that leader accepted a write; the
//! hold line goes once HAProxy marks the new leader UP. Every step is a guard; a dead man's
//! switch in each container undoes it if the runner dies.

use std::time::{Duration, Instant};

use patroni_lab_common::patroni;

use patroni_lab_cluster::cluster;
use crate::fault::steps::{err, prove_new_holder};
use patroni_lab_cluster::findings::leftover;
use crate::fault::{Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;
use patroni_lab_cluster::guard::{Guard, Undo};
use patroni_lab_cluster::lab::{self, Lab};
use patroni_lab_cluster::timeline::{Source, Timeline};

pub struct SwitchoverPaused;

/// What it is, as data: its name, how long it lasts, what it needs and does beyond its steps,
/// what it can leave behind.
const DECLARED: Declared = Declared {
    name: "switchover-paused",
    default_secs: None,
    needs: Needs::PgbouncerAdmin,
    bound_rule: None,
    effects: Effects {
        in_matrix: true,
        ..Effects::PLAIN
    },
    params: &[],
    leftovers: &[leftover::PGBOUNCER_PAUSED, leftover::HAPROXY_HOLD_ENABLED],
};

impl FaultKind for SwitchoverPaused {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, _: &Args) -> String {
        "PgBouncer PAUSE, switchover, RESUME once the new leader accepts a write".into()
    }
    /// Clients queue instead of failing: nothing failed, nothing in doubt. The stall is about
    /// the plain switchover's window; the bounds are under 2x the worst measured
    /// (docs/measurements/).
    fn expectations(&self, _: &Args, _: Timing) -> Expectations {
        let s = Duration::from_secs;
        Expectations {
            max_window: Some(s(5)),
            max_stall: Some(Duration::from_millis(3500)),
            max_failed: Some(0),
            max_in_doubt: Some(0),
            ..Expectations::base()
        }
    }
    /// A paused switchover holds every client for about the length of the switchover, so
    /// statement and connect time-outs shorter than that would turn the queueing into errors.
    /// Time-outs the user set longer stay.
    fn adjust_probe(&self, probe: &mut patroni_lab_probe::settings::Settings) -> Option<String> {
        let floor = CLIENT_TIMEOUT_FLOOR;
        let before = (probe.statement_timeout, probe.connect_timeout);
        probe.statement_timeout = probe.statement_timeout.max(floor);
        probe.connect_timeout = probe.connect_timeout.max(floor);
        (before != (probe.statement_timeout, probe.connect_timeout)).then(|| {
            format!(
                "{} raised the client time-outs to at least {} s (clients queue through the pause)",
                DECLARED.name,
                floor.as_secs()
            )
        })
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        paused_switchover(ctx.lab, ctx.leader, &ctx.replica, ctx.timeline)?;
        prove_new_holder(ctx.lab, ctx.leader, ctx.timeline, ctx.stopped)
    }
}

/// The client time-outs a paused switchover needs at least.
const CLIENT_TIMEOUT_FLOOR: Duration = Duration::from_secs(15);

/// How long `PAUSE postgres` may wait for running transactions to end.
const PAUSE_WAIT_S: u64 = 10;
/// How long the paused switchover waits, once paused, for PgBouncer to run with the new leader
/// and for that leader to accept a write on a direct connection.
const PAUSE_LIMIT_S: u64 = 15;
const PAUSE_LIMIT: Duration = Duration::from_secs(PAUSE_LIMIT_S);
/// How long, after RESUME, the hold line waits for HAProxy to mark the new leader's line UP
/// (inter x rise: 1 s with every profile here).
const CHECK_UP_LIMIT_S: u64 = 5;
/// How long PgBouncer may stay paused (and HAProxy hold clients) if the runner dies
/// mid-pause: the dead man's switch inside the containers resumes it after this. Derived from
/// the pause's own limits, so it never fires during a legitimate pause: the PAUSE wait, the
/// wait for the new leader, the wait for its check, and 5 s for the steps between.
pub const PAUSE_DEAD_MAN: Duration =
    Duration::from_secs(PAUSE_WAIT_S + PAUSE_LIMIT_S + CHECK_UP_LIMIT_S + 5);

/// Runs one PgBouncer admin command from this (blocking) thread.
fn pgbouncer_admin(lab: &Lab, command: &str) -> Result<(), FaultError> {
    patroni_lab_callback::pgbouncer::admin_command_blocking(
        lab.pgbouncer().map_err(FaultError::Step)?,
        command,
        Duration::from_secs(PAUSE_WAIT_S),
    )
    .map(|_| ())
    .map_err(err)
}

/// A write on `node`'s PostgreSQL itself (a transaction id assigned: not in recovery), on a
/// direct connection; for a cluster given by URLs, its Patroni saying it runs as primary.
fn direct_write(lab: &Lab, node: &str) -> Result<String, String> {
    let n = lab.node(node).ok_or_else(|| format!("no member {node}"))?;
    match &n.pg_url {
        Some(_) => {
            let txid = cluster::direct_cell(lab, node, "SELECT txid_current()::text")?;
            Ok(format!(
                "transaction {} on a direct connection",
                txid.unwrap_or_default()
            ))
        }
        None => {
            let me = cluster::member_status(&n.api_url)?;
            match (me["role"].as_str(), me["state"].as_str()) {
                (Some("primary" | "master"), Some("running")) => {
                    Ok("its Patroni says primary, running (no direct connection given)".into())
                }
                (role, state) => Err(format!("{node} says {role:?} ({state:?})")),
            }
        }
    }
}

/// Sends one command to HAProxy's runtime API; any answer is an error (the commands used
/// here answer nothing when they work).
fn haproxy_runtime(command: &str) -> Result<(), String> {
    let out = lab::haproxy_runtime(command).map_err(|e| e.to_string())?;
    if out.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("HAProxy said: {}", out.trim()))
    }
}

/// The target pgbouncer.ini names, read under the callback's file lock, so a target seen here
/// has been RELOADed already (the callback holds the lock through its RELOAD).
fn ini_target() -> Result<String, String> {
    let script = format!(
        "flock {} cat {}",
        lab::PGBOUNCER_INI_LOCK,
        lab::PGBOUNCER_INI
    );
    let text = lab::container(lab::PGBOUNCER)
        .sh(&script)
        .map_err(|e| e.to_string())?;
    patroni_lab_callback::ini::targets(&text)
        .into_iter()
        .map(|(_, t)| t.host)
        .next()
        .ok_or_else(|| "pgbouncer.ini names no host".to_string())
}

/// Arms a dead man's switch inside `container`: unless the runner removes `flag` first, `then`
/// runs after [`PAUSE_DEAD_MAN`], also if the runner was SIGKILLed.
fn dead_mans_switch(container: &str, flag: &str, then: &str) -> Result<(), FaultError> {
    let host = lab::container(container);
    host.run(&["touch", flag]).map_err(err)?;
    let script = format!(
        "sleep {}; if [ -e {flag} ]; then rm -f {flag}; {then}; fi",
        PAUSE_DEAD_MAN.as_secs()
    );
    host.spawn(&["bash", "-c", &script]).map_err(err)?;
    Ok(())
}

/// Arms the dead man's switch that resumes PgBouncer if the runner dies mid-pause, and returns
/// what disarms it. In the lab it runs on the PgBouncer host, detached; for
/// another cluster it is a process of its own (`patroni-lab scenario resume-after`, in its own
/// process group, so a SIGKILL of the runner leaves it running).
fn arm_pause_switch(lab: &Lab, token: &str) -> Result<Box<dyn Fn() + Send + Sync>, FaultError> {
    if lab.containers {
        let flag = format!("/tmp/plab-pause-{token}");
        dead_mans_switch(
            lab::PGBOUNCER,
            &flag,
            &format!(
                "PGPASSWORD=$POSTGRES_PASSWORD psql -h 127.0.0.1 -p {} -U ${{POSTGRES_USER:-postgres}} -d pgbouncer -c 'RESUME postgres'",
                lab::PGBOUNCER_PORT
            ),
        )?;
        return Ok(Box::new(move || {
            let _ = lab::container(lab::PGBOUNCER).run(&["rm", "-f", &flag]);
        }));
    }
    use std::os::unix::process::CommandExt;
    let flag = std::env::temp_dir().join(format!("plab-pause-{token}"));
    std::fs::write(&flag, b"").map_err(err)?;
    let admin = lab.pgbouncer().map_err(FaultError::Step)?;
    let exe = std::env::current_exe().map_err(err)?;
    std::process::Command::new(exe)
        .args(["scenario", "resume-after", "--secs"])
        .arg(PAUSE_DEAD_MAN.as_secs().to_string())
        .arg("--flag")
        .arg(&flag)
        .args([
            "--host",
            &admin.host,
            "--port",
            &admin.port.to_string(),
            "--user",
            &admin.user,
        ])
        .env("PGBOUNCER_ADMIN_PASSWORD", &admin.password)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(err)?;
    Ok(Box::new(move || {
        let _ = std::fs::remove_file(&flag);
    }))
}

/// The dead man's switch itself (`patroni-lab scenario resume-after`): after `wait`, unless
/// `flag` is gone, removes it and sends `RESUME postgres`.
pub fn resume_after(
    wait: Duration,
    flag: &std::path::Path,
    admin: &patroni_lab_callback::pgbouncer::AdminTarget,
) -> Result<bool, String> {
    std::thread::sleep(wait);
    if std::fs::remove_file(flag).is_err() {
        return Ok(false);
    }
    patroni_lab_callback::pgbouncer::admin_command_blocking(
        admin,
        "RESUME postgres",
        Duration::from_secs(10),
    )
    .map(|_| true)
    .map_err(|e| e.to_string())
}

/// HAProxy's hold line enabled, with its dead man's switch: only in the lab (another
/// cluster's proxy is its own business); clients must reach PgBouncer while no node says
/// /primary. The guard disables it again.
fn hold_clients(
    lab: &Lab,
    token: &str,
    step: &impl Fn(String),
) -> Result<Option<Guard>, FaultError> {
    if !lab.containers {
    return Ok(None);
    }
    let hold_flag = format!("/tmp/plab-hold-{token}");
    dead_mans_switch(
        lab::HAPROXY,
        &hold_flag,
        &format!(
            "exec 3<>{}; echo 'disable server {}' >&3",
            lab::HAPROXY_RUNTIME,
            lab::HAPROXY_HOLD_LINE
        ),
    )?;
    let guard = Guard::arm(Undo::new("HAProxy hold line disabled", move || {
        let _ = lab::container(lab::HAPROXY).run(&["rm", "-f", &hold_flag]);
        haproxy_runtime(&format!("disable server {}", lab::HAPROXY_HOLD_LINE))
    }));
    haproxy_runtime(&format!("enable server {}", lab::HAPROXY_HOLD_LINE)).map_err(err)?;
    step("HAProxy hold line enabled".into());
    Ok(Some(guard))
}

/// The names PgBouncer's `host=` may give `replica` by: its member name (the lab's callback
/// writes it), and the host Patroni publishes for it (a cluster given by URLs, whose own
/// callback or tool writes what it writes).
fn pgbouncer_names(lab: &Lab, replica: &str) -> Vec<String> {
    let mut names = vec![replica.to_string()];
    if !lab.containers {
        let host = lab.nodes.iter().find_map(|n| {
            let view = patroni::cluster(&n.api_url, Duration::from_secs(2)).ok()?;
            view.members
                .into_iter()
                .find(|m| m.name == replica)
                .map(|m| m.host)
        });
        names.extend(host.filter(|h| !h.is_empty()));
    }
    names
}

/// Waits until PgBouncer runs with `replica` (its SHOW DATABASES, else the file read under the
/// lock once the switchover ended or the limit passed), up to [`PAUSE_LIMIT`] from `start`.
fn wait_pgbouncer_on(
    lab: &Lab,
    replica: &str,
    start: Instant,
    switchover_ended: impl Fn() -> bool,
) -> Result<(), FaultError> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(err)?;
    let names = pgbouncer_names(lab, replica);
    loop {
        if let Ok(t) = rt.block_on(cluster::pgbouncer_target(lab, false)) {
            if names.contains(&t) {
                return Ok(());
            }
        }
        if lab.containers && (switchover_ended() || start.elapsed() >= PAUSE_LIMIT) {
            // Either it failed, or PgBouncer's entry is missing: read the file under the lock.
            match ini_target() {
                Ok(t) if t == replica => return Ok(()),
                _ if start.elapsed() >= PAUSE_LIMIT => {
                    return Err(FaultError::Step(format!(
                        "PgBouncer was not pointed at {replica} within {} s",
                        PAUSE_LIMIT.as_secs()
                    )));
                }
                _ => {}
            }
        }
        if !lab.containers && start.elapsed() >= PAUSE_LIMIT {
            return Err(FaultError::Step(format!(
                "PgBouncer was not pointed at {replica} within {} s",
                PAUSE_LIMIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Waits until HAProxy routes through `replica`'s own line (UP), up to [`CHECK_UP_LIMIT_S`].
fn wait_haproxy_up(replica: &str) -> Result<(), String> {
        let up_since = Instant::now();
    loop {
        match cluster::haproxy_lines() {
            Ok(lines)
                if lines
                    .iter()
                    .any(|(s, st)| s == replica && st.starts_with("UP")) =>
            {
                break Ok(());
            }
            Ok(lines) if up_since.elapsed() >= Duration::from_secs(CHECK_UP_LIMIT_S) => {
                break Err(format!("HAProxy's lines: {lines:?}"));
            }
            Err(e) if up_since.elapsed() >= Duration::from_secs(CHECK_UP_LIMIT_S) => {
                break Err(e);
            }
            _ => std::thread::sleep(Duration::from_millis(20)),
        }
    }
}

/// The zero-error planned switchover: HAProxy holds clients, PgBouncer pauses (waiting for
/// running transactions), the switchover runs, and PgBouncer resumes once its file names the
/// new leader. Every step is a guard; a dead man's switch in each container undoes it if the
/// runner dies.
fn paused_switchover(
    lab: &Lab,
    leader: &str,
    replica: &str,
    timeline: &Timeline,
) -> Result<(), FaultError> {
    let step = |what: String| timeline.record(Source::Fault, what);
    let token = format!("{}-{}", std::process::id(), patroni_lab_common::unix_us());
    let disarm_pause = arm_pause_switch(lab, &token)?;
    // HAProxy's hold line: only in the lab (another cluster's proxy is its own business; its
    // clients must reach PgBouncer while no node says /primary).
    let unhold = hold_clients(lab, &token, &step)?;
    step(format!(
        "dead man's switch armed (RESUME in {} s unless disarmed)",
        PAUSE_DEAD_MAN.as_secs()
    ));
    let resume = {
        let lab = lab.clone();
        Guard::arm(Undo::new("RESUME postgres", move || {
            disarm_pause();
            pgbouncer_admin(&lab, "RESUME postgres").map_err(|e| e.to_string())
        }))
    };
    step("PAUSE postgres sent".into());
    pgbouncer_admin(lab, "PAUSE postgres")?;
    step("PAUSE postgres done (no transaction running)".into());
    let node = lab
        .node(leader)
        .ok_or_else(|| FaultError::Step(format!("no REST API for {leader}")))?
        .clone();
    step(format!("switchover requested ({leader} -> {replica})"));
    let body = format!(r#"{{"leader": "{leader}", "candidate": "{replica}"}}"#);
    // The REST call returns a few hundred ms after the new leader's callback has pointed
    // PgBouncer at it: resume as soon as PgBouncer runs with the new target.
    let switchover = {
        let auth = lab.auth.clone();
        std::thread::spawn(move || {
            patroni::send_json(
                &node.api_url,
                "POST",
                "/switchover",
                &body,
                Some(&auth),
                Duration::from_secs(30),
            )
        })
    };
    let start = Instant::now();
    wait_pgbouncer_on(lab, replica, start, || switchover.is_finished())?;
    step(format!(
        "PgBouncer runs with {replica} (pgbouncer.ini reloaded)"
    ));
    // RESUME onto a primary that works: the new leader must accept a write on a direct
    // connection first (its name in pgbouncer.ini comes right after `pg_ctl promote`).
    let accepted = loop {
        match direct_write(lab, replica) {
            Ok(seen) => break seen,
            Err(e) if start.elapsed() >= PAUSE_LIMIT => {
                return Err(FaultError::Step(format!(
                    "{replica} did not accept a write within {} s: {e}",
                    PAUSE_LIMIT.as_secs()
                )));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    step(format!("{replica} accepted a write: {accepted}"));
    resume.undo().map_err(err)?;
    step("RESUME postgres".into());
    if let Some(unhold) = unhold {
        // Hold clients until HAProxy routes through the new leader's own line.
        let up = wait_haproxy_up(replica);
        if up.is_ok() {
            step(format!("HAProxy marks {replica} UP"));
        }
        unhold.undo().map_err(err)?;
        step("HAProxy hold line disabled".into());
        up.map_err(|e| {
            FaultError::Step(format!(
                "HAProxy did not mark {replica} UP within {CHECK_UP_LIMIT_S} s ({e})"
            ))
        })?;
    }
    let (status, reply) = switchover
        .join()
        .map_err(|_| FaultError::Step("the switchover request panicked".into()))?
        .map_err(err)?;
    if status != 200 {
        return Err(FaultError::Step(format!(
            "POST /switchover answered {status}: {}",
            reply.trim()
        )));
    }
    step(format!("switchover done: {}", reply.trim()));
    Ok(())
}

