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

/// Records role and target changes until `stop` turns true.
pub async fn poll_cluster(lab: Lab, timeline: Timeline, mut stop: watch::Receiver<bool>) {
    let mut roles: Vec<(String, String)> = Vec::new();
    let mut target: Option<String> = None;
    let mut api_down = false;
    loop {
        let seen = {
            let lab = lab.clone();
            tokio::task::spawn_blocking(move || cluster::view(&lab)).await
        };
        match seen {
            Ok(Ok(v)) => {
                api_down = false;
                let mut now: Vec<(String, String)> = v
                    .members
                    .iter()
                    .map(|m| {
                        let role = if m.role == "leader" || m.role == "standby_leader" {
                            format!("leader ({})", m.state)
                        } else {
                            m.state.clone()
                        };
                        (m.name.clone(), role)
                    })
                    .collect();
                now.sort();
                for (name, role) in &now {
                    if !roles.iter().any(|(n, r)| n == name && r == role) {
                        timeline.record(Source::Cluster, format!("{name} {role}"));
                    }
                }
                for (name, _) in &roles {
                    if !now.iter().any(|(n, _)| n == name) {
                        timeline.record(Source::Cluster, format!("{name} gone from the DCS"));
                    }
                }
                roles = now;
            }
            _ if !api_down => {
                api_down = true;
                timeline.record(Source::Cluster, "no Patroni REST API answers");
            }
            _ => {}
        }
        if lab.containers {
            if let Ok(t) = cluster::pgbouncer_target(&lab).await {
                if target.as_deref() != Some(t.as_str()) {
                    timeline.record(Source::Cluster, format!("PgBouncer -> {t}"));
                    target = Some(t);
                }
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(POLL) => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
    }
}
