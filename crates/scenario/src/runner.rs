//! One scenario run: a whole cluster, the probe started in-process, the fault injected at a set
//! time and undone, the wait until the cluster is whole again, a short tail, the probe's
//! lost-write check, the grades, and the timeline of it all on the probe's clock.

use std::time::{Duration, Instant};

use patroni_lab_probe::record::{Attempt, Kind};
use patroni_lab_probe::report::{Limits, Report};
use patroni_lab_probe::session;
use patroni_lab_probe::settings::{Keep, Settings};
use serde::Serialize;
use tokio::sync::watch;

use patroni_lab_cluster::cluster::{self, Live};
use patroni_lab_cluster::lab::Lab;
use patroni_lab_cluster::lease::{LeasePhase, Tracker};
use patroni_lab_cluster::timeline::{self, Event, LockSeen, Mark, Seen, Source, Timeline};
use patroni_lab_faults::fault::FaultError;
use patroni_lab_faults::faults::Fault;
use patroni_lab_faults::grade::{self, Expectations, Grade, OldLeaderWrites};

/// What to run.
#[derive(Debug, Clone)]
pub struct Plan {
    pub fault: Fault,
    /// What the scenario changed in the client settings (`Fault::adjust_probe`), if anything.
    pub client_note: Option<String>,
    pub expectations: Expectations,
    /// The probe's settings; its duration is the run's upper bound.
    pub probe: Settings,
    /// When the fault is injected, after the probe started (plus the jitter).
    pub inject_at: Duration,
    /// How much later than `inject_at` the fault may land, picked at random per run.
    pub inject_jitter: Jitter,
    /// How long the probe keeps going once the cluster is whole again.
    pub tail: Duration,
    /// How long to wait for a whole cluster before the run starts.
    pub whole_before: Duration,
    /// Patroni's dynamic configuration the plan was made under, read once (`GET /config`):
    /// the expectations' timing, the loop for a jitter, the whole checks' synchronous mode.
    pub live: Live,
}

/// How far past `inject_at` a run's fault may land, picked uniformly at random per run. Patroni
/// renews the leader lock once per loop, so what a lasting or killing fault costs depends on
/// where in the leader's loop it lands; runs back to back otherwise land at the same point of
/// it every time, each run then paying about the same part of the ttl.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Jitter {
    /// Up to this long (zero: exactly at `inject_at`).
    UpTo(Duration),
    /// Up to the cluster's `loop_wait`, read from `GET /config` when the run starts.
    LoopWait,
    /// Not at random: once the leader lease, after `inject_at`, comes down to this much time
    /// left (`--at-lease-remaining`: the best or the worst point of the loop, on purpose).
    AtLeaseRemaining(Duration),
    /// Run k of a set at the k-th of N lease times left spread evenly over the loop
    /// (`--phases N`; `patroni_lab_cluster::lease::stratified`); the set turns it into `AtLeaseRemaining`.
    Stratified(u32),
}

/// The longest wait for the lease to come down to a chosen time left (two loops of any
/// timing Patroni allows, with room).
const MAX_LEASE_WAIT: Duration = Duration::from_secs(120);

impl Jitter {
    /// The longest jitter for this run, under the plan's live settings.
    fn longest(self, live: &Live) -> Result<Duration, String> {
        match self {
            Self::UpTo(d) => Ok(d),
            Self::AtLeaseRemaining(_) | Self::Stratified(_) => Ok(Duration::ZERO),
            Self::LoopWait => {
                let config = &live.config;
                config["loop_wait"]
                    .as_f64()
                    .filter(|s| s.is_finite() && *s >= 0.0)
                    .map(Duration::from_secs_f64)
                    .ok_or_else(|| {
                        format!("GET /config has no loop_wait ({})", config["loop_wait"])
                    })
            }
        }
    }
}

/// A point picked uniformly at random in `[0, longest)`.
fn pick(longest: Duration) -> Duration {
    // 53 random bits make a uniform fraction in [0, 1).
    let fraction = (patroni_lab_common::random_u64() >> 11) as f64 / (1u64 << 53) as f64;
    longest.mul_f64(fraction)
}

/// One run's result.
#[derive(Debug, Clone, Serialize)]
pub struct ScenarioRun {
    /// When the fault was injected after the probe started: `inject_at` plus this run's jitter.
    pub injected_after_ms: f64,
    /// The longest jitter this run could have had.
    pub jitter_up_to_ms: f64,
    /// The leader lease when the fault was injected: where in the leader's loop it landed
    /// (absent: not measured — no etcd URL, or no change of etcd's figure seen yet).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lease_at_inject: Option<LeasePhase>,
    /// How far the replicas had received the leader's WAL, read just before the wait for the
    /// injection point (the furthest of them; a lower bound of what they had at the injection;
    /// `None`: not read — no direct address, or a replica did not answer). A lost write's
    /// commit lies past it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica_received_at_inject: Option<String>,
    /// When the cluster was not whole again in time: what the doctor found (each finding is
    /// also on the timeline).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub doctor: Vec<patroni_lab_doctor::doctor::Finding>,
    /// The lost acknowledged writes by the member that acknowledged them (from the probe's
    /// history), so the loss shows beside its cause.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub lost_by: Vec<LostBy>,
    pub leader_before: String,
    pub leader_after: Option<String>,
    /// From the fault's injection to the cluster being whole again (`None`: not within the
    /// expectation's limit).
    pub whole_again_ms: Option<f64>,
    /// When the leader before the fault stopped holding the lock (the first sample of the lock
    /// after the injection that saw another holder or none), on the probe's clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_lost_at_us: Option<i64>,
    /// Writes the leader before the fault acknowledged after it had lost the lock (a primary
    /// cut off or frozen that goes on accepting writes); `None` when the lock never moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_leader_writes_after_lock_lost: Option<u64>,
    /// Of those, how many the newest primary's table does not have (they were lost); the rest
    /// reached the new leader before it was promoted. `None`: not counted or not checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_leader_writes_lost: Option<u64>,
    /// The read-side twin: reads (on the writer or the reader endpoint) the leader before the
    /// fault answered as a primary after it had lost the lock — data that may lack the new
    /// leader's writes. Reported, not graded. `None`: the lock never moved, or not counted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_leader_reads_after_lock_lost: Option<u64>,
    /// The reader endpoint's pool in this run: the replica's lag against the threshold, when
    /// it left and came back, the bound from the settings (`None`: no readers).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reader_pool: Option<crate::readers::ReaderPool>,
    /// What the leader before the fault logged about its DCS from the injection on (`None`:
    /// its log was not read — a cluster given by URLs, or the read failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub dcs_log: Option<crate::dcs_log::DcsLog>,
    /// Set when a fault step failed or its effect was not proven (the fault was undone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault_error: Option<String>,
    /// A signal arrived during the run: the fault was cut short or never injected, or the
    /// wait for a whole cluster was cut short. Such a run is not graded and never passes.
    pub interrupted: bool,
    /// The client time-outs this run's probe used, and what the scenario changed in them.
    pub client_timeouts: ClientTimeouts,
    /// The longest any single request waited, whatever its outcome (a queued client, a
    /// time-out): compare with your application's own time-outs. `None`: no history.
    pub longest_wait_ms: Option<f64>,
    /// How evenly each cluster source was sampled: a change on the timeline lies at most one
    /// gap before the sample that saw it.
    pub sampling: Vec<timeline::Sampling>,
    /// The longest window broken into phases, with the settings' predictions (`None`: no
    /// window, or the run was interrupted or its fault did not run as planned).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phases: Option<crate::phases::Phases>,
    pub events: Vec<Event>,
    pub grades: Vec<Grade>,
    pub passed: bool,
    pub probe: Report,
}

impl ClientTimeouts {
    /// The time-outs of `probe`, and what the scenario changed in them.
    pub fn of(probe: &Settings, changed: &Option<String>) -> Self {
        Self {
            statement_ms: probe.statement_timeout.as_secs_f64() * 1000.0,
            connect_ms: probe.connect_timeout.as_secs_f64() * 1000.0,
            changed_by_scenario: changed.clone(),
        }
    }
}

/// Lost acknowledged writes that one server acknowledged.
#[derive(Debug, Clone, Serialize)]
pub struct LostBy {
    /// The server as the probe saw it (address and timeline).
    pub server: String,
    /// The lowest WAL position among them: the server's write position while each INSERT
    /// ran, before its own commit record (a lower bound; `None`: some were not recorded with
    /// one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lowest_wal: Option<String>,
    #[serde(skip)]
    lowest_wal_lsn: Option<u64>,
    /// The server's WAL position that the first later statement on it saw, started after the
    /// first of them was acknowledged: past that write's commit record (committed locally
    /// before the acknowledgement). A lost write's commit was never received by the replica,
    /// so this must lie beyond what the replica had received. `None`: no later statement.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub wal_after_first_ack: Option<String>,
    /// The lab member at that address, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub member: Option<String>,
    pub writes: u64,
    /// When the first and the last of them were acknowledged, on the probe's clock.
    pub first_ack_us: u64,
    pub last_ack_us: u64,
}

/// Each group of lost writes on the timeline, when its first write was acknowledged.
fn record_lost_by(timeline: &Timeline, started_unix_us: u64, lost_by: &[LostBy]) {
    for l in lost_by {
        timeline.record_at(
            Source::Fault,
            started_unix_us + l.first_ack_us,
            format!(
                "lost: {} acknowledged writes by {} ({}), acknowledged from {:+.2} s to {:+.2} s",
                l.writes,
                l.member.as_deref().unwrap_or("a member not known here"),
                l.server,
                l.first_ack_us as f64 / 1e6,
                l.last_ack_us as f64 / 1e6
            ),
        );
    }
}

/// The probe's lost writes grouped by the server that acknowledged them.
fn lost_by(attempts: &[Attempt], report: &Report, lab: &Lab) -> Vec<LostBy> {
    let lost = &report.lost_writes;
    if !lost.checked || lost.missing.is_empty() {
        return Vec::new();
    }
    let missing: std::collections::HashSet<(u32, u64)> =
        lost.missing.iter().map(|w| (w.client, w.seq)).collect();
    let mut by: Vec<LostBy> = Vec::new();
    for a in attempts {
        // A read carries its client's newest acknowledged write's seq: only the write counts.
        if a.outcome != patroni_lab_probe::classify::Outcome::Ok
            || a.kind != Kind::Write
            || !missing.contains(&(a.client, a.seq))
        {
            continue;
        }
        let Some(server) = &a.server else { continue };
        let name = server.to_string();
        match by.iter_mut().find(|l| l.server == name) {
            Some(l) => {
                l.lowest_wal_lsn = l.lowest_wal_lsn.zip(a.wal).map(|(x, y)| x.min(y));
                l.writes += 1;
                l.first_ack_us = l.first_ack_us.min(a.end_us);
                l.last_ack_us = l.last_ack_us.max(a.end_us);
            }
            None => by.push(LostBy {
                member: patroni_lab_cluster::lab::member_at(lab, &server.addr),
                server: name,
                lowest_wal: None,
                lowest_wal_lsn: a.wal,
                wal_after_first_ack: None,
                writes: 1,
                first_ack_us: a.end_us,
                last_ack_us: a.end_us,
            }),
        }
    }
    for l in &mut by {
        l.lowest_wal = l.lowest_wal_lsn.map(patroni_lab_cluster::direct::lsn_text);
        l.wal_after_first_ack = attempts
            .iter()
            .filter(|a| {
                a.outcome == patroni_lab_probe::classify::Outcome::Ok
                    && a.start_us > l.first_ack_us
                    && a.in_recovery == Some(false)
                    && a.server.as_ref().is_some_and(|s| s.to_string() == l.server)
            })
            .filter_map(|a| a.wal)
            .min()
            .map(patroni_lab_cluster::direct::lsn_text);
    }
    by
}

/// The time-outs a run's clients had.
#[derive(Debug, Clone, Serialize)]
pub struct ClientTimeouts {
    pub statement_ms: f64,
    pub connect_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub changed_by_scenario: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunnerError {
    #[error(
        "{0} needs the lab's containers; against a cluster given by URLs only switchover, switchover-paused and restart-leader run"
    )]
    NeedsContainers(&'static str),
    #[error("{0}")]
    NotWhole(String),
    #[error("the probe failed: {0}")]
    Probe(String),
    #[error("cannot pick the injection jitter: {0}; pass --inject-jitter with a duration")]
    Jitter(String),
    #[error("{0}")]
    Refused(String),
}

/// PgBouncer's pool mode as it runs (`SHOW CONFIG`).
async fn pool_mode(lab: &Lab) -> Result<String, String> {
    let rows = cluster::pgbouncer_admin(lab, "SHOW CONFIG").await?;
    rows.iter()
        .find(|r| r.first().cloned().flatten().as_deref() == Some("pool_mode"))
        .and_then(|r| r.get(1).cloned().flatten())
        .ok_or_else(|| "SHOW CONFIG has no pool_mode".into())
}

/// A paused switchover cannot work with persistent clients under session pooling: PAUSE waits
/// for every client to disconnect, and they never do.
async fn refuse_impossible(lab: &Lab, plan: &Plan) -> Result<(), RunnerError> {
    if plan.fault.needs_pgbouncer()
        && plan.probe.mode == patroni_lab_probe::settings::Mode::Persistent
        && pool_mode(lab).await.map_err(RunnerError::NotWhole)? == "session"
    {
        return Err(RunnerError::Refused(format!(
            "{} with persistent clients under session pooling cannot work: PAUSE waits for every client to disconnect, and persistent clients never do; use --mode per-tx, or a profile with pool_mode = transaction",
            plan.fault.name()
        )));
    }
    Ok(())
}

/// Sleeps `d` unless `stop` turns true first; returns false when stopped.
pub async fn sleep_unless(d: Duration, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep(d) => true,
        _ = stop.changed() => !*stop.borrow(),
    }
}

/// What the probe started in-process gives when it stops: its report and the attempts it
/// kept, in the order they ended (its history file is a temporary one, removed).
pub type ProbeRun = tokio::task::JoinHandle<
    Result<(Report, Vec<Attempt>), patroni_lab_probe::session::SessionError>,
>;

/// The probe started in-process, keeping the attempts `keep` keeps in memory; the sender
/// stops it.
pub fn start_probe(settings: Settings, keep: Keep) -> (watch::Sender<bool>, ProbeRun) {
    let (stop, stop_rx) = watch::channel(false);
    let handle = tokio::spawn(async move {
        session::run_kept(&settings, &Limits::default(), stop_rx, keep).await
    });
    (stop, handle)
}

/// Runs `fault` off the async workers (its steps block); `stop` cuts a hold or a wait short,
/// the undo still runs.
pub async fn run_fault(
    fault: Fault,
    lab: &Lab,
    leader: &str,
    timeline: &Timeline,
    stop: &watch::Receiver<bool>,
) -> Result<(), FaultError> {
    let (l, leader, t, stopped) = (
        lab.clone(),
        leader.to_string(),
        timeline.clone(),
        stop.clone(),
    );
    tokio::task::spawn_blocking(move || fault.run(&l, &leader, &t, &|| *stopped.borrow()))
        .await
        .map_err(|e| FaultError::Step(format!("the fault's thread failed: {e}")))
        .and_then(|r| r)
}

/// What happened between the start of the probe and its stop.
struct Course {
    injected_after: Duration,
    jitter_up_to: Duration,
    lease_at_inject: Option<LeasePhase>,
    replica_received_at_inject: Option<u64>,
    fault_result: Result<(), FaultError>,
    whole_again: Option<Duration>,
    leader_after: Option<String>,
    /// What the doctor found when the cluster was not whole in time.
    doctor: Vec<patroni_lab_doctor::doctor::Finding>,
    /// HAProxy's check interval (ms) and rise as the run began (`None`: not read).
    haproxy_check: Option<(f64, u32)>,
    /// The cluster's loop_wait (ms) as the run began (`None`: not read).
    loop_wait_ms: Option<f64>,
    /// What decides when a lagging replica leaves the reader pool, as the run began (`None`:
    /// no readers, or not read).
    reader_settings: Option<crate::readers::ReaderSettings>,
    /// When the fault was injected (wall clock; `None`: never injected).
    injected_unix_us: Option<u64>,
}

/// Runs `plan` once. `stop` (a signal) ends the run early: the fault is undone, the probe
/// stops and still reports.
pub async fn run_once(
    lab: &Lab,
    plan: &Plan,
    stop: watch::Receiver<bool>,
) -> Result<ScenarioRun, RunnerError> {
    if plan.fault.needs_containers() && !lab.containers {
        return Err(RunnerError::NeedsContainers(plan.fault.name()));
    }
    cluster::containers_up(lab).map_err(RunnerError::NotWhole)?;
    refuse_impossible(lab, plan).await?;
    let (before, _) = cluster::wait_whole(lab, &plan.live, plan.whole_before, &stop)
        .await
        .map_err(RunnerError::NotWhole)?;
    let leader_before = before.leader;
    let jitter_up_to = plan
        .inject_jitter
        .longest(&plan.live)
        .map_err(RunnerError::Jitter)?;
    let timeline = Timeline::default();
    let (poll_stop, poll_rx) = watch::channel(false);
    let poller = tokio::spawn(timeline::poll_cluster(
        lab.clone(),
        timeline.clone(),
        poll_rx.clone(),
    ));
    let lease = Tracker::start(lab, poll_rx);
    let probe_settings = pinned(lab, plan, &leader_before)?;
    let haproxy = if lab.containers {
        tokio::task::spawn_blocking(patroni_lab_cluster::profiles::haproxy_live)
            .await
            .ok()
            .and_then(Result::ok)
    } else {
        None
    };
    let haproxy_check = haproxy.map(|h| (h.inter_ms, h.rise));
    let loop_wait_ms = patroni_lab_faults::fault::Timing::from_config(&plan.live.config)
        .ok()
        .map(|t| t.loop_wait as f64 * 1000.0);
    let reader_settings = match (loop_wait_ms, haproxy, &plan.probe.reader) {
        (Some(loop_wait_ms), Some(h), Some(_)) => Some(crate::readers::ReaderSettings {
            threshold_bytes: h.replica_max_lag_bytes,
            loop_wait_ms,
            inter_ms: h.inter_ms,
            fall: h.fall,
        }),
        _ => None,
    };
    let (probe_stop, probe) = start_probe(probe_settings, Keep::All);
    let mut course = inject(
        lab,
        plan,
        &leader_before,
        jitter_up_to,
        lease.as_ref().map(|(t, _)| t),
        &timeline,
        stop.clone(),
    )
    .await;
    course.haproxy_check = haproxy_check;
    course.loop_wait_ms = loop_wait_ms;
    course.reader_settings = reader_settings;
    let _ = probe_stop.send(true);
    let (report, attempts) = probe
        .await
        .map_err(|e| RunnerError::Probe(e.to_string()))?
        .map_err(|e| RunnerError::Probe(e.to_string()))?;
    // What the leader's Patroni logged about its DCS meanwhile, its lines from the injection's
    // millisecond on (a lab's host only: a cluster given by URLs has no log here).
    let dcs_log = match (lab.containers, course.injected_unix_us) {
        (true, Some(us)) => {
            let (lab, leader) = (lab.clone(), leader_before.clone());
            tokio::task::spawn_blocking(move || {
                let log = lab.host(&leader).ok()?.log_since(us / 1_000_000).ok()?;
                Some(crate::dcs_log::read(&leader, &log, us / 1000))
            })
            .await
            .ok()
            .flatten()
        }
        _ => None,
    };
    let _ = poll_stop.send(true);
    let sampling = poller.await.unwrap_or_default();
    if let Some((_, task)) = lease {
        let _ = task.await;
    }
    Ok(conclude(
        lab,
        plan,
        leader_before,
        course,
        dcs_log,
        &timeline,
        sampling,
        &attempts,
        report,
        &stop,
    ))
}

/// The probe's settings, with the fault's pinned clients on the leader's own address.
fn pinned(lab: &Lab, plan: &Plan, leader: &str) -> Result<Settings, RunnerError> {
    let mut probe = plan.probe.clone();
    if plan.fault.effects().pinned_clients > 0 {
        let url = lab
            .node(leader)
            .and_then(|n| n.pg_url.clone())
            .ok_or_else(|| {
                RunnerError::Refused(format!(
                    "{} keeps clients on the leader's own address, and {leader}'s is not known",
                    plan.fault.name()
                ))
            })?;
        probe.pinned = Some(patroni_lab_probe::settings::Pinned {
            endpoint: url.clone(),
            conninfo: url,
            clients: plan.fault.effects().pinned_clients,
        });
    }
    Ok(probe)
}

/// The furthest WAL position any replica of `leader` has received, on each one's own
/// connection (`None` when one cannot be read: an unread replica may be the furthest).
async fn replicas_received(lab: &Lab, leader: &str) -> Option<u64> {
    let mut furthest = None;
    for n in lab.nodes.iter().filter(|n| n.name != leader) {
        let rows = patroni_lab_cluster::direct::query(
            n.pg_url.as_deref()?,
            &lab.password,
            "SELECT pg_last_wal_receive_lsn()::text",
        )
        .await
        .ok()?;
        let lsn = rows
            .first()
            .and_then(|r| r.first().cloned().flatten())
            .and_then(|s| patroni_lab_cluster::direct::parse_lsn(&s))?;
        furthest = furthest.max(Some(lsn));
    }
    furthest
}

/// Waits for the injection point (a random jitter, or the lease's chosen time left), injects
/// the fault, waits for a whole cluster and the tail.
async fn inject(
    lab: &Lab,
    plan: &Plan,
    leader_before: &str,
    jitter_up_to: Duration,
    lease: Option<&Tracker>,
    timeline: &Timeline,
    mut stop: watch::Receiver<bool>,
) -> Course {
    let started = Instant::now();
    let mut course = Course {
        injected_after: plan.inject_at + pick(jitter_up_to),
        jitter_up_to,
        lease_at_inject: None,
        replica_received_at_inject: None,
        fault_result: Ok(()),
        whole_again: None,
        leader_after: None,
        doctor: Vec::new(),
        haproxy_check: None,
        loop_wait_ms: None,
        reader_settings: None,
        injected_unix_us: None,
    };
    // Read before the wait for the injection point, so the injection lands where it was
    // placed: what the replicas had then is at most what they had at the injection (a lower
    // bound, which is all the lost-write check needs).
    course.replica_received_at_inject = replicas_received(lab, leader_before).await;
    let placed = match place(plan, started, lease, &mut course, &mut stop).await {
        Some(p) => p,
        None => return course,
    };
    let injected = Instant::now();
    course.injected_unix_us = Some(patroni_lab_common::unix_us());
    course.lease_at_inject = lease.and_then(Tracker::now);
    let lease_note = course.lease_at_inject.map_or(String::new(), |p| {
        format!(
            "; lease {:.2} s left, renewed {:.2} s before (±{:.0} ms)",
            p.remaining_ms / 1000.0,
            p.age_ms / 1000.0,
            p.precision_ms
        )
    });
    timeline.mark(
        Mark::Injected,
        format!("inject {} ({placed}{lease_note})", plan.fault.written()),
    );
    course.fault_result = run_fault(plan.fault, lab, leader_before, timeline, &stop).await;
    if let Err(FaultError::NoFailover(e)) = &course.fault_result {
        timeline.record(Source::Fault, format!("no failover: {e}"));
    }
    if matches!(course.fault_result, Ok(()) | Err(FaultError::NoFailover(_))) {
        let limit = plan
            .expectations
            .whole_within
            .saturating_sub(injected.elapsed());
        match cluster::wait_whole(lab, &plan.live, limit, &stop).await {
            Ok((w, _)) => {
                course.whole_again = Some(injected.elapsed());
                timeline.record(
                    Source::Fault,
                    format!(
                        "cluster whole again, {} leads (postmaster started {})",
                        w.leader, w.postmaster_start_time
                    ),
                );
                course.leader_after = Some(w.leader);
            }
            Err(e) => {
                timeline.record(Source::Fault, e);
                // Why: the doctor's findings, each on the timeline.
                let d = patroni_lab_doctor::doctor::explain(lab, timeline, "").await;
                course.doctor = d.findings;
            }
        }
        sleep_unless(plan.tail, &mut stop).await;
    }
    course
}

/// Waits for the injection point: the lease's chosen time left, else `inject_at` plus the
/// run's jitter. Says how it was placed; `None` when stopped or the placement failed (then in
/// `course.fault_result`).
async fn place(
    plan: &Plan,
    started: Instant,
    lease: Option<&Tracker>,
    course: &mut Course,
    stop: &mut watch::Receiver<bool>,
) -> Option<String> {
    let Jitter::AtLeaseRemaining(left) = plan.inject_jitter else {
        if !sleep_unless(course.injected_after, stop).await {
            return None;
        }
        return Some(format!(
            "{:.2} s of jitter, up to {:.2} s",
            (course.injected_after - plan.inject_at).as_secs_f64(),
            course.jitter_up_to.as_secs_f64()
        ));
    };
    let Some(tracker) = lease else {
        course.fault_result = Err(FaultError::Step(
            "--at-lease-remaining needs etcd's lease, and this cluster has no etcd URL".into(),
        ));
        return None;
    };
    if !sleep_unless(plan.inject_at, stop).await {
        return None;
    }
    match tracker.wait_for(left, MAX_LEASE_WAIT, stop).await {
        Ok(Some(_)) => {
            course.injected_after = started.elapsed();
            Some(format!(
                "{:.2} s of lease left, as asked",
                left.as_secs_f64()
            ))
        }
        Ok(None) => None,
        Err(e) => {
            course.fault_result = Err(FaultError::Step(e));
            None
        }
    }
}

/// The run's result: what the probe saw, the writes after the lock moved, the grades.
#[allow(clippy::too_many_arguments)]
fn conclude(
    lab: &Lab,
    plan: &Plan,
    leader_before: String,
    course: Course,
    dcs_log: Option<crate::dcs_log::DcsLog>,
    timeline: &Timeline,
    sampling: Vec<timeline::Sampling>,
    attempts: &[Attempt],
    report: Report,
    stop: &watch::Receiver<bool>,
) -> ScenarioRun {
    // Any signal during the run: whatever it cut short, the run is no measurement of the fault.
    let interrupted =
        *stop.borrow() || matches!(course.fault_result, Err(FaultError::Interrupted(_)));
    let fault_error = match &course.fault_result {
        Ok(()) | Err(FaultError::Interrupted(_) | FaultError::NoFailover(_)) => None,
        Err(e) => Some(e.to_string()),
    };
    if let Some(e) = &fault_error {
        timeline.record(Source::Fault, format!("fault step failed: {e} (undone)"));
    }
    if interrupted {
        timeline.record(Source::Fault, "run interrupted by a signal: not graded");
    }
    let lost_by = lost_by(attempts, &report, lab);
    record_lost_by(timeline, report.started_unix_us, &lost_by);
    let events = timeline.events(report.started_unix_us);
    let old = OldLeader::of(
        attempts,
        &report,
        &events,
        &leader_before,
        course.leader_after.as_deref(),
    );
    let longest_wait_ms = longest_wait(attempts);
    let reader_pool = course.reader_settings.and_then(|settings| {
        crate::readers::pool(report.analysis.readers.as_ref(), &events, settings)
    });
    let grades = if interrupted {
        Vec::new()
    } else {
        let mut g = grade::grade(&plan.expectations, &report, course.whole_again, &old.writes);
        if let Err(FaultError::NoFailover(e)) = &course.fault_result {
            g.insert(0, grade::no_failover(e));
        }
        g.extend(crate::readers::grades(
            report.analysis.readers.as_ref(),
            reader_pool.as_ref(),
            plan.fault.effects().needs_readers,
        ));
        g
    };
    let phases = (!interrupted && fault_error.is_none())
        .then(|| phases_of(plan, &course, &events, &sampling, &report, &leader_before))
        .flatten();
    ScenarioRun {
        injected_after_ms: course.injected_after.as_secs_f64() * 1000.0,
        jitter_up_to_ms: course.jitter_up_to.as_secs_f64() * 1000.0,
        lease_at_inject: course.lease_at_inject,
        replica_received_at_inject: course
            .replica_received_at_inject
            .map(patroni_lab_cluster::direct::lsn_text),
        doctor: course.doctor,
        lost_by,
        leader_before,
        leader_after: course.leader_after,
        whole_again_ms: course.whole_again.map(|d| d.as_secs_f64() * 1000.0),
        events,
        lock_lost_at_us: old.lock_lost_at_us,
        old_leader_writes_after_lock_lost: match old.writes {
            OldLeaderWrites::Counted(n) => Some(n),
            _ => None,
        },
        old_leader_writes_lost: old.writes_lost,
        old_leader_reads_after_lock_lost: old.reads,
        reader_pool,
        dcs_log,
        passed: !interrupted && fault_error.is_none() && grades.iter().all(|g| g.pass),
        fault_error,
        interrupted,
        client_timeouts: ClientTimeouts::of(&plan.probe, &plan.client_note),
        longest_wait_ms,
        sampling,
        phases,
        grades,
        probe: report,
    }
}

/// What the leader before the fault did after it lost the lock (until it held it again).
struct OldLeader {
    lock_lost_at_us: Option<i64>,
    writes: OldLeaderWrites,
    /// Of its writes then, the ones the newest primary does not have.
    writes_lost: Option<u64>,
    /// Reads it answered as a primary then.
    reads: Option<u64>,
}

impl OldLeader {
    fn of(
        attempts: &[Attempt],
        report: &Report,
        events: &[Event],
        leader: &str,
        leader_after: Option<&str>,
    ) -> Self {
        let lock_lost_at_us = lock_lost_at(events, leader);
        let span = lock_lost_at_us.map(|at| {
            let until = lock_regained(events, leader, at).unwrap_or(i64::MAX);
            (at, until)
        });
        let after = span.map(|(at, until)| writes_after(attempts, report, at, until));
        let reads = span.and_then(|(at, until)| {
            let old = &report.analysis.servers.first()?.server.addr;
            let reads = answered_by(attempts, old, at, until, |a| {
                a.kind != Kind::Write && a.in_recovery == Some(false)
            });
            Some(reads.len() as u64)
        });
        let writes = match &after {
            // Not seeing the lock move is not proof it stayed: the leader after the fault
            // must be the same one.
            None => lock_kept(leader, leader_after),
            Some(Some(ids)) => OldLeaderWrites::Counted(ids.len() as u64),
            Some(None) => OldLeaderWrites::NotCounted(
                "the probe's first server (the leader before the fault) is not known".into(),
            ),
        };
        // Of those, the ones the newest primary does not have (checked against its table).
        let writes_lost = match (&after, report.lost_writes.checked) {
            (Some(Some(ids)), true) => {
                let missing: std::collections::HashSet<(u32, u64)> = report
                    .lost_writes
                    .missing
                    .iter()
                    .map(|w| (w.client, w.seq))
                    .collect();
                Some(ids.iter().filter(|id| missing.contains(id)).count() as u64)
            }
            _ => None,
        };
        Self {
            lock_lost_at_us,
            writes,
            writes_lost,
            reads,
        }
    }
}

/// The run's longest window by phase, with the predictions the fault and the settings allow.
fn phases_of(
    plan: &Plan,
    course: &Course,
    events: &[Event],
    sampling: &[timeline::Sampling],
    report: &Report,
    leader_before: &str,
) -> Option<crate::phases::Phases> {
    use crate::phases::{Span, SpanKind};
    let a = &report.analysis;
    let longest = a
        .windows
        .iter()
        .max_by(|x, y| x.duration_ms.total_cmp(&y.duration_ms))
        .map(Span::window)
        .or_else(|| {
            a.stalls
                .iter()
                .max_by(|x, y| x.duration_ms.total_cmp(&y.duration_ms))
                .map(Span::stall)
        });
    let settings = crate::phases::Settings {
        lease_left_ms: course
            .lease_at_inject
            .filter(|_| plan.fault.effects().lock_expires)
            .map(|l| (l.remaining_ms, l.precision_ms)),
        haproxy_check: course.haproxy_check,
        client_backoff_ms: plan.probe.backoff_max.as_secs_f64() * 1000.0,
        next_loop_ms: match (course.lease_at_inject, course.loop_wait_ms) {
            (Some(l), Some(wait)) if plan.fault.effects().mended_on_next_loop => {
                Some(((wait - l.age_ms).max(0.0), l.precision_ms))
            }
            _ => None,
        },
    };
    crate::phases::of(
        events,
        sampling,
        longest,
        leader_before,
        course.leader_after.as_deref(),
        settings,
    )
    // A stall is broken up only when the old leader's PostgreSQL stopped serving in it: any
    // run has a longest gap between acknowledgements, most of them no fault's.
    .filter(|p| {
        p.span == SpanKind::Window || p.milestones.first().is_some_and(|m| m.at_us.is_some())
    })
}

/// When the lock left `leader`: the first sample of the lock after the injection that saw
/// another member or none hold it. Unknown (the DCS could not be read) does not count: nothing
/// says the lock was lost then, and no other member can take it while etcd is away.
fn lock_lost_at(events: &[Event], leader: &str) -> Option<i64> {
    let injected = events
        .iter()
        .find(|e| e.mark == Some(Mark::Injected))?
        .at_us;
    lock_left_after(events, leader, injected, i64::MAX)
}

/// No change of the lock seen: kept, when the leader after the fault is the one before it;
/// otherwise the lock moved unseen (a sampler gap, etcd not read) and nothing is counted.
fn lock_kept(leader: &str, leader_after: Option<&str>) -> OldLeaderWrites {
    match leader_after {
        Some(after) if after == leader => OldLeaderWrites::LockKept,
        Some(after) => OldLeaderWrites::NotCounted(format!(
            "{after} leads after the fault but the lock was not seen to leave {leader}"
        )),
        None => OldLeaderWrites::NotCounted(format!(
            "the lock was not seen to leave {leader} and the leader after the fault is not known"
        )),
    }
}

/// The first sample of the leader lock in `[from_us, to_us)` that sees it held by another
/// member or by none ("unknown", the DCS not read, is neither).
pub fn lock_left_after(events: &[Event], leader: &str, from_us: i64, to_us: i64) -> Option<i64> {
    events
        .iter()
        .filter(|e| e.at_us >= from_us && e.at_us < to_us)
        .find(|e| match &e.seen {
            Some(Seen::Lock(LockSeen::Held(holder))) => holder != leader,
            Some(Seen::Lock(LockSeen::Free)) => true,
            _ => false,
        })
        .map(|e| e.at_us)
}

/// The longest single attempt in the history, any outcome, in ms.
fn longest_wait(attempts: &[Attempt]) -> Option<f64> {
    attempts
        .iter()
        .map(|a| a.latency_us())
        .max()
        .map(|us| us as f64 / 1000.0)
}

/// Writes (client, seq) the first server of the run (the leader before the fault)
/// acknowledged after `at_us`.
fn writes_after(
    attempts: &[Attempt],
    report: &Report,
    at_us: i64,
    until_us: i64,
) -> Option<Vec<(u32, u64)>> {
    let old = &report.analysis.servers.first()?.server.addr;
    Some(writes_by_ids(attempts, old, at_us, until_us))
}

/// When `leader` held the lock again after losing it at `lost_us` (a sequence's later step can
/// make it lead again: its writes from then on are a leader's, not an old leader's).
fn lock_regained(events: &[Event], leader: &str, lost_us: i64) -> Option<i64> {
    events
        .iter()
        .filter(|e| e.at_us > lost_us)
        .find(|e| matches!(&e.seen, Some(Seen::Lock(LockSeen::Held(h))) if h == leader))
        .map(|e| e.at_us)
}

/// Writes acknowledged by the server at `addr` (any timeline) that ended in `(from_us, to_us)`
/// on the probe's clock.
pub fn writes_by(attempts: &[Attempt], addr: &str, from_us: i64, to_us: i64) -> u64 {
    writes_by_ids(attempts, addr, from_us, to_us).len() as u64
}

/// As [`writes_by`], the writes themselves (client, seq).
fn writes_by_ids(attempts: &[Attempt], addr: &str, from_us: i64, to_us: i64) -> Vec<(u32, u64)> {
    answered_by(attempts, addr, from_us, to_us, |a| a.kind == Kind::Write)
}

/// The successful attempts `which` picks that the server at `addr` (any timeline) answered,
/// ending in `(from_us, to_us)` on the probe's clock.
fn answered_by(
    attempts: &[Attempt],
    addr: &str,
    from_us: i64,
    to_us: i64,
    which: impl Fn(&Attempt) -> bool,
) -> Vec<(u32, u64)> {
    let mut n = Vec::new();
    for a in attempts {
        let end = a.end_us as i64;
        if a.outcome == patroni_lab_probe::classify::Outcome::Ok
            && which(a)
            && a.server.as_ref().is_some_and(|s| s.addr == addr)
            && end > from_us
            && end < to_us
        {
            n.push((a.client, a.seq));
        }
    }
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The leader lock as a sample saw it at `at_s` (`None`: the DCS not read).
    fn lock(at_s: i64, holder: Option<&str>) -> Event {
        let seen = match holder {
            Some("none") => LockSeen::Free,
            Some(h) => LockSeen::Held(h.into()),
            None => LockSeen::Unknown,
        };
        let t = Timeline::default();
        t.observe(Seen::Lock(seen));
        at(at_s, t)
    }

    /// The fault injected at `at_s`, as the runner marks it.
    fn injected(at_s: i64, name: &str) -> Event {
        let t = Timeline::default();
        t.mark(Mark::Injected, format!("inject {name}"));
        at(at_s, t)
    }

    fn at(at_s: i64, t: Timeline) -> Event {
        let mut e = t.events(0).remove(0);
        e.at_us = at_s * 1_000_000;
        e
    }

    #[test]
    fn a_lock_not_seen_to_move_is_kept_only_when_the_same_leader_leads_after() {
        assert_eq!(
            lock_kept("patroni1", Some("patroni1")),
            OldLeaderWrites::LockKept
        );
        let moved = lock_kept("patroni1", Some("patroni2"));
        assert_eq!(
            moved,
            OldLeaderWrites::NotCounted(
                "patroni2 leads after the fault but the lock was not seen to leave patroni1".into()
            )
        );
        assert!(matches!(
            lock_kept("patroni1", None),
            OldLeaderWrites::NotCounted(_)
        ));
    }

    #[test]
    fn writes_by_counts_exactly_the_old_servers_acknowledged_writes_after_the_lock_moved() {
        use patroni_lab_probe::classify::Outcome;
        use patroni_lab_probe::record::ServerId;
        let attempt = |seq: u64, end_ms: u64, addr: &str, outcome: Outcome, kind: Kind| Attempt {
            client: 0,
            seq,
            kind,
            start_us: end_ms * 1000 - 500,
            end_us: end_ms * 1000,
            outcome,
            connected: false,
            server: Some(ServerId {
                addr: addr.into(),
                timeline: Some(1),
            }),
            in_recovery: Some(false),
            error: None,
            seen: None,
            wal: None,
        };
        let (old, new) = ("172.30.77.11", "172.30.77.12");
        let history = [
            attempt(1, 1000, old, Outcome::Ok, Kind::Write), // before the lock moved
            attempt(2, 5000, old, Outcome::Ok, Kind::Write), // after: counted
            attempt(3, 5100, old, Outcome::Ok, Kind::Write), // after: counted
            attempt(4, 5200, old, Outcome::InDoubt, Kind::Write), // not acknowledged
            attempt(5, 5300, old, Outcome::Ok, Kind::Read),  // not a write
            attempt(6, 5400, new, Outcome::Ok, Kind::Write), // the new leader's
            attempt(7, 9000, old, Outcome::Ok, Kind::Write), // past the window's end
        ];
        assert_eq!(writes_by(&history, old, 4_000_000, 8_000_000), 2);
        assert_eq!(writes_by(&history, new, 4_000_000, 8_000_000), 1);
        assert_eq!(writes_by(&history, old, 0, i64::MAX), 4);
        // The read-side twin picks the reads the old server answered as a primary.
        let reads = |a: &Attempt| a.kind != Kind::Write && a.in_recovery == Some(false);
        assert_eq!(
            answered_by(&history, old, 4_000_000, 8_000_000, reads),
            vec![(0, 5)]
        );
    }

    #[test]
    fn a_picked_jitter_stays_below_its_bound_and_spreads_over_it() {
        let longest = Duration::from_secs(10);
        let picks: Vec<Duration> = (0..2000).map(|_| pick(longest)).collect();
        assert!(picks.iter().all(|p| *p < longest));
        // Uniform: each fifth of the range gets about 400 of 2000 picks.
        for fifth in 0..5 {
            let (lo, hi) = (
                Duration::from_secs(2 * fifth),
                Duration::from_secs(2 * fifth + 2),
            );
            let n = picks.iter().filter(|p| **p >= lo && **p < hi).count();
            assert!((250..550).contains(&n), "fifth {fifth}: {n} of 2000");
        }
        assert_eq!(pick(Duration::ZERO), Duration::ZERO);
    }

    #[test]
    fn the_lock_is_lost_when_another_member_or_none_holds_it_not_while_the_dcs_is_away() {
        let events = vec![
            lock(0, Some("patroni1")),
            injected(5, "etcd-loss"),
            lock(6, None),
            lock(30, Some("patroni1")),
        ];
        assert_eq!(lock_lost_at(&events, "patroni1"), None);
        let mut taken = events.clone();
        taken.push(lock(31, Some("none")));
        taken.push(lock(32, Some("patroni2")));
        assert_eq!(lock_lost_at(&taken, "patroni1"), Some(31_000_000));
    }

    #[test]
    fn a_leader_that_leads_again_later_is_no_old_leader_from_then_on() {
        // A sequence: patroni2 hands over (lock none, then patroni1), patroni1 is stopped,
        // patroni2 takes the lock again at 19 s.
        let events = vec![
            lock(0, Some("patroni2")),
            injected(1, "switchover-then-stop"),
            lock(3, Some("none")),
            lock(4, Some("patroni1")),
            lock(7, Some("none")),
            lock(19, Some("patroni2")),
        ];
        assert_eq!(lock_lost_at(&events, "patroni2"), Some(3_000_000));
        assert_eq!(
            lock_regained(&events, "patroni2", 3_000_000),
            Some(19_000_000)
        );
        assert_eq!(lock_regained(&events, "patroni1", 4_000_000), None);
    }
}
