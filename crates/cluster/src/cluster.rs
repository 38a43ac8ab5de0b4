//! What the cluster looks like now, each part read from itself: etcd's leader key, each
//! member's REST API and its PostgreSQL on a direct connection, PgBouncer's admin console
//! (paused? where it sends clients), HAProxy's runtime API (which lines are up), and a write
//! through the client endpoint. "Whole" means they all agree (see [`whole`]).

use std::time::{Duration, Instant};

use patroni_lab_common::etcd;
use patroni_lab_common::patroni::{self, ClusterView};

use crate::findings::leftover;
use crate::findings::{Diagnosis, Finding, Severity};
use crate::lab::{self, Lab, REST_TIMEOUT};

/// The REST view from the first API that answers.
pub fn view(lab: &Lab) -> Result<ClusterView, String> {
    view_within(lab, REST_TIMEOUT)
}

/// [`view`], each REST call given `limit`.
fn view_within(lab: &Lab, limit: Duration) -> Result<ClusterView, String> {
    let mut last = String::from("no Patroni REST API configured");
    for node in &lab.nodes {
        match patroni::cluster(&node.api_url, limit) {
            Ok(v) => return Ok(v),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// The member holding the leader lock (etcd's key) and saying it runs.
pub fn leader(lab: &Lab) -> Result<String, String> {
    let holder = lock_holder(lab)?.ok_or("the leader key is free")?;
    let node = lab
        .node(&holder)
        .ok_or_else(|| format!("the leader key names {holder}, not a member here"))?;
    let me = member_status(&node.api_url)?;
    if me["state"].as_str() == Some("running") {
        Ok(holder)
    } else {
        Err(format!("{holder} holds the leader key but is not running"))
    }
}

pub use crate::direct::query;

/// One command on PgBouncer's admin console (3 s time-out), its rows.
pub async fn pgbouncer_admin(
    lab: &Lab,
    command: &str,
) -> Result<patroni_lab_common::pg::Rows, String> {
    patroni_lab_callback::pgbouncer::admin_command(
        lab.pgbouncer()?,
        command,
        Duration::from_secs(3),
    )
    .await
    .map_err(|e| e.to_string())
}

/// The host PgBouncer sends database `postgres` to, as it runs now (SHOW DATABASES). A `*`
/// database appears once a client has used it (and again after a RELOAD): with `touch`, a
/// client uses it first (that blocks while PgBouncer is paused, so the poller does not).
pub async fn pgbouncer_target(lab: &Lab, touch: bool) -> Result<String, String> {
    if touch {
        if let Some(url) = &lab.pgbouncer_admin_url {
            let client = url.replace("/pgbouncer", "/postgres");
            let _ = query(&client, &lab.password, "SELECT 1").await;
        }
    }
    let rows = pgbouncer_admin(lab, "SHOW DATABASES").await?;
    rows.iter()
        .find(|r| r.first().cloned().flatten().as_deref() == Some("postgres"))
        .and_then(|r| r.get(1).cloned().flatten())
        .ok_or_else(|| "SHOW DATABASES has no postgres entry".to_string())
}

/// How many clients of database `postgres` wait in PgBouncer's queue for a server connection
/// (`SHOW POOLS`, `cl_waiting`: its fourth column).
pub async fn pgbouncer_waiting(lab: &Lab) -> Result<u64, String> {
    let rows = pgbouncer_admin(lab, "SHOW POOLS").await?;
    Ok(rows
        .iter()
        .filter(|r| r.first().cloned().flatten().as_deref() == Some("postgres"))
        .filter_map(|r| r.get(3).cloned().flatten()?.parse::<u64>().ok())
        .sum())
}

/// Who holds the leader lock: etcd's own leader key when etcd is reachable (the lab), else the
/// REST view of it (a cluster given by URLs). `Ok(None)`: the lock is free.
pub fn lock_holder(lab: &Lab) -> Result<Option<String>, String> {
    lock_holder_within(lab, REST_TIMEOUT)
}

/// [`lock_holder`] with each read given `limit` (the timeline's sampler: its own time-out, so a
/// sample's precision is what its doc says).
pub fn lock_holder_within(lab: &Lab, limit: Duration) -> Result<Option<String>, String> {
    match &lab.etcd_url {
        Some(url) => {
            let key = etcd::leader_key(crate::lab::NAMESPACE, crate::lab::SCOPE);
            etcd::read_leader(url, &key, limit)
                .map(|k| k.holder)
                .map_err(|e| format!("etcd: {e}"))
        }
        None => view_within(lab, limit).map(|v| v.leader().map(|m| m.name.clone())),
    }
}

/// A member's own view of itself (`GET /patroni`).
pub fn member_status(api_url: &str) -> Result<serde_json::Value, String> {
    match patroni::get(api_url, "/patroni", REST_TIMEOUT) {
        Ok((_, body)) => serde_json::from_str(&body).map_err(|e| format!("GET /patroni: {e}")),
        Err(e) => Err(e.to_string()),
    }
}

/// The cluster as "whole" found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Whole {
    pub leader: String,
    /// The leader's postmaster start time, as Patroni reports it.
    pub postmaster_start_time: String,
}

/// Checks the cluster is whole, each part on its own: the holder of etcd's leader key says it
/// is a running primary and is not in recovery on a direct connection; every other member
/// streams from it (its `pg_stat_replication`); PgBouncer is not paused and sends clients to
/// it; HAProxy routes through its line only (the `hold` line disabled); a transaction that
/// needs a transaction id (a write) through the client endpoint is served by it.
pub async fn whole(lab: &Lab, live: &Live) -> Result<Whole, String> {
    let (leader, me) = {
        let lab = lab.clone();
        tokio::task::spawn_blocking(move || -> Result<(String, serde_json::Value), String> {
            let leader = lock_holder(&lab)?.ok_or("the leader key is free")?;
            let node = lab
                .node(&leader)
                .ok_or_else(|| format!("the leader key names {leader}, not a member here"))?;
            Ok((leader, member_status(&node.api_url)?))
        })
        .await
        .map_err(|e| e.to_string())??
    };
    let (role, state) = (
        me["role"].as_str().unwrap_or("?"),
        me["state"].as_str().unwrap_or("?"),
    );
    if !matches!(role, "primary" | "master") || state != "running" {
        return Err(format!(
            "{leader} holds the leader key but says {role} ({state})"
        ));
    }
    let node = lab.node(&leader).expect("checked above").clone();
    // Who streams from the leader, and in which sync state: from its own pg_stat_replication
    // on a direct connection, else (a cluster given by URLs) from what its Patroni reads there.
    let (streaming, served_by) = replication(lab, &leader, &node, &me).await?;
    for other in lab.nodes.iter().filter(|n| n.name != leader) {
        match streaming.iter().find(|(name, _, _)| *name == other.name) {
            Some((_, state, _)) if state == "streaming" => {}
            Some((_, state, _)) => {
                return Err(format!(
                    "{} is {state} from {leader}, not streaming",
                    other.name
                ));
            }
            None => return Err(format!("{} does not stream from {leader}", other.name)),
        }
    }
    // A replica can stream and still be on its own timeline with the leader's ID (it never
    // replays): compare its last checkpoint with the leader's WAL (the doctor's check).
    if let Some(leader_url) = &node.pg_url {
        not_diverged(lab, &leader, leader_url).await?;
    }
    // With synchronous replication on, whole means a synchronous standby too: a replica that
    // is only streaming cannot be promoted: a kill then leaves the cluster without a leader.
    if live.synchronous()
        && !streaming
            .iter()
            .any(|(_, _, sync)| matches!(sync.as_str(), "sync" | "quorum"))
    {
        return Err("synchronous_mode is on but no member is a synchronous standby yet".into());
    }
    if lab.containers {
        front_whole(lab, &leader).await?;
    }
    let rows = query(
        &lab.client_url,
        &lab.password,
        "SELECT host(inet_server_addr()), txid_current()::text, \
           (extract(epoch FROM pg_postmaster_start_time()) * 1e6)::bigint::text",
    )
    .await
    .map_err(|e| format!("a write through the client endpoint: {e}"))?;
    let through = rows.first().and_then(|r| r.first().cloned().flatten());
    if served_by.is_some() && through != served_by {
        return Err(format!(
            "a write through the client endpoint was served by {}, not by {leader} ({})",
            through.as_deref().unwrap_or("?"),
            served_by.as_deref().unwrap_or("?")
        ));
    }
    if served_by.is_none() {
        // No direct address to compare: the server that took the write must run the
        // postmaster the leader's Patroni reports (a second primary would not).
        let started = rows
            .first()
            .and_then(|r| r.get(2).cloned().flatten())
            .and_then(|s| s.parse::<i64>().ok());
        let leaders = me["postmaster_start_time"]
            .as_str()
            .and_then(patroni_lab_probe::lost::parse_patroni_time);
        match (started, leaders) {
            (Some(a), Some(b)) if (a - b).abs() < 1_000 => {}
            (Some(_), Some(_)) => {
                return Err(format!(
                    "a write through the client endpoint was served by a server that is not {leader} (postmaster start times differ)"
                ));
            }
            _ => {
                return Err(format!(
                    "which server took a write through the client endpoint could not be told ({leader}'s postmaster start time unread)"
                ));
            }
        }
    }
    Ok(Whole {
        leader,
        postmaster_start_time: me["postmaster_start_time"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    })
}

/// Who streams from the leader, and in which sync state: from its own pg_stat_replication on a
/// direct connection, else (a cluster given by URLs) from what its Patroni reads there (`me`,
/// its GET /patroni); with the address that served the direct connection.
async fn replication(
    lab: &Lab,
    leader: &str,
    node: &crate::lab::Node,
    me: &serde_json::Value,
) -> Result<(Vec<(String, String, String)>, Option<String>), String> {
    match &node.pg_url {
        Some(url) => {
            let rows = query(
                url,
                &lab.password,
                "SELECT pg_is_in_recovery()::text, host(inet_server_addr()); \
                 SELECT application_name, state, sync_state FROM pg_stat_replication",
            )
            .await
            .map_err(|e| format!("{leader} directly: {e}"))?;
            let first = rows.first().cloned().unwrap_or_default();
            if first.first().cloned().flatten().as_deref() != Some("false") {
                return Err(format!("{leader} is in recovery on a direct connection"));
            }
            let addr = first.get(1).cloned().flatten();
            Ok((senders(rows.get(1..).unwrap_or_default()), addr))
        }
        None => Ok((rest_senders(me), None)),
    }
}

/// The front of a whole lab: PgBouncer not paused and on the leader, HAProxy's line for it the
/// only one UP, the hold line disabled (the doctor's checks of the front, the first thing
/// wrong said), and a line for the leader in HAProxy.
async fn front_whole(lab: &Lab, leader: &str) -> Result<(), String> {
    let (wrong, unread) = front(lab, Some(leader)).await;
    if let Some(f) = wrong.first() {
        return Err(f.what.clone());
    }
    if let Some(u) = unread.first() {
        return Err(format!("cannot read {u}"));
    }
    let lines = tokio::task::spawn_blocking(haproxy_lines)
        .await
        .map_err(|e| e.to_string())??;
    if !lines.iter().any(|(s, _)| *s == leader) {
        return Err(format!("HAProxy has no line for {leader}"));
    }
    Ok(())
}

/// PgBouncer and HAProxy against the leader (`None`: only what needs no leader): what is
/// wrong with the parts clients go through, and what could not be read.
pub async fn front(lab: &Lab, leader: Option<&str>) -> (Vec<Finding>, Vec<String>) {
    let mut d = Diagnosis {
        leader: None,
        findings: Vec::new(),
        not_checked: Vec::new(),
    };
    match pgbouncer_paused(lab).await {
        Ok(true) => d.findings.push(Finding {
            code: leftover::PGBOUNCER_PAUSED,
            severity: Severity::Broken,
            part: lab::PGBOUNCER.into(),
            what: "PgBouncer is paused: clients through it wait, then time out".into(),
            evidence: "SHOW STATE / SHOW DATABASES say paused".into(),
            repair: "RESUME on PgBouncer's admin console (`patroni-lab doctor --repair` does it)"
                .into(),
        }),
        Ok(false) => {}
        Err(e) => d.not_checked.push(format!("PgBouncer's state: {e}")),
    }
    if let Some(leader) = leader {
        match pgbouncer_target(lab, true).await {
            Ok(t) if t != leader => d.findings.push(Finding {
                code: "pgbouncer-not-on-leader",
                severity: Severity::Broken,
                part: lab::PGBOUNCER.into(),
                what: format!("PgBouncer sends clients to {t}, not to the leader {leader}"),
                evidence: format!("host= in {}", lab::PGBOUNCER_INI),
                repair: format!(
                    "run the leader's callback again: {} (`patroni-lab doctor --repair` does it)",
                    lab.host(leader).map_or_else(
                        |_| format!(
                            "`patroni-lab callback on_role_change primary {}` on {leader}",
                            lab::SCOPE
                        ),
                        |h| format!(
                            "`{}`",
                            h.how_to_run(&format!(
                                "patroni-lab callback on_role_change primary {}",
                                lab::SCOPE
                            ))
                        )
                    )
                ),
            }),
            Ok(_) => {}
            Err(e) => d.not_checked.push(format!("PgBouncer's target: {e}")),
        }
    }
    let lines = tokio::task::spawn_blocking(haproxy_lines)
        .await
        .unwrap_or_else(|e| Err(e.to_string()));
    let lines = match lines {
        Ok(l) => l,
        Err(e) => {
            d.not_checked.push(format!("HAProxy's lines: {e}"));
            return (d.findings, d.not_checked);
        }
    };
    let hold = lab::HAPROXY_HOLD_LINE
        .rsplit('/')
        .next()
        .unwrap_or_default();
    for (server, status) in &lines {
        if server == hold {
            if !status.starts_with("MAINT") {
                d.findings.push(Finding {
                    code: leftover::HAPROXY_HOLD_ENABLED,
                    severity: Severity::Broken,
                    part: lab::HAPROXY.into(),
                    what: "HAProxy's hold line is enabled: new clients on 5432 are held".into(),
                    evidence: format!("show stat: {} {status}", lab::HAPROXY_HOLD_LINE),
                    repair: format!(
                        "disable server {} on HAProxy's runtime API (`patroni-lab doctor --repair` does it)",
                        lab::HAPROXY_HOLD_LINE
                    ),
                });
            }
        } else if let Some(leader) = leader {
            let up = status.starts_with("UP");
            if (server == leader) != up {
                d.findings.push(Finding {
                    code: "haproxy-not-on-leader",
                    severity: Severity::Broken,
                    part: lab::HAPROXY.into(),
                    what: format!("HAProxy's line for {server} is {status}; the leader is {leader}"),
                    evidence: "show stat on HAProxy's runtime API".into(),
                    repair: "HAProxy follows Patroni's /primary health check: if it stays, see that member's REST API".into(),
                });
            }
        }
    }
    (d.findings, d.not_checked)
}

/// The leader's `pg_stat_replication` as its Patroni reports it (`GET /patroni`'s
/// `replication`): (application_name, state, sync_state).
pub fn rest_senders(me: &serde_json::Value) -> Vec<(String, String, String)> {
    me["replication"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    let t = |k: &str| r[k].as_str().unwrap_or_default().to_string();
                    (t("application_name"), t("state"), t("sync_state"))
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `pg_stat_replication` rows (application_name, state, sync_state) as triples.
pub fn senders(rows: &[Vec<Option<String>>]) -> Vec<(String, String, String)> {
    rows.iter()
        .map(|r| {
            let cell = |i: usize| r.get(i).cloned().flatten().unwrap_or_default();
            (cell(0), cell(1), cell(2))
        })
        .collect()
}

/// Fails when a member other than `leader` is on its own timeline with the leader's ID, or
/// when that cannot be told (a member that cannot be read is not taken for one that is fine).
/// Each replica is read before the leader (`direct::diverged` reads the leader last).
async fn not_diverged(lab: &Lab, leader: &str, leader_url: &str) -> Result<(), String> {
    for other in lab.nodes.iter().filter(|n| n.name != leader) {
        let Some(url) = &other.pg_url else {
            return Err(format!(
                "{}'s WAL against the leader's: no direct address",
                other.name
            ));
        };
        let r = crate::direct::replica_state(url, &lab.password)
            .await
            .map_err(|e| format!("{} could not be read directly: {e}", other.name))?;
        if !r.in_recovery {
            continue;
        }
        match crate::direct::diverged(leader_url, &lab.password, &r).await {
            Ok(None) => {}
            Ok(Some(evidence)) => {
                return Err(format!(
                    "{} holds WAL the leader never had: {evidence}; `patroni-lab doctor` names the repair",
                    other.name
                ));
            }
            Err(e) => {
                return Err(format!(
                    "{}'s WAL against the leader's could not be compared: {e}",
                    other.name
                ));
            }
        }
    }
    Ok(())
}

/// The first cell `sql` returns on `member`'s PostgreSQL over a direct connection, from a
/// blocking thread (faults run on one); `Err` when the member has no direct address.
pub fn direct_cell(lab: &Lab, member: &str, sql: &str) -> Result<Option<String>, String> {
    let url = lab
        .node(member)
        .and_then(|n| n.pg_url.clone())
        .ok_or_else(|| format!("no direct address for {member}"))?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    let rows = runtime.block_on(query(&url, &lab.password, sql))?;
    Ok(rows.first().and_then(|r| r.first().cloned().flatten()))
}

/// Whether PgBouncer is paused: all of it (`PAUSE`: `SHOW STATE` says paused yes) or one
/// database (`PAUSE postgres`, as the paused switchover does: its `SHOW DATABASES` row's
/// `paused` column is 1).
pub async fn pgbouncer_paused(lab: &Lab) -> Result<bool, String> {
    let admin = |command: &'static str| pgbouncer_admin(lab, command);
    let state = admin("SHOW STATE")
        .await
        .map_err(|e| format!("PgBouncer: {e}"))?;
    let dbs = admin("SHOW DATABASES")
        .await
        .map_err(|e| format!("PgBouncer: {e}"))?;
    Ok(paused_in(&state, &dbs))
}

/// Whether `SHOW STATE` and `SHOW DATABASES` (their rows) say PgBouncer or a database is paused.
pub fn paused_in(state: &[Vec<Option<String>>], dbs: &[Vec<Option<String>>]) -> bool {
    let cell = |r: &Vec<Option<String>>, i: usize| r.get(i).cloned().flatten();
    let all = state
        .iter()
        .any(|r| cell(r, 0).as_deref() == Some("paused") && cell(r, 1).as_deref() == Some("yes"));
    // SHOW DATABASES: `paused` is the second to last column (then `disabled`).
    let one = dbs
        .iter()
        .any(|r| r.len() >= 2 && cell(r, r.len() - 2).as_deref() == Some("1"));
    all || one
}

/// What resumes what `SHOW STATE` and `SHOW DATABASES` say is paused: `RESUME` for all of
/// PgBouncer, `RESUME <db>` for each paused database (a plain `RESUME` fails with "pooler is
/// not paused/suspended" when only a database is).
pub fn resume_commands(state: &[Vec<Option<String>>], dbs: &[Vec<Option<String>>]) -> Vec<String> {
    let cell = |r: &Vec<Option<String>>, i: usize| r.get(i).cloned().flatten();
    let mut out = Vec::new();
    if state
        .iter()
        .any(|r| cell(r, 0).as_deref() == Some("paused") && cell(r, 1).as_deref() == Some("yes"))
    {
        out.push("RESUME".to_string());
    }
    for r in dbs {
        if r.len() >= 2 && cell(r, r.len() - 2).as_deref() == Some("1") {
            if let Some(name) = cell(r, 0) {
                out.push(format!("RESUME {name}"));
            }
        }
    }
    out
}

/// Resumes whatever is paused in PgBouncer; says what it sent.
pub async fn pgbouncer_resume(lab: &Lab) -> Result<String, String> {
    let target = lab.pgbouncer()?;
    let limit = Duration::from_secs(5);
    let admin = patroni_lab_callback::pgbouncer::admin_command;
    let state = admin(target, "SHOW STATE", limit)
        .await
        .map_err(|e| e.to_string())?;
    let dbs = admin(target, "SHOW DATABASES", limit)
        .await
        .map_err(|e| e.to_string())?;
    let commands = resume_commands(&state, &dbs);
    for c in &commands {
        admin(target, c, limit)
            .await
            .map_err(|e| format!("{c}: {e}"))?;
    }
    Ok(if commands.is_empty() {
        "nothing was paused any more".into()
    } else {
        format!("{} sent", commands.join(", "))
    })
}

/// HAProxy's client-facing lines and their status (`show stat` through the runtime API):
/// `("patroni1", "UP")`, `("hold", "MAINT")`, ...
pub fn haproxy_lines() -> Result<Vec<(String, String)>, String> {
    let csv = crate::lab::haproxy_runtime("show stat").map_err(|e| e.to_string())?;
    let (proxy, _) = crate::lab::HAPROXY_HOLD_LINE
        .split_once('/')
        .unwrap_or_default();
    Ok(stat_lines(&csv, proxy))
}

/// The servers of `proxy` in HAProxy's `show stat` CSV, with their status.
pub fn stat_lines(csv: &str, proxy: &str) -> Vec<(String, String)> {
    let mut lines = csv.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .trim_start_matches("# ")
        .split(',')
        .collect();
    let col = |name: &str| header.iter().position(|h| *h == name);
    let (Some(px), Some(sv), Some(st)) = (col("pxname"), col("svname"), col("status")) else {
        return Vec::new();
    };
    lines
        .map(|l| l.split(',').collect::<Vec<_>>())
        .filter(|f| f.get(px) == Some(&proxy))
        .filter(|f| !matches!(f.get(sv), Some(&"FRONTEND") | Some(&"BACKEND")))
        .filter_map(|f| Some((f.get(sv)?.to_string(), f.get(st)?.to_string())))
        .collect()
}

/// Patroni's dynamic configuration, read once for a run (a scenario run, a matrix cell, a
/// soak): its timing, and whether synchronous replication is on, which the whole checks need.
/// Faults do not change it; a profile applied between runs does, so each run reads its own.
#[derive(Debug, Clone)]
pub struct Live {
    pub config: serde_json::Value,
}

impl Live {
    /// One `GET /config` (the first member that answers), counted as `by`'s.
    pub async fn read(lab: &Lab, by: crate::lab::ConfigReader) -> Result<Self, String> {
        let lab = lab.clone();
        let config = tokio::task::spawn_blocking(move || crate::lab::patroni_config(&lab, by))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("reading the cluster's settings (GET /config): {e}"))?;
        Ok(Self { config })
    }

    /// Whether synchronous replication is on.
    pub fn synchronous(&self) -> bool {
        synchronous_on(&self.config)
    }

    /// Read once it answers, within `limit` (a member still starting is one more wait, as it
    /// is for a whole cluster); a signal (`stop`) ends the wait at once.
    pub async fn read_within(
        lab: &Lab,
        by: crate::lab::ConfigReader,
        limit: Duration,
        stop: &tokio::sync::watch::Receiver<bool>,
    ) -> Result<Self, String> {
        let start = Instant::now();
        loop {
            if *stop.borrow() {
                return Err("stopped by a signal while reading the cluster's settings".into());
            }
            match Self::read(lab, by).await {
                Ok(live) => return Ok(live),
                Err(e) if start.elapsed() >= limit => {
                    return Err(format!(
                        "the cluster is not whole after {:.0} s: {e}",
                        limit.as_secs_f64()
                    ));
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
            }
        }
    }
}

/// Whether Patroni's dynamic configuration turns synchronous replication on: `true`, or
/// `"on"`, `"true"`, `"quorum"` (Patroni 4's quorum commit).
pub fn synchronous_on(config: &serde_json::Value) -> bool {
    let mode = &config["synchronous_mode"];
    mode.as_bool() == Some(true) || matches!(mode.as_str(), Some("on" | "true" | "quorum"))
}

/// Before a run: every container of the lab running (a stopped etcd, say, is named at once,
/// instead of a wait for a whole cluster that cannot come).
pub fn containers_up(lab: &Lab) -> Result<(), String> {
    let down = lab.not_running();
    if down.is_empty() {
        return Ok(());
    }
    Err(format!(
        "{}: `make up` starts the lab's containers again",
        down.join(", ")
    ))
}

/// Waits until the cluster is whole; returns it and how long it took. A signal (`stop`) ends
/// the wait at once.
pub async fn wait_whole(
    lab: &Lab,
    live: &Live,
    limit: Duration,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<(Whole, Duration), String> {
    let start = Instant::now();
    loop {
        if *stop.borrow() {
            return Err("stopped by a signal while waiting for a whole cluster".into());
        }
        match whole(lab, live).await {
            Ok(w) => return Ok((w, start.elapsed())),
            Err(e) if start.elapsed() >= limit => {
                return Err(format!(
                    "the cluster is not whole after {:.0} s: {e}",
                    limit.as_secs_f64()
                ));
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// Waits until someone holds the leader key (a storm's next fault acts on them, whole or
/// not); returns the holder.
pub async fn wait_holder(
    lab: &Lab,
    limit: Duration,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Result<String, String> {
    let start = Instant::now();
    loop {
        if *stop.borrow() {
            return Err("stopped by a signal while waiting for a leader".into());
        }
        let l = lab.clone();
        let holder = tokio::task::spawn_blocking(move || lock_holder(&l))
            .await
            .map_err(|e| e.to_string())?;
        match holder {
            Ok(Some(h)) => return Ok(h),
            _ if start.elapsed() >= limit => {
                return Err(format!(
                    "nobody held the leader key within {:.0} s",
                    limit.as_secs_f64()
                ));
            }
            _ => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paused_is_all_of_pgbouncer_or_one_database() {
        let row = |cells: &[&str]| {
            cells
                .iter()
                .map(|c| Some(c.to_string()))
                .collect::<Vec<_>>()
        };
        let state = |p: &str| {
            vec![
                row(&["active", "yes"]),
                row(&["paused", p]),
                row(&["suspended", "no"]),
            ]
        };
        // name, host, port, ..., paused, disabled (PgBouncer 1.24: 17 columns).
        let db = |paused: &str| {
            let mut r = row(&["postgres", "patroni1", "5432"]);
            r.extend((0..12).map(|_| Some("0".to_string())));
            r.push(Some(paused.into()));
            r.push(Some("0".into()));
            r
        };
        assert!(!paused_in(&state("no"), &[db("0")]));
        assert!(paused_in(&state("yes"), &[db("0")]));
        assert!(paused_in(&state("no"), &[db("1")]), "PAUSE postgres");
        assert_eq!(
            resume_commands(&state("no"), &[db("0")]),
            Vec::<String>::new()
        );
        assert_eq!(resume_commands(&state("yes"), &[db("0")]), vec!["RESUME"]);
        assert_eq!(
            resume_commands(&state("no"), &[db("1")]),
            vec!["RESUME postgres"],
            "a plain RESUME fails when only a database is paused"
        );
    }

    #[test]
    fn haproxy_stat_lines_of_one_proxy() {
        let csv = "# pxname,svname,qcur,qmax,scur,smax,slim,stot,bin,bout,dreq,dresp,ereq,econ,eresp,wretr,wredis,status,weight\n\
postgres_primary,FRONTEND,,,0,1,2000,3,0,0,0,0,0,,,,,OPEN,\n\
postgres_primary,patroni1,0,0,0,1,,3,0,0,,0,,0,0,0,0,UP,1\n\
postgres_primary,patroni2,0,0,0,0,,0,0,0,,0,,0,0,0,0,DOWN,1\n\
postgres_primary,hold,0,0,0,0,,0,0,0,,0,,0,0,0,0,MAINT,1\n\
postgres_primary,BACKEND,0,0,0,1,200,3,0,0,0,0,,0,0,0,0,UP,1\n\
patroni1_api,patroni1,0,0,0,0,,0,0,0,,0,,0,0,0,0,UP,1\n";
        assert_eq!(
            stat_lines(csv, "postgres_primary"),
            vec![
                ("patroni1".to_string(), "UP".to_string()),
                ("patroni2".to_string(), "DOWN".to_string()),
                ("hold".to_string(), "MAINT".to_string()),
            ]
        );
        assert!(stat_lines("garbage", "postgres_primary").is_empty());
    }
}
