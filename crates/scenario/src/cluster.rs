//! What the cluster looks like now, read the way a client-side tool can: Patroni's REST API
//! (members, roles, the leader lock), PgBouncer's admin console (where it sends clients), and
//! a transaction through the client endpoint (does HAProxy route to a primary?). "Whole" means
//! all four agree: a leader, every other member streaming, PgBouncer on the leader, and the
//! endpoint reaching a primary.

use std::str::FromStr;
use std::time::{Duration, Instant};

use patroni_lab_common::patroni::{self, ClusterView};
use patroni_lab_common::pg::query_rows;
use patroni_lab_probe::workload::connect;
use tokio_postgres::Config;

use crate::lab::{Lab, REST_TIMEOUT};

/// The REST view from the first API that answers.
pub fn view(lab: &Lab) -> Result<ClusterView, String> {
    let mut last = String::from("no Patroni REST API configured");
    for node in &lab.nodes {
        match patroni::cluster(&node.api_url, REST_TIMEOUT) {
            Ok(v) => return Ok(v),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// The member holding the leader lock and running.
pub fn leader(lab: &Lab) -> Result<String, String> {
    let v = view(lab)?;
    v.leader()
        .filter(|m| m.state == "running")
        .map(|m| m.name.clone())
        .ok_or_else(|| "no running leader".to_string())
}

fn config(url: &str, password: &str) -> Result<Config, String> {
    let mut c = Config::from_str(url).map_err(|e| format!("{url}: {e}"))?;
    c.password(password);
    c.application_name("patroni-lab-scenario");
    Ok(c)
}

/// Runs one simple query against `url` with a whole time-out.
pub async fn query(
    url: &str,
    password: &str,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, String> {
    let c = config(url, password)?;
    let limit = Duration::from_secs(3);
    let session = connect(&c, limit).await.map_err(|f| f.message)?;
    match tokio::time::timeout(limit, query_rows(&session.client, sql)).await {
        Ok(Ok(rows)) => Ok(rows),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

/// The host PgBouncer sends database `postgres` to, as it runs now (SHOW DATABASES). A `*`
/// database appears once a client has used it (and again after a RELOAD): with `touch`, a
/// client uses it first (that blocks while PgBouncer is paused, so the poller does not).
pub async fn pgbouncer_target(lab: &Lab, touch: bool) -> Result<String, String> {
    if touch {
        let client = lab.pgbouncer_admin_url.replace("/pgbouncer", "/postgres");
        let _ = query(&client, &lab.password, "SELECT 1").await;
    }
    let rows = patroni_lab_callback::pgbouncer::admin_command(
        &lab.pgbouncer_admin,
        "SHOW DATABASES",
        Duration::from_secs(3),
    )
    .await
    .map_err(|e| e.to_string())?;
    rows.iter()
        .find(|r| r.first().cloned().flatten().as_deref() == Some("postgres"))
        .and_then(|r| r.get(1).cloned().flatten())
        .ok_or_else(|| "SHOW DATABASES has no postgres entry".to_string())
}

/// Checks the cluster is whole; returns the leader, or what is missing.
pub async fn whole(lab: &Lab) -> Result<String, String> {
    let v = {
        let lab = lab.clone();
        tokio::task::spawn_blocking(move || view(&lab))
            .await
            .map_err(|e| e.to_string())??
    };
    let leader = v
        .leader()
        .filter(|m| m.state == "running")
        .map(|m| m.name.clone())
        .ok_or("no running leader")?;
    for m in v.members.iter().filter(|m| m.name != leader) {
        if m.state != "streaming" {
            return Err(format!("{} is {} (not streaming)", m.name, m.state));
        }
    }
    // With synchronous replication on, whole means a synchronous standby is registered too: a
    // replica that is only streaming cannot be promoted (seen here: a kill right after a
    // switchover under the sync profile left the cluster without a leader for 120 s).
    if synchronous_mode(lab).await? && !v.members.iter().any(|m| m.role == "sync_standby") {
        return Err("synchronous_mode is on but no member is the synchronous standby yet".into());
    }
    if v.members.len() < lab.nodes.len() {
        return Err(format!(
            "{} of {} members known to the DCS",
            v.members.len(),
            lab.nodes.len()
        ));
    }
    if lab.containers {
        let target = pgbouncer_target(lab, true).await?;
        if target != leader {
            return Err(format!(
                "PgBouncer sends clients to {target}, the leader is {leader}"
            ));
        }
    }
    let rows = query(&lab.client_url, &lab.password, "SELECT pg_is_in_recovery()").await?;
    if rows
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .as_deref()
        != Some("f")
    {
        return Err("the client endpoint reaches a server in recovery".into());
    }
    Ok(leader)
}

/// Whether Patroni's dynamic configuration has synchronous replication on (`GET /config` of the
/// first member that answers; a member that answers nothing is no reason to say off).
async fn synchronous_mode(lab: &Lab) -> Result<bool, String> {
    let lab = lab.clone();
    let config = tokio::task::spawn_blocking(move || crate::lab::patroni_config(&lab))
        .await
        .map_err(|e| e.to_string())??;
    let mode = &config["synchronous_mode"];
    Ok(mode.as_bool() == Some(true) || matches!(mode.as_str(), Some("on" | "true" | "quorum")))
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

/// Waits until the cluster is whole; returns the leader and how long it took.
pub async fn wait_whole(lab: &Lab, limit: Duration) -> Result<(String, Duration), String> {
    let start = Instant::now();
    loop {
        match whole(lab).await {
            Ok(leader) => return Ok((leader, start.elapsed())),
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
