//! The fault's timeline on the probe's clock: every fault step the runner takes, and every
//! change seen by sampling each source on its own task — each member's REST API and etcd's
//! leader key every 100 ms (300 ms time-out), PgBouncer's target (SHOW DATABASES) every 250 ms.
//! A change is stamped when the sample that saw it ended, so it lies at most one sampling gap
//! earlier; each source's real gaps (max, p99) go in the report. Events are stamped with the
//! wall clock and put on the run's clock (microseconds since the probe began) once the probe's
//! start is known.

use std::sync::{Arc, Mutex};
use std::time::Duration;

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

/// The events of one run, shared by the runner and the poller.
#[derive(Debug, Clone, Default)]
pub struct Timeline(Arc<Mutex<Vec<Event>>>);

impl Timeline {
    pub fn record(&self, source: Source, what: impl Into<String>) {
        self.record_at(source, patroni_lab_common::unix_us(), what);
    }

    /// Records an event that happened at `unix_us` (wall clock), not now.
    pub fn record_at(&self, source: Source, unix_us: u64, what: impl Into<String>) {
        let e = Event {
            unix_us,
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

/// How often each source is sampled: a member's REST API and etcd every 100 ms, PgBouncer's
/// admin console every 250 ms (each source on its own task, so a frozen member slows only its
/// own samples).
pub const POLL: Duration = Duration::from_millis(100);
pub const POLL_PGBOUNCER: Duration = Duration::from_millis(250);
/// How long one sample may take before the source counts as not answering.
pub const SAMPLE_TIMEOUT: Duration = Duration::from_millis(300);

/// How evenly one source was sampled: the gaps between the ends of its samples (a change is
/// known to lie within one gap before the sample that saw it).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sampling {
    pub source: String,
    pub samples: usize,
    pub max_gap_ms: Option<f64>,
    pub p99_gap_ms: Option<f64>,
}

impl Sampling {
    fn of(source: String, ends: &[std::time::Instant]) -> Self {
        let mut gaps: Vec<f64> = ends
            .windows(2)
            .map(|w| (w[1] - w[0]).as_secs_f64() * 1000.0)
            .collect();
        gaps.sort_by(f64::total_cmp);
        let p99 = (!gaps.is_empty()).then(|| {
            let i = ((gaps.len() as f64) * 0.99).ceil() as usize;
            gaps[i.clamp(1, gaps.len()) - 1]
        });
        Self {
            source,
            samples: ends.len(),
            max_gap_ms: gaps.last().copied(),
            p99_gap_ms: p99,
        }
    }
}

/// One member's own view (`GET /patroni`): its role and state, or that it does not answer.
fn node_view(api_url: &str) -> String {
    let answer = patroni_lab_common::patroni::get(api_url, "/patroni", SAMPLE_TIMEOUT);
    let Ok((_, body)) = answer else {
        return format!(
            "REST API not answering within {} ms",
            SAMPLE_TIMEOUT.as_millis()
        );
    };
    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let text = |k: &str| v[k].as_str().unwrap_or("?").to_string();
    format!("{} ({})", text("role"), text("state"))
}

/// Who holds the leader lock: etcd's own key (the lab), else the REST view of it.
fn lock_view(lab: &Lab) -> String {
    match cluster::lock_holder(lab) {
        Ok(Some(holder)) => format!("leader lock: {holder}"),
        Ok(None) => "leader lock: none".into(),
        Err(_) => "leader lock: unknown (the DCS cannot be read; it may be down)".into(),
    }
}

/// Samples one source every `every` until `stop`, recording each change; returns when each
/// sample ended.
async fn sample<F: std::future::Future<Output = String>>(
    name: String,
    every: Duration,
    timeline: Timeline,
    mut stop: watch::Receiver<bool>,
    read: impl Fn() -> F,
) -> Sampling {
    let mut last: Option<String> = None;
    let mut ends = Vec::new();
    loop {
        let next = tokio::time::Instant::now() + every;
        let seen = read().await;
        ends.push(std::time::Instant::now());
        if last.as_deref() != Some(seen.as_str()) {
            timeline.record(Source::Cluster, seen.clone());
            last = Some(seen);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return Sampling::of(name, &ends);
        }
    }
}

/// A blocking read off the async workers.
async fn blocking(read: impl FnOnce() -> String + Send + 'static) -> String {
    tokio::task::spawn_blocking(read)
        .await
        .unwrap_or_else(|e| format!("sampling failed: {e}"))
}

/// Records changes until `stop` turns true, each source on its own task: each member's role
/// and state, the leader lock, and PgBouncer's target. Returns each source's sampling gaps.
pub async fn poll_cluster(
    lab: Lab,
    timeline: Timeline,
    stop: watch::Receiver<bool>,
) -> Vec<Sampling> {
    let mut tasks = Vec::new();
    for node in &lab.nodes {
        let (name, url) = (node.name.clone(), node.api_url.clone());
        let read = move || {
            let (name, url) = (name.clone(), url.clone());
            blocking(move || format!("{name}: {}", node_view(&url)))
        };
        tasks.push(tokio::spawn(sample(
            format!("{} REST", node.name),
            POLL,
            timeline.clone(),
            stop.clone(),
            read,
        )));
    }
    {
        let lab = lab.clone();
        let source = if lab.etcd_url.is_some() {
            "etcd leader key"
        } else {
            "leader lock (REST /cluster)"
        };
        tasks.push(tokio::spawn(sample(
            source.into(),
            POLL,
            timeline.clone(),
            stop.clone(),
            move || {
                let lab = lab.clone();
                blocking(move || lock_view(&lab))
            },
        )));
    }
    if lab.containers {
        let lab = lab.clone();
        tasks.push(tokio::spawn(sample(
            "PgBouncer target".into(),
            POLL_PGBOUNCER,
            timeline.clone(),
            stop.clone(),
            move || {
                let lab = lab.clone();
                async move {
                    match cluster::pgbouncer_target(&lab, false).await {
                        Ok(t) => format!("PgBouncer -> {t}"),
                        Err(e) => format!("PgBouncer: {e}"),
                    }
                }
            },
        )));
    }
    let mut out = Vec::new();
    for t in tasks {
        if let Ok(s) = t.await {
            out.push(s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampling_gaps_are_measured_not_assumed() {
        let t0 = std::time::Instant::now();
        let ends: Vec<_> = [0u64, 100, 200, 1200, 1300]
            .iter()
            .map(|ms| t0 + Duration::from_millis(*ms))
            .collect();
        let s = Sampling::of("x".into(), &ends);
        assert_eq!(s.samples, 5);
        assert_eq!(s.max_gap_ms, Some(1000.0));
        assert_eq!(s.p99_gap_ms, Some(1000.0));
        let one = Sampling::of("y".into(), &ends[..1]);
        assert_eq!(
            one.max_gap_ms, None,
            "one sample has no gap: not measured, not 0"
        );
    }
}
