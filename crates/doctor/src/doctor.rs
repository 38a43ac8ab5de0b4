//! The doctor: reads the live cluster (the lab, or a cluster given by URLs: REST and SQL) and
//! names every known bad state in one line each, with its evidence and its repair. Each check
//! reads its part on its own; a part that cannot be read is said so ("not checked"), never
//! taken for healthy. `repair` performs the repairs that are safe to automate.
//!
//! The state that motivated it: two members that each made a timeline with the same ID (a
//! switchover, then the new leader stopped before the old one streamed from it: Patroni issues
//! #1251 and #2118). Patroni compares timeline IDs only, so the member that comes back is shown
//! as a "running" replica that never streams again. The doctor compares the WAL itself: the
//! bytes of the replica's last checkpoint record against the leader's WAL at the same place.

use patroni_lab_common::etcd;
use serde::Serialize;

use patroni_lab_cluster::cluster::{self, query};
use patroni_lab_cluster::direct::{diverged_or_unchecked, lsn_text, parse_lsn, replica_state};
use patroni_lab_cluster::findings::leftover;
pub use patroni_lab_cluster::findings::{Diagnosis, Finding, Severity};
use patroni_lab_cluster::host::{Action, Host, HostError, Service, Signal};
use patroni_lab_cluster::lab::{self, Lab, Node};

/// Reads the cluster and lists what is wrong.
pub async fn examine(lab: &Lab) -> Diagnosis {
    let mut d = Diagnosis {
        leader: None,
        findings: Vec::new(),
        not_checked: Vec::new(),
    };
    let holder = {
        let lab = lab.clone();
        tokio::task::spawn_blocking(move || cluster::lock_holder(&lab))
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
    };
    match holder {
        Ok(Some(h)) => d.leader = Some(h),
        Ok(None) => d.findings.push(Finding {
            code: "no-leader",
            severity: Severity::Broken,
            part: "cluster".into(),
            what: "no member holds the leader key: nobody accepts writes".into(),
            evidence: "the leader key is free".into(),
            repair: "see `patronictl list`: a member should take the lock within ttl; if none can (all replicas lagging or not running), start the stopped members".into(),
        }),
        Err(e) => d.not_checked.push(format!("the leader key: {e}")),
    }
    let statuses = member_statuses(lab).await;
    versions(&statuses, &mut d);
    if let Some(leader) = d.leader.clone() {
        second_primaries(lab, &leader, &mut d).await;
        members(lab, &leader, &statuses, &mut d).await;
    }
    if lab.containers {
        let (found, unread) = cluster::front(lab, d.leader.as_deref()).await;
        d.findings.extend(found);
        d.not_checked.extend(unread);
        host_leftovers(lab, &mut d).await;
    }
    d
}

/// A fault's leftovers and nothing else — an undo still armed in this process, a container not
/// running (stopped, paused), a packet filter, a process stopped by a signal, PgBouncer paused,
/// HAProxy's hold line enabled — each with its evidence and repair. The one leftover detector:
/// `examine` looks for the same, and the soak asks this after its last event. A service that
/// is not running is itself the finding; its own state is not read.
pub async fn leftovers(lab: &Lab) -> Diagnosis {
    let mut d = Diagnosis {
        leader: None,
        findings: patroni_lab_cluster::guard::armed_list()
            .into_iter()
            .map(|what| Finding {
                code: leftover::UNDO_ARMED,
                severity: Severity::Broken,
                part: "this run".into(),
                what: format!("an undo still armed: {what}"),
                evidence: "the runner's registry of armed undos".into(),
                repair: "a second SIGINT undoes every armed fault; else the undo named".into(),
            })
            .collect(),
        not_checked: Vec::new(),
    };
    if !lab.containers {
        return d;
    }
    host_leftovers(lab, &mut d).await;
    let down: Vec<String> = d
        .findings
        .iter()
        .filter(|f| f.code == leftover::CONTAINER_NOT_RUNNING)
        .map(|f| f.part.clone())
        .collect();
    let (found, unread) = cluster::front(lab, None).await;
    d.findings.extend(found.into_iter().filter(|f| {
        matches!(
            f.code,
            leftover::PGBOUNCER_PAUSED | leftover::HAPROXY_HOLD_ENABLED
        )
    }));
    let service_down = |line: &str| {
        (line.starts_with("PgBouncer") && down.iter().any(|p| p == lab::PGBOUNCER))
            || (line.starts_with("HAProxy") && down.iter().any(|p| p == lab::HAPROXY))
    };
    d.not_checked
        .extend(unread.into_iter().filter(|l| !service_down(l)));
    // A service not running is the finding; what of it could not be read then is not news.
    d.not_checked
        .retain(|l| !down.iter().any(|p| l.starts_with(&format!("{p}'s"))));
    d
}

/// The service a "not running" line is about ("patroni1 is paused", "etcd: no such container").
fn part_of(line: &str) -> &str {
    line.split(' ')
        .next()
        .unwrap_or_default()
        .trim_end_matches(':')
}

/// Examines the cluster and puts each finding, and each part not read, on `timeline` (after
/// `prefix`): why a run or a soak event was not whole again.
pub async fn explain(
    lab: &Lab,
    timeline: &patroni_lab_cluster::timeline::Timeline,
    prefix: &str,
) -> Diagnosis {
    use patroni_lab_cluster::timeline::Mark;
    let d = examine(lab).await;
    for f in &d.findings {
        timeline.mark(
            Mark::Doctor,
            format!("{prefix}doctor: {} [{}]: {}", f.part, f.code, f.what),
        );
    }
    for n in &d.not_checked {
        timeline.mark(Mark::Doctor, format!("{prefix}doctor: not checked: {n}"));
    }
    d
}

/// Every member but the lock holder asked on its own PostgreSQL, not through Patroni (whose
/// REST API is a thread of a Patroni that may be frozen): one that is not in recovery is a
/// second primary, accepting writes the cluster will not keep.
async fn second_primaries(lab: &Lab, leader: &str, d: &mut Diagnosis) {
    const SQL: &str = "SELECT pg_is_in_recovery()::text, \
           CASE WHEN pg_is_in_recovery() THEN NULL \
             ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int::text END, \
           CASE WHEN pg_is_in_recovery() THEN NULL ELSE pg_current_wal_lsn()::text END, \
           (SELECT count(*) FROM pg_stat_activity \
              WHERE backend_type = 'client backend' AND pid <> pg_backend_pid())::text, \
           (SELECT sum(xact_commit)::text FROM pg_stat_database), \
           (SELECT setting FROM pg_settings WHERE name = 'track_commit_timestamp'); \
         SELECT (pg_last_committed_xact()).timestamp::text \
           WHERE current_setting('track_commit_timestamp')::bool";
    for node in lab.nodes.iter().filter(|n| n.name != leader) {
        let Some(url) = &node.pg_url else {
            d.not_checked.push(format!(
                "whether {} is a second primary (no address)",
                node.name
            ));
            continue;
        };
        let rows = match query(url, &lab.password, SQL).await {
            Ok(rows) => rows,
            // PostgreSQL not answering is not a primary taking writes; the member checks name
            // a member that is down.
            Err(e) => {
                d.not_checked
                    .push(format!("whether {} is a second primary: {e}", node.name));
                continue;
            }
        };
        let cell = |r: usize, c: usize| rows.get(r).and_then(|x| x.get(c).cloned().flatten());
        if cell(0, 0).as_deref() != Some("false") {
            continue;
        }
        let last_commit =
            cell(1, 0).unwrap_or_else(|| "not readable (track_commit_timestamp is off)".into());
        d.findings.push(second_primary_finding(
            lab,
            &node.name,
            leader,
            &format!(
                "{} is not in recovery (pg_is_in_recovery() false on its own PostgreSQL): timeline {}, at {}, {} client connections, {} transactions committed since its statistics began, last commit {last_commit}",
                node.name,
                cell(0, 1).unwrap_or_else(|| "?".into()),
                cell(0, 2).unwrap_or_else(|| "?".into()),
                cell(0, 3).unwrap_or_else(|| "?".into()),
                cell(0, 4).unwrap_or_else(|| "?".into()),
            ),
        ));
    }
}

/// A member's PostgreSQL that is a primary while another member holds the leader key.
fn second_primary_finding(lab: &Lab, member: &str, leader: &str, evidence: &str) -> Finding {
    Finding {
        code: "second-primary",
        severity: Severity::Broken,
        part: member.to_string(),
        what: format!(
            "{member}'s PostgreSQL is a primary while {leader} holds the leader key: a split brain; what clients write to {member} the cluster will not keep"
        ),
        evidence: evidence.to_string(),
        repair: format!(
            "keep clients off {member} (its address, its pooler); if its Patroni is stopped (see process-stopped), continue it: Patroni then demotes it and rewinds it onto {leader}'s timeline; else stop its PostgreSQL ({}) and `patronictl reinit {} {member}` once its writes are saved or given up",
            stop_hint(lab, member),
            lab::SCOPE
        ),
    }
}

/// Each member's `GET /patroni`, or why it could not be read.
async fn member_statuses(lab: &Lab) -> Vec<(Node, Result<serde_json::Value, String>)> {
    let mut out = Vec::new();
    for node in &lab.nodes {
        let url = node.api_url.clone();
        let status = tokio::task::spawn_blocking(move || cluster::member_status(&url))
            .await
            .unwrap_or_else(|e| Err(e.to_string()));
        out.push((node.clone(), status));
    }
    out
}

/// Members on different PostgreSQL or Patroni versions.
fn versions(statuses: &[(Node, Result<serde_json::Value, String>)], d: &mut Diagnosis) {
    let mut seen: Vec<(String, String)> = Vec::new();
    for (node, status) in statuses {
        // A member whose PostgreSQL is not up reports no version: nothing to compare.
        if let Some(s) = status
            .as_ref()
            .ok()
            .filter(|s| s["server_version"].is_u64())
        {
            let pg = s["server_version"].to_string();
            let patroni = s["patroni"]["version"].as_str().unwrap_or("?").to_string();
            seen.push((
                node.name.clone(),
                format!("PostgreSQL {pg}, Patroni {patroni}"),
            ));
        }
    }
    if seen.windows(2).any(|w| w[0].1 != w[1].1) {
        let list: Vec<String> = seen.iter().map(|(n, v)| format!("{n}: {v}")).collect();
        d.findings.push(Finding {
            code: "mixed-versions",
            severity: Severity::Degraded,
            part: "cluster".into(),
            what: "members run different versions".into(),
            evidence: list.join("; "),
            repair: "finish the upgrade: run every member on the same image".into(),
        });
    }
}

/// The leader's own state, and each replica against it: streaming, diverged, promotable.
async fn members(
    lab: &Lab,
    leader: &str,
    statuses: &[(Node, Result<serde_json::Value, String>)],
    d: &mut Diagnosis,
) {
    let Some((leader_node, Ok(me))) = statuses.iter().find(|(n, _)| n.name == leader) else {
        d.not_checked
            .push(format!("{leader}'s REST API (it holds the leader key)"));
        return;
    };
    let (role, state) = (
        me["role"].as_str().unwrap_or("?"),
        me["state"].as_str().unwrap_or("?"),
    );
    if !matches!(role, "primary" | "master") || state != "running" {
        d.findings.push(Finding {
            code: "leader-not-serving",
            severity: Severity::Broken,
            part: leader.into(),
            what: format!("{leader} holds the leader key but is {role} ({state})"),
            evidence: format!("GET /patroni on {leader}: role {role}, state {state}"),
            repair: format!(
                "wait one loop_wait; if it stays, see its log ({}) and `patronictl list`",
                log_hint(lab, leader)
            ),
        });
    }
    let Some(leader_url) = leader_node.pg_url.clone() else {
        replicas_by_rest(lab, leader, me, statuses, d).await;
        return;
    };
    let leader_sql = query(
        &leader_url,
        &lab.password,
        "SELECT pg_current_wal_lsn()::text, timeline_id::text FROM pg_control_checkpoint(); \
         SELECT application_name, state, sync_state FROM pg_stat_replication",
    )
    .await;
    let rows = match leader_sql {
        Ok(rows) => rows,
        Err(e) => {
            d.not_checked.push(format!("{leader} directly: {e}"));
            return;
        }
    };
    let cell = |r: usize, c: usize| rows.get(r).and_then(|x| x.get(c).cloned().flatten());
    let Some(leader_lsn) = cell(0, 0).and_then(|s| parse_lsn(&s)) else {
        d.not_checked.push(format!(
            "the replicas against {leader}: its WAL position could not be read"
        ));
        return;
    };
    let senders = cluster::senders(rows.get(1..).unwrap_or_default());
    let config = {
        let lab = lab.clone();
        tokio::task::spawn_blocking(move || lab::patroni_config(&lab, lab::ConfigReader::Doctor))
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
    };
    let max_lag = config
        .as_ref()
        .ok()
        .and_then(|c| c["maximum_lag_on_failover"].as_u64())
        .unwrap_or(1_048_576);
    let mut promotable = 0;
    let mut replicas = 0;
    let failover_from = optime_in_etcd(lab).await;
    let leader_at = LeaderAt {
        name: leader,
        url: &leader_url,
        lsn: leader_lsn,
        failover_from: failover_from.unwrap_or(leader_lsn),
        senders: &senders,
        max_lag,
    };
    for (node, status) in statuses.iter().filter(|(n, _)| n.name != leader) {
        replicas += 1;
        if replica(lab, &leader_at, node, status, d).await {
            promotable += 1;
        }
    }
    if replicas > 0 && promotable == 0 {
        d.findings.push(Finding {
            code: "no-failover-possible",
            severity: Severity::Degraded,
            part: "cluster".into(),
            what: format!(
                "no replica could take over: the next failure of {leader} is a full outage"
            ),
            evidence: format!(
                "no replica streams within maximum_lag_on_failover ({max_lag} bytes) of the leader's position in etcd ({}) without nofailover",
                failover_from.map_or("not readable: its live position used".into(), lsn_text)
            ),
            repair: "mend the replicas named above first".into(),
        });
    }
    synchronous(lab, leader, &senders, config.as_ref().ok(), d);
}

/// A cluster given by URLs: what the REST APIs say of the replicas (running, streaming from
/// the leader, a synchronous standby), without their WAL.
async fn replicas_by_rest(
    lab: &Lab,
    leader: &str,
    me: &serde_json::Value,
    statuses: &[(Node, Result<serde_json::Value, String>)],
    d: &mut Diagnosis,
) {
    d.not_checked.push(format!(
        "the replicas' WAL against the leader's (no direct address for {leader})"
    ));
    let senders = cluster::rest_senders(me);
    for (node, status) in statuses.iter().filter(|(n, _)| n.name != leader) {
        match status {
            Err(_) => d.not_checked.push(format!("{}'s REST API", node.name)),
            Ok(s) => {
                let state = s["state"].as_str().unwrap_or("?");
                if !matches!(state, "running" | "streaming") {
                    d.findings.push(not_running_finding(lab, &node.name, state));
                }
                if !senders
                    .iter()
                    .any(|(n, st, _)| *n == node.name && st == "streaming")
                {
                    d.findings.push(Finding {
                        code: "replica-not-streaming",
                        severity: Severity::Degraded,
                        part: node.name.clone(),
                        what: format!("{} does not stream from {leader}", node.name),
                        evidence: format!(
                            "GET /patroni on {leader}: replication {senders:?}"
                        ),
                        repair: format!(
                            "see {}'s PostgreSQL log; a replica that cannot follow is mended with `patronictl reinit {} {}`",
                            node.name,
                            lab::SCOPE,
                            node.name
                        ),
                    });
                }
            }
        }
    }
    let config = {
        let lab = lab.clone();
        tokio::task::spawn_blocking(move || lab::patroni_config(&lab, lab::ConfigReader::Doctor))
            .await
            .unwrap_or_else(|e| Err(e.to_string()))
    };
    synchronous(lab, leader, &senders, config.as_ref().ok(), d);
}

/// The leader's position as etcd's status key has it. Patroni measures a replica's lag from it
/// (written every loop), not from the leader's live position, when it decides on a promotion:
/// the same reference here, else (no etcd, or no optime yet: `None`) the live position, which
/// is stricter.
async fn optime_in_etcd(lab: &Lab) -> Option<u64> {
    let url = lab.etcd_url.clone()?;
    tokio::task::spawn_blocking(move || {
        let key = etcd::status_key(lab::NAMESPACE, lab::SCOPE);
        etcd::leader_optime(&url, &key, lab::REST_TIMEOUT)
            .ok()
            .flatten()
    })
    .await
    .ok()
    .flatten()
}

/// The leader as the replicas are checked against it.
struct LeaderAt<'a> {
    name: &'a str,
    url: &'a str,
    lsn: u64,
    /// What a replica's lag is measured from for a promotion: the leader's position in etcd.
    failover_from: u64,
    senders: &'a [(String, String, String)],
    max_lag: u64,
}

/// One replica against the leader: diverged, streaming; returns whether it could be promoted.
async fn replica(
    lab: &Lab,
    l: &LeaderAt<'_>,
    node: &Node,
    status: &Result<serde_json::Value, String>,
    d: &mut Diagnosis,
) -> bool {
    let (leader, leader_url, leader_lsn, senders, max_lag) =
        (l.name, l.url, l.lsn, l.senders, l.max_lag);
    let mut promotable = false;
    let Ok(status) = status else {
        d.not_checked.push(format!("{}'s REST API", node.name));
        return false;
    };
    if matches!(status["role"].as_str(), Some("primary" | "master")) {
        return false; // Named by `second_primaries`, from its own PostgreSQL.
    }
    let state = status["state"].as_str().unwrap_or("?");
    if !matches!(state, "running" | "streaming") {
        d.findings.push(not_running_finding(lab, &node.name, state));
    }
    let streams = senders
        .iter()
        .any(|(n, s, _)| *n == node.name && s == "streaming");
    let Some(url) = &node.pg_url else {
        d.not_checked
            .push(format!("{} directly (no address)", node.name));
        return false;
    };
    let replica = match replica_state(url, &lab.password).await {
        Ok(r) => r,
        // PostgreSQL down (a member that fails to start): its control file still says where
        // its last checkpoint is, read in its container.
        Err(e) => match control_file(lab, &node.name).await {
            Some(r) => r,
            None => {
                d.not_checked.push(format!("{} directly: {e}", node.name));
                return false;
            }
        },
    };
    let lag = replica
        .replay_lsn
        .map(|r| l.failover_from.saturating_sub(r))
        .unwrap_or(u64::MAX);
    if streams && lag <= max_lag && status["tags"]["nofailover"] != true {
        promotable = true;
    }
    // Checked whether it streams or not: a replica on a diverged timeline can show as
    // streaming for a moment each time its WAL receiver restarts.
    let diverged = if replica.in_recovery {
        let (found, unchecked) = diverged_or_unchecked(leader_url, &lab.password, &replica).await;
        if let Some(why) = unchecked {
            d.not_checked.push(format!("{}: {why}", node.name));
        }
        found
    } else {
        Ok(None)
    };
    match diverged {
        Ok(Some(evidence)) => {
            promotable = false;
            d.findings.push(diverged_finding(&node.name, evidence));
        }
        Ok(None) => {}
        Err(e) => d
            .not_checked
            .push(format!("{}'s WAL against the leader's: {e}", node.name)),
    }
    if streams {
        return promotable;
    }
    d.findings.push(Finding {
            code: "replica-not-streaming",
            severity: Severity::Degraded,
            part: node.name.clone(),
            what: format!(
                "{} says {} ({}) but does not stream from {leader}",
                node.name,
                status["role"].as_str().unwrap_or("?"),
                status["state"].as_str().unwrap_or("?")
            ),
            evidence: format!(
                "no pg_stat_replication row on {leader}; its WAL receiver: {}; replayed up to {}, the leader is at {}",
                replica.receiver.as_deref().unwrap_or("none"),
                replica.replay_lsn.map_or("nothing".into(), lsn_text),
                lsn_text(leader_lsn)
            ),
            repair: format!(
                "see {}; a replica that cannot follow is mended with `patronictl reinit {} {}`",
                log_hint(lab, &node.name),
                lab::SCOPE,
                node.name
            ),
        });
    promotable
}

/// How a person reads `part`'s log, as its host says it; a cluster given by URLs has no host
/// here, so the hint says where.
fn log_hint(lab: &Lab, part: &str) -> String {
    lab.host(part).map_or_else(
        |_| format!("{part}'s log on its host"),
        |h| format!("`{}`", h.how_to_read_log()),
    )
}

/// How a person stops `part`, as its host says it.
fn stop_hint(lab: &Lab, part: &str) -> String {
    lab.host(part).map_or_else(
        |_| format!("on {part}'s host"),
        |h| format!("`{}`", h.describe(&Action::Service(Service::Stop))),
    )
}

/// A member whose PostgreSQL is not running.
fn not_running_finding(lab: &Lab, member: &str, state: &str) -> Finding {
    Finding {
        code: "member-not-running",
        severity: Severity::Degraded,
        part: member.to_string(),
        what: format!("{member}'s PostgreSQL is {state}, not running"),
        evidence: format!("GET /patroni on {member}: state {state}"),
        repair: format!(
            "see {}: \"startup process failure\" or \"invalid record\" there means it cannot follow the leader's WAL: `patronictl reinit {} {member}`",
            log_hint(lab, member),
            lab::SCOPE
        ),
    }
}

/// A member whose WAL is not the leader's where it should be: on its own timeline with the
/// leader's timeline ID (a checkpoint, or the record its replay ended with, that the leader's
/// WAL does not have at that place).
fn diverged_finding(member: &str, evidence: String) -> Finding {
    Finding {
        code: "diverged-timeline",
        severity: Severity::Broken,
        part: member.to_string(),
        what: format!(
            "{member} holds WAL the leader never had, where the leader's timeline has other WAL: it will not stream from the leader again, and its writes there are not in the cluster"
        ),
        evidence,
        repair: format!(
            "patronictl reinit {} {member} (discards {member}'s data and clones it from the leader; `patroni-lab doctor --repair` does it)",
            lab::SCOPE
        ),
    }
}

/// A member's control file (`pg_controldata` in its container), in the lab only.
async fn control_file(
    lab: &Lab,
    member: &str,
) -> Option<patroni_lab_cluster::direct::ReplicaState> {
    if !lab.containers {
        return None;
    }
    let host = lab.host(member).ok()?;
    let text = tokio::task::spawn_blocking(move || host.run(&[lab::PG_CONTROLDATA, lab::PGDATA]))
        .await
        .ok()?
        .ok()?;
    patroni_lab_cluster::direct::from_controldata(&text)
}

/// A synchronous standby missing under synchronous_mode.
fn synchronous(
    _lab: &Lab,
    leader: &str,
    senders: &[(String, String, String)],
    config: Option<&serde_json::Value>,
    d: &mut Diagnosis,
) {
    let Some(config) = config else {
        d.not_checked
            .push("synchronous_mode (GET /config did not answer)".into());
        return;
    };
    if patroni_lab_cluster::cluster::synchronous_on(config)
        && !senders
            .iter()
            .any(|(_, _, s)| matches!(s.as_str(), "sync" | "quorum"))
    {
        d.findings.push(Finding {
            code: "no-sync-standby",
            severity: Severity::Degraded,
            part: leader.into(),
            what: "synchronous_mode is on but no replica is a synchronous standby: a failover now cannot promote anyone".into(),
            evidence: format!("pg_stat_replication on {leader}: {senders:?}"),
            repair: "mend or start a replica; Patroni makes it synchronous once it streams".into(),
        });
    }
}

/// A fault's leftovers on the hosts: a container paused or not running, a packet filter, a
/// process stopped by a signal. A member whose container is not running cannot be looked into:
/// said so.
async fn host_leftovers(lab: &Lab, d: &mut Diagnosis) {
    let lab = lab.clone();
    let (found, unread) = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        let mut unread = Vec::new();
        let down = lab.not_running();
        for line in &down {
            out.push(Finding {
                code: leftover::CONTAINER_NOT_RUNNING,
                severity: Severity::Broken,
                part: part_of(line).to_string(),
                what: line.clone(),
                evidence: lab.host(part_of(line)).map_or("the host's state", |h| h.state_source()).into(),
                repair: "`make up` starts the lab's containers again; a paused one is resumed by `patroni-lab doctor --repair`".into(),
            });
        }
        for node in &lab.nodes {
            if down.iter().any(|l| part_of(l) == node.name) {
                unread.push(format!(
                    "{}'s packet filters and stopped processes (its container is not running)",
                    node.name
                ));
                continue;
            }
            let host = match lab.host(&node.name) {
                Ok(h) => h,
                Err(e) => {
                    unread.push(format!("{}'s packet filters and stopped processes: {e}", node.name));
                    continue;
                }
            };
            let (family, table) = lab::FILTER_TABLE;
            match lab::packet_filter_present(host.as_ref()) {
                Ok(false) => {}
                Ok(true) => out.push(Finding {
                    code: leftover::PACKET_FILTER_LEFT,
                    severity: Severity::Broken,
                    part: node.name.clone(),
                    what: format!("{} still has a fault's packet filter (table {family} {table})", node.name),
                    evidence: "nft list tables".into(),
                    repair: format!(
                        "{} (`patroni-lab doctor --repair` does it)",
                        host.describe(&Action::RemoveFilter { family, table })
                    ),
                }),
                Err(e) => unread.push(format!("{}'s packet filters: {e}", node.name)),
            }
            match lab::caps_present(host.as_ref()) {
                Ok(devices) => out.extend(devices.into_iter().map(|device| {
                    let unshape = Action::Unshape { device: device.clone(), saved: None };
                    Finding {
                        code: leftover::QDISC_LEFT,
                        severity: Severity::Broken,
                        part: format!("{} {device}", node.name),
                        what: format!(
                            "{} still has a fault's bandwidth cap on {device} (root qdisc htb {})",
                            node.name,
                            patroni_lab_cluster::shaping::HANDLE
                        ),
                        evidence: "tc qdisc show".into(),
                        repair: format!(
                            "{} (`patroni-lab doctor --repair` does it; the kernel's default root qdisc comes back, not one the fault had saved)",
                            host.describe(&unshape)
                        ),
                    }
                })),
                Err(e) => unread.push(format!("{}'s bandwidth caps: {e}", node.name)),
            }
            match lab::stopped_processes(host.as_ref()) {
                Ok(stopped) => out.extend(stopped.into_iter().map(|(pid, cmd)| Finding {
                    code: leftover::PROCESS_STOPPED,
                    severity: Severity::Broken,
                    part: format!("{} {pid}", node.name),
                    what: format!("{}: process {pid} ({cmd}) is stopped by a signal", node.name),
                    evidence: "State: T in /proc/<pid>/status".into(),
                    repair: format!(
                        "{} (`patroni-lab doctor --repair` does it)",
                        host.describe(&Action::Signal { pid: pid.clone(), signal: Signal::Cont })
                    ),
                })),
                Err(e) => unread.push(format!("{}'s stopped processes: {e}", node.name)),
            }
        }
        (out, unread)
    })
    .await
    .unwrap_or_else(|e| (Vec::new(), vec![format!("the leftovers: {e}")]));
    d.findings.extend(found);
    d.not_checked.extend(unread);
}

/// What `repair` did for one finding.
#[derive(Debug, Clone, Serialize)]
pub struct Repaired {
    pub code: &'static str,
    pub part: String,
    pub done: Result<String, String>,
}

/// Whether a finding's repair discards data (asked for before it runs).
pub fn discards_data(f: &Finding) -> bool {
    f.code == "diverged-timeline"
}

/// Where a member's data is copied before a repair discards it (`None`: `--discard`, no copy).
pub struct Keep<'a> {
    pub copy_to: Option<&'a std::path::Path>,
}

/// Whether a repair's success shows only on a second look (a reinitialised member streams
/// again minutes later): "started", then "repaired" once the second look agrees.
pub fn confirmed_later(code: &str) -> bool {
    code == "diverged-timeline"
}

/// Performs the repairs that can be automated for `findings` (those `allow` lets through).
pub async fn repair(
    lab: &Lab,
    findings: &[Finding],
    keep: &Keep<'_>,
    mut allow: impl FnMut(&Finding) -> bool,
) -> Vec<Repaired> {
    let mut done = Vec::new();
    for f in findings.iter().filter(|f| allow(f)).collect::<Vec<_>>() {
        let result = match f.code {
            leftover::PGBOUNCER_PAUSED => cluster::pgbouncer_resume(lab).await,
            leftover::HAPROXY_HOLD_ENABLED => {
                let command = format!("disable server {}", lab::HAPROXY_HOLD_LINE);
                tokio::task::spawn_blocking(move || lab::haproxy_runtime(&command))
                    .await
                    .map_err(|e| e.to_string())
                    .and_then(|r| r.map_err(|e| e.to_string()))
                    .map(|_| "hold line disabled".to_string())
            }
            leftover::PACKET_FILTER_LEFT => {
                let (family, table) = lab::FILTER_TABLE;
                host_step(
                    lab,
                    &f.part,
                    move |h| h.act(&Action::RemoveFilter { family, table }).map(|_| ()),
                    "packet filter removed".to_string(),
                )
                .await
            }
            leftover::QDISC_LEFT => {
                let (member, device) = f.part.split_once(' ').unwrap_or((&f.part, ""));
                let unshape = Action::Unshape {
                    device: device.to_string(),
                    saved: None,
                };
                host_step(
                    lab,
                    member,
                    move |h| h.act(&unshape),
                    format!("bandwidth cap taken off {member}'s {device}"),
                )
                .await
            }
            leftover::PROCESS_STOPPED => {
                let (member, pid) = f.part.split_once(' ').unwrap_or((&f.part, ""));
                let cont = Action::Signal {
                    pid: pid.to_string(),
                    signal: Signal::Cont,
                };
                host_step(
                    lab,
                    member,
                    move |h| h.act(&cont),
                    format!("process {pid} in {member} continued"),
                )
                .await
            }
            "diverged-timeline" => match keep_copy(lab, f, keep).await {
                Ok(kept) => reinit(lab, &f.part).await.map(|r| format!("{kept}; {r}")),
                Err(e) => Err(e),
            },
            "pgbouncer-not-on-leader" => match cluster::lock_holder(lab) {
                // The leader's own callback, as Patroni runs it on a role change.
                Ok(Some(leader)) => {
                    host_step(
                        lab,
                        &leader,
                        |h| {
                            h.run(&[
                                "patroni-lab",
                                "callback",
                                "on_role_change",
                                "primary",
                                lab::SCOPE,
                            ])
                            .map(|_| ())
                        },
                        format!("{leader}'s callback ran"),
                    )
                    .await
                }
                Ok(None) => Err("nobody holds the leader key".into()),
                Err(e) => Err(e),
            },
            leftover::CONTAINER_NOT_RUNNING if f.what.ends_with(" is paused") => {
                host_step(
                    lab,
                    &f.part,
                    |h| h.act(&Action::Service(Service::Resume)),
                    format!("{} unpaused", f.part),
                )
                .await
            }
            _ => continue,
        };
        done.push(Repaired {
            code: f.code,
            part: f.part.clone(),
            done: result,
        });
    }
    done
}

/// One step on `part`'s host off the async workers; `done` when it succeeded.
async fn host_step(
    lab: &Lab,
    part: &str,
    step: impl FnOnce(&dyn Host) -> Result<(), HostError> + Send + 'static,
    done: String,
) -> Result<String, String> {
    let host = lab.host(part)?;
    tokio::task::spawn_blocking(move || step(host.as_ref()))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| e.to_string())
        .map(|_| done)
}

/// Before a reinitialise discards `f.part`'s data (the only copy of the writes it holds past
/// the fork): says what is lost, and copies its data directory out of its container, unless
/// told not to (`--discard`). A cluster given by URLs cannot be copied from here.
async fn keep_copy(lab: &Lab, f: &Finding, keep: &Keep<'_>) -> Result<String, String> {
    let member = f.part.clone();
    patroni_lab_common::say!(
        "{member}'s data is to be discarded: its WAL past the leader's fork ({}) holds writes no other member has; its transactions there are not counted (its WAL receiver may have overwritten its own files past the fork)",
        f.evidence
    );
    let Some(dir) = keep.copy_to else {
        return Ok("no copy kept (--discard)".into());
    };
    if !lab.containers {
        return Err(format!(
            "no copy of {member}'s data can be kept from here (a cluster given by URLs): copy it on its host first, then repair with --discard"
        ));
    }
    let target = dir.join(format!(
        "{member}-pgdata-{}",
        patroni_lab_common::unix_us() / 1_000_000
    ));
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let host = lab.host(&member)?;
    let to = target.clone();
    tokio::task::spawn_blocking(move || host.copy_out(lab::PGDATA, &to))
        .await
        .map_err(|e| e.to_string())?
        .map_err(|e| format!("copying {member}'s data directory: {e}"))?;
    patroni_lab_common::say!(
        "kept a copy of {member}'s data directory in {}",
        target.display()
    );
    Ok(format!("a copy kept in {}", target.display()))
}

/// `POST /reinitialize` on `member` (what `patronictl reinit` does): its data is discarded and
/// cloned from the leader.
async fn reinit(lab: &Lab, member: &str) -> Result<String, String> {
    let node = lab
        .node(member)
        .cloned()
        .ok_or_else(|| format!("{member} is not a member here"))?;
    let auth = lab.auth.clone();
    tokio::task::spawn_blocking(move || {
        patroni_lab_common::patroni::send_json(
            &node.api_url,
            "POST",
            "/reinitialize",
            r#"{"force": true}"#,
            Some(&auth),
            lab::REST_TIMEOUT,
        )
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| e.to_string())
    .and_then(|(status, body)| {
        if status == 200 {
            Ok(format!("reinitialize started on {member}"))
        } else {
            Err(format!(
                "POST /reinitialize on {member}: {status} {}",
                body.trim()
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lab() -> Lab {
        Lab::from_env()
    }

    fn sync_findings(config: serde_json::Value, sync_state: &str) -> Vec<&'static str> {
        let mut d = Diagnosis {
            leader: None,
            findings: Vec::new(),
            not_checked: Vec::new(),
        };
        let senders = vec![("patroni2".into(), "streaming".into(), sync_state.into())];
        synchronous(&lab(), "patroni1", &senders, Some(&config), &mut d);
        d.findings.iter().map(|f| f.code).collect()
    }

    /// Patroni 4's `synchronous_mode: quorum` is synchronous replication too: a leader with
    /// no quorum standby is named, one with a quorum standby is not.
    #[test]
    fn no_sync_standby_is_named_under_quorum_commit_too() {
        let quorum = serde_json::json!({"synchronous_mode": "quorum"});
        assert_eq!(sync_findings(quorum.clone(), "async"), ["no-sync-standby"]);
        assert!(sync_findings(quorum, "quorum").is_empty());
        let on = serde_json::json!({"synchronous_mode": true});
        assert_eq!(sync_findings(on.clone(), "potential"), ["no-sync-standby"]);
        assert!(sync_findings(on, "sync").is_empty());
        assert!(sync_findings(serde_json::json!({"synchronous_mode": false}), "async").is_empty());
    }

    #[test]
    fn a_second_primary_is_broken_and_says_how_to_mend_it() {
        let f = second_primary_finding(&lab(), "patroni1", "patroni2", "timeline 3");
        assert_eq!((f.code, f.severity), ("second-primary", Severity::Broken));
        assert!(
            f.what.contains("patroni2 holds the leader key"),
            "{}",
            f.what
        );
        assert!(f.repair.contains("continue it"), "{}", f.repair);
    }
}
