//! The fault's timeline on the probe's clock: every fault step the runner takes, and every
//! change of leader or member role seen by polling the REST API (every 250 ms) and of PgBouncer's
//! target (SHOW DATABASES). Events are stamped with the wall clock and put on the run's clock
//! (microseconds since the probe began) once the probe's start is known.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use tokio::sync::watch;

use crate::cluster;
use crate::lab::Lab;

/// Who recorded an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// A step the runner took (inject, undo, a wait that ended).
    Fault,
    /// A change seen in the cluster.
    Cluster,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    pub unix_us: u64,
    /// On the probe's clock (can be negative: before the probe started).
    pub at_us: i64,
    pub source: Source,
    pub what: String,
}

pub fn unix_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

/// The events of one run, shared by the runner and the poller.
#[derive(Debug, Clone, Default)]
pub struct Timeline(Arc<Mutex<Vec<Event>>>);

impl Timeline {
    pub fn record(&self, source: Source, what: impl Into<String>) {
        let e = Event {
            unix_us: unix_us(),
            at_us: 0,
            source,
            what: what.into(),
        };
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(e);
    }

    /// The events in order, on the clock of a probe that started at `started_unix_us`.
    pub fn events(&self, started_unix_us: u64) -> Vec<Event> {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner()).clone();
        all.sort_by_key(|e| e.unix_us);
        for e in &mut all {
            e.at_us = e.unix_us as i64 - started_unix_us as i64;
        }
        all
    }
}

/// How often the cluster is polled.
pub const POLL: Duration = Duration::from_millis(250);

/// One node's own view (`GET /patroni`): its role and state, or that it does not answer.
fn node_view(api_url: &str) -> String {
    let answer = patroni_lab_common::patroni::get(api_url, "/patroni", crate::lab::REST_TIMEOUT);
    let Ok((_, body)) = answer else {
        return "REST API not answering".into();
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let text = |k: &str| v[k].as_str().unwrap_or("?").to_string();
    format!("{} ({})", text("role"), text("state"))
}

/// The DCS view (`GET /cluster`): who holds the leader lock.
fn lock_view(lab: &Lab) -> String {
    match cluster::view(lab) {
        Ok(v) => match v.leader() {
            Some(m) => format!("leader lock: {}", m.name),
            None => "leader lock: none".into(),
        },
        Err(_) => "leader lock: unknown (no /cluster answer; the DCS may be down)".into(),
    }
}

/// Records changes until `stop` turns true: each node's role and state, the leader lock, and
/// PgBouncer's target.
pub async fn poll_cluster(lab: Lab, timeline: Timeline, mut stop: watch::Receiver<bool>) {
    let mut last: Vec<String> = Vec::new();
    loop {
        let seen = {
            let lab = lab.clone();
            tokio::task::spawn_blocking(move || {
                let mut now: Vec<String> = lab
                    .nodes
                    .iter()
                    .map(|n| format!("{}: {}", n.name, node_view(&n.api_url)))
                    .collect();
                now.push(lock_view(&lab));
                now
            })
            .await
            .unwrap_or_default()
        };
        let mut now = seen;
        if lab.containers {
            now.push(match cluster::pgbouncer_target(&lab, false).await {
                Ok(t) => format!("PgBouncer -> {t}"),
                Err(e) => format!("PgBouncer: {e}"),
            });
        }
        for (i, line) in now.iter().enumerate() {
            if last.get(i) != Some(line) {
                timeline.record(Source::Cluster, line.clone());
            }
        }
        last = now;
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
