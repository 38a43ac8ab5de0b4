//! The fault's timeline on the probe's clock: every fault step the runner takes, and every
//! change seen by sampling each source on its own task — each member's REST API, each member's
//! PostgreSQL on a direct connection (primary and its timeline, replica, or not answering),
//! etcd's leader key and HAProxy's routing lines (its stats page) every 100 ms (300 ms
//! time-out), PgBouncer's target (SHOW DATABASES) every 250 ms. What a sample saw is kept typed
//! ([`Seen`]) beside its text, for the window's phases (`patroni_lab_scenario::phases`).
//! A change is stamped when the sample that saw it ended, so it lies at most one sampling gap
//! earlier — from the start of the sample before (which may have read the old state at its
//! very start) to the end of this one; each source's real gaps (max, p99) go in the report. Events are stamped with the
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
    /// What a cluster sample saw, typed (`what` is its text).
    #[serde(skip)]
    pub seen: Option<Seen>,
    /// What a step of the runner's is, typed (`what` is its text): the queries read this.
    #[serde(skip)]
    pub mark: Option<Mark>,
}

/// A step of the runner's that later queries look for, typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// The fault injected (its text says where in the leader's loop it landed).
    Injected,
    /// A soak's event: injected, followed at once (a storm), or whole again.
    SoakEvent,
    /// A doctor's finding, or a part it could not read, when the cluster was not whole again.
    Doctor,
}

/// What one sample of one source saw.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    /// A member's REST API: its role and state (`None`: not answering).
    Rest {
        member: String,
        role: Option<(String, String)>,
    },
    /// A member's PostgreSQL on a direct connection.
    Postgres { member: String, state: PgState },
    /// Who holds the leader lock.
    Lock(LockSeen),
    /// The host PgBouncer sends clients to (`Err`: what it said instead), and how many clients
    /// wait in its queue for a server connection (`SHOW POOLS` `cl_waiting`; `None`: not read).
    PgBouncer {
        target: Result<String, String>,
        waiting: Option<u64>,
    },
    /// The members whose line HAProxy's client port routes to (UP), or what it said instead.
    HaProxy(Result<Vec<String>, String>),
    /// The replicas HAProxy's reader port (5433) routes to (UP; none: the leader), or what it
    /// said instead.
    Readers(Result<Vec<String>, String>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum LockSeen {
    Held(String),
    Free,
    /// The DCS could not be read.
    Unknown,
}

#[derive(Debug, Clone, PartialEq)]
pub enum PgState {
    /// Out of recovery, writing on this timeline.
    Primary {
        timeline: u32,
    },
    Replica,
    /// No answer within the sample's time-out, or a refusal.
    NotAnswering,
}

impl Seen {
    /// Which source (and member) saw it: a later sample with the same key replaces it.
    pub fn key(&self) -> String {
        match self {
            Seen::Rest { member, .. } => format!("rest {member}"),
            Seen::Postgres { member, .. } => format!("postgres {member}"),
            Seen::Lock(_) => "lock".into(),
            Seen::PgBouncer { .. } => "pgbouncer".into(),
            Seen::HaProxy(_) => "haproxy".into(),
            Seen::Readers(_) => "readers".into(),
        }
    }
}

impl std::fmt::Display for Seen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seen::Rest {
                member,
                role: Some((role, state)),
            } => write!(f, "{member}: {role} ({state})"),
            Seen::Rest { member, role: None } => write!(
                f,
                "{member}: REST API not answering within {} ms",
                SAMPLE_TIMEOUT.as_millis()
            ),
            Seen::Postgres { member, state } => match state {
                PgState::Primary { timeline } => {
                    write!(f, "{member} PostgreSQL: primary, timeline {timeline}")
                }
                PgState::Replica => write!(f, "{member} PostgreSQL: in recovery"),
                PgState::NotAnswering => write!(
                    f,
                    "{member} PostgreSQL: not answering within {} ms",
                    SAMPLE_TIMEOUT.as_millis()
                ),
            },
            Seen::Lock(LockSeen::Held(h)) => write!(f, "leader lock: {h}"),
            Seen::Lock(LockSeen::Free) => write!(f, "leader lock: none"),
            Seen::Lock(LockSeen::Unknown) => {
                write!(
                    f,
                    "leader lock: unknown (the DCS cannot be read; it may be down)"
                )
            }
            Seen::PgBouncer { target, waiting } => {
                match target {
                    Ok(t) => write!(f, "PgBouncer -> {t}")?,
                    Err(e) => write!(f, "PgBouncer: {e}")?,
                }
                match waiting {
                    Some(0) | None => Ok(()),
                    Some(n) => write!(f, ", {n} clients waiting for a server"),
                }
            }
            Seen::HaProxy(Ok(up)) if up.is_empty() => write!(f, "HAProxy -> no line up"),
            Seen::HaProxy(Ok(up)) => write!(f, "HAProxy -> {}", up.join(", ")),
            Seen::HaProxy(Err(e)) => write!(f, "HAProxy: {e}"),
            Seen::Readers(Ok(up)) if up.is_empty() => {
                write!(f, "readers -> the leader (no replica in the pool)")
            }
            Seen::Readers(Ok(up)) => write!(f, "readers -> {}", up.join(", ")),
            Seen::Readers(Err(e)) => write!(f, "readers: {e}"),
        }
    }
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
            seen: None,
            mark: None,
        };
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(e);
    }

    /// Records a step of the runner's that later queries look for (`mark`), now.
    pub fn mark(&self, mark: Mark, what: impl Into<String>) {
        let e = Event {
            unix_us: patroni_lab_common::unix_us(),
            at_us: 0,
            source: Source::Fault,
            what: what.into(),
            seen: None,
            mark: Some(mark),
        };
        self.0.lock().unwrap_or_else(|e| e.into_inner()).push(e);
    }

    /// Records what a cluster sample saw, now.
    pub fn observe(&self, seen: Seen) {
        let e = Event {
            unix_us: patroni_lab_common::unix_us(),
            at_us: 0,
            source: Source::Cluster,
            what: seen.to_string(),
            seen: Some(seen),
            mark: None,
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

/// How evenly one source was sampled: each gap from the start of one sample to the end of the
/// next (a change is known to lie within one gap before the sample that saw it: after the
/// sample before it began, which may have read the old state at its start).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Sampling {
    pub source: String,
    pub samples: usize,
    pub max_gap_ms: Option<f64>,
    pub p99_gap_ms: Option<f64>,
}

impl Sampling {
    /// From each sample's start and end.
    fn of(source: String, samples: &[(std::time::Instant, std::time::Instant)]) -> Self {
        let mut gaps: Vec<f64> = samples
            .windows(2)
            .map(|w| (w[1].1 - w[0].0).as_secs_f64() * 1000.0)
            .collect();
        gaps.sort_by(f64::total_cmp);
        let p99 = (!gaps.is_empty()).then(|| {
            let i = ((gaps.len() as f64) * 0.99).ceil() as usize;
            gaps[i.clamp(1, gaps.len()) - 1]
        });
        Self {
            source,
            samples: samples.len(),
            max_gap_ms: gaps.last().copied(),
            p99_gap_ms: p99,
        }
    }
}

/// One member's own view (`GET /patroni`): its role and state, or that it does not answer.
fn node_view(member: &str, api_url: &str) -> Seen {
    let role = patroni_lab_common::patroni::get(api_url, "/patroni", SAMPLE_TIMEOUT)
        .ok()
        .map(|(_, body)| {
            let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            let text = |k: &str| v[k].as_str().unwrap_or("?").to_string();
            (text("role"), text("state"))
        });
    Seen::Rest {
        member: member.into(),
        role,
    }
}

/// Who holds the leader lock: etcd's own key (the lab), else the REST view of it.
fn lock_view(lab: &Lab) -> Seen {
    Seen::Lock(match cluster::lock_holder_within(lab, SAMPLE_TIMEOUT) {
        Ok(Some(holder)) => LockSeen::Held(holder),
        Ok(None) => LockSeen::Free,
        Err(_) => LockSeen::Unknown,
    })
}

/// A member's PostgreSQL on a direct connection: primary (and its timeline, from the name of
/// the WAL file it writes), replica, or not answering within the sample's time-out.
async fn postgres_view(member: String, url: String, password: String) -> Seen {
    const SQL: &str = "SELECT pg_is_in_recovery(), CASE WHEN pg_is_in_recovery() THEN NULL \
                       ELSE substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8) END";
    let read = tokio::time::timeout(SAMPLE_TIMEOUT, cluster::query(&url, &password, SQL)).await;
    let state = match read {
        Ok(Ok(rows)) => match rows.first().map(|r| (r[0].as_deref(), r.get(1))) {
            Some((Some("f"), Some(Some(tli)))) => PgState::Primary {
                timeline: u32::from_str_radix(tli, 16).unwrap_or(0),
            },
            Some((Some("t"), _)) => PgState::Replica,
            _ => PgState::NotAnswering,
        },
        _ => PgState::NotAnswering,
    };
    Seen::Postgres { member, state }
}

/// The lines of `proxy` that are UP, from HAProxy's stats page (its CSV, published on
/// loopback).
fn lines_up(stats_url: &str, proxy: &str) -> Result<Vec<String>, String> {
    patroni_lab_common::patroni::get(stats_url, "/;csv", SAMPLE_TIMEOUT)
        .map_err(|e| format!("stats page not answering: {e}"))
        .map(|(_, csv)| {
            cluster::stat_lines(&csv, proxy)
                .into_iter()
                .filter(|(_, status)| status.starts_with("UP"))
                .map(|(line, _)| line)
                .collect()
        })
}

/// The members HAProxy's client port routes to: its tracked lines that are UP.
fn haproxy_view(stats_url: &str) -> Seen {
    let (proxy, _) = crate::lab::HAPROXY_HOLD_LINE
        .split_once('/')
        .unwrap_or_default();
    Seen::HaProxy(lines_up(stats_url, proxy))
}

/// Samples one source every `every` until `stop`, recording each change; returns when each
/// sample ended.
async fn sample<F: std::future::Future<Output = Seen>>(
    name: String,
    every: Duration,
    timeline: Timeline,
    mut stop: watch::Receiver<bool>,
    read: impl Fn() -> F,
) -> Sampling {
    let mut last: Option<Seen> = None;
    let mut samples = Vec::new();
    loop {
        let next = tokio::time::Instant::now() + every;
        let began = std::time::Instant::now();
        let seen = read().await;
        samples.push((began, std::time::Instant::now()));
        if last.as_ref() != Some(&seen) {
            timeline.observe(seen.clone());
            last = Some(seen);
        }
        tokio::select! {
            _ = tokio::time::sleep_until(next) => {}
            _ = stop.changed() => {}
        }
        if *stop.borrow() {
            return Sampling::of(name, &samples);
        }
    }
}

/// A blocking read off the async workers (`lost`: what a read that failed to run counts as).
async fn blocking(read: impl FnOnce() -> Seen + Send + 'static, lost: Seen) -> Seen {
    tokio::task::spawn_blocking(read).await.unwrap_or(lost)
}

/// HAProxy's two samplers: the writers' routing (5432) and the reader pool (5433).
fn haproxy_samplers(
    stats: String,
    timeline: &Timeline,
    stop: &watch::Receiver<bool>,
) -> [tokio::task::JoinHandle<Sampling>; 2] {
    let readers = stats.clone();
    [
        tokio::spawn(sample(
            "HAProxy routing".into(),
            POLL,
            timeline.clone(),
            stop.clone(),
            move || {
                let stats = stats.clone();
                let lost = Seen::HaProxy(Err("sampling failed".into()));
                blocking(move || haproxy_view(&stats), lost)
            },
        )),
        tokio::spawn(sample(
            "HAProxy readers".into(),
            POLL,
            timeline.clone(),
            stop.clone(),
            move || {
                let stats = readers.clone();
                let lost = Seen::Readers(Err("sampling failed".into()));
                blocking(
                    move || Seen::Readers(lines_up(&stats, crate::lab::HAPROXY_READERS)),
                    lost,
                )
            },
        )),
    ]
}

/// Records changes until `stop` turns true, each source on its own task: each member's role
/// and state and its PostgreSQL, the leader lock, PgBouncer's target and HAProxy's routing.
/// Returns each source's sampling gaps.
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
            let lost = Seen::Rest {
                member: name.clone(),
                role: None,
            };
            blocking(move || node_view(&name, &url), lost)
        };
        tasks.push(tokio::spawn(sample(
            format!("{} REST", node.name),
            POLL,
            timeline.clone(),
            stop.clone(),
            read,
        )));
        if let Some(pg_url) = &node.pg_url {
            let (name, url, password) = (node.name.clone(), pg_url.clone(), lab.password.clone());
            tasks.push(tokio::spawn(sample(
                format!("{} PostgreSQL", node.name),
                POLL,
                timeline.clone(),
                stop.clone(),
                move || postgres_view(name.clone(), url.clone(), password.clone()),
            )));
        }
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
                blocking(move || lock_view(&lab), Seen::Lock(LockSeen::Unknown))
            },
        )));
    }
    if let Some(stats) = lab.haproxy_stats_url.clone() {
        tasks.extend(haproxy_samplers(stats, &timeline, &stop));
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
                    Seen::PgBouncer {
                        target: cluster::pgbouncer_target(&lab, false).await,
                        waiting: cluster::pgbouncer_waiting(&lab).await.ok(),
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
        let at = |ms: u64| t0 + Duration::from_millis(ms);
        // (start, end): the fourth sample took 300 ms (a time-out).
        let samples: Vec<_> = [
            (0u64, 10),
            (100, 110),
            (200, 210),
            (900, 1200),
            (1300, 1310),
        ]
        .iter()
        .map(|(a, b)| (at(*a), at(*b)))
        .collect();
        let s = Sampling::of("x".into(), &samples);
        assert_eq!(s.samples, 5);
        // From the third sample's start (200) to the fourth's end (1200): the change it saw may
        // have come just after the third read the old state.
        assert_eq!(s.max_gap_ms, Some(1000.0));
        assert_eq!(s.p99_gap_ms, Some(1000.0));
        // Ends alone would say 990 ms.
        let one = Sampling::of("y".into(), &samples[..1]);
        assert_eq!(
            one.max_gap_ms, None,
            "one sample has no gap: not measured, not 0"
        );
    }
}
