//! The soak: one probe run through many faults from the scenario vocabulary, picked with their
//! gaps by a seeded generator (the same seed gives the same schedule), the cluster made whole
//! after each; at the end the probe's lost-write check, every lost write put with the event it
//! followed, and a check that nothing was left behind (a stopped or paused container, an armed
//! undo, a packet filter).

use std::time::{Duration, Instant};

use patroni_lab_probe::record::Attempt;
use patroni_lab_probe::report::Report;
use patroni_lab_probe::settings::{Keep, Settings};
use serde::Serialize;
use tokio::sync::watch;

use patroni_lab_cluster::cluster;
use patroni_lab_cluster::cluster::Live;
use patroni_lab_cluster::lab::{ConfigReader, Lab};
use patroni_lab_cluster::timeline::{self, Event, Mark, Source, Timeline};
use patroni_lab_faults::fault::FaultError;
use patroni_lab_faults::faults::Fault;
use patroni_lab_scenario::runner::{
    lock_left_after, run_fault, sleep_unless, start_probe, writes_by,
};

/// The pause between two events: from the cluster being whole to the next fault.
pub const GAP: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(10));
/// In a storm, the gap between the two faults of a pair (no wait for a whole cluster).
pub const STORM_GAP: (Duration, Duration) = (Duration::ZERO, Duration::from_secs(2));

/// A small seeded generator (SplitMix64): reproducible schedules without a crate.
#[derive(Debug, Clone)]
pub struct Picker(u64);

impl Picker {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }

    /// Uniform in `[lo, hi)`, to the millisecond.
    pub fn between(&mut self, lo: Duration, hi: Duration) -> Duration {
        let span = hi.saturating_sub(lo).as_millis() as u64;
        if span == 0 {
            return lo;
        }
        lo + Duration::from_millis(self.next_u64() % span)
    }
}

/// One planned event: wait `gap` after the cluster is whole (in a storm's pair, after the
/// event before, whole or not), then inject `fault`.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub gap: Duration,
    pub fault: Fault,
    /// The second of a storm's pair: no wait for a whole cluster between it and the event
    /// before; it acts on whoever holds the leader key then.
    pub storm: bool,
}

/// The whole schedule for `seed`: `events` faults drawn from `faults` with their gaps. With
/// `storm`, events come in pairs, the second `STORM_GAP` after the first with no wait for a
/// whole cluster in between (the same seed gives the same storm).
pub fn schedule(seed: u64, events: usize, faults: &[Fault], storm: bool) -> Vec<Planned> {
    let mut picker = Picker::new(seed);
    (0..events)
        .map(|i| {
            let second = storm && i % 2 == 1;
            let (lo, hi) = if second { STORM_GAP } else { GAP };
            Planned {
                gap: picker.between(lo, hi),
                fault: faults[picker.below(faults.len())],
                storm: second,
            }
        })
        .collect()
}

/// What happened to one event.
#[derive(Debug, Clone, Serialize)]
pub struct SoakEvent {
    pub index: usize,
    pub fault: String,
    /// On the probe's clock.
    pub injected_at_us: i64,
    pub leader_before: String,
    pub leader_after: Option<String>,
    /// From the injection to the cluster being whole again; `None`: not within the limit.
    pub whole_again_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fault_error: Option<String>,
    /// Acknowledged writes that were lost, acknowledged after this event was injected and
    /// before the next one (`None` when the lost-write check did not run).
    pub lost_after: Option<u64>,
    /// When the leader before the event lost the lock (the first other holder or none seen
    /// after the injection, before the next event), on the probe's clock.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub lock_lost_at_us: Option<i64>,
    /// Writes the leader before the event acknowledged after it lost the lock and before the
    /// next event (`None`: the lock did not move, or the leader's address could not be read —
    /// see `old_leader_writes_not_counted`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_leader_writes_after_lock_lost: Option<u64>,
    /// Why the writes above could not be counted although the lock moved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_leader_writes_not_counted: Option<String>,
}

/// The soak's report.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub seed: u64,
    pub events_planned: usize,
    /// A signal ended the soak early (it then never passes).
    pub interrupted: bool,
    /// The client time-outs every event ran with (one probe serves them all).
    pub client_timeouts: patroni_lab_scenario::runner::ClientTimeouts,
    pub events: Vec<SoakEvent>,
    /// Lost writes acknowledged before the first event (`None`: not checked).
    pub lost_before_first_event: Option<u64>,
    pub whole_at_end: Result<String, String>,
    /// What was left behind at the end (empty: nothing).
    pub leftovers: Vec<String>,
    pub timeline: Vec<Event>,
    /// How evenly each cluster source was sampled (see `timeline::Sampling`).
    pub sampling: Vec<timeline::Sampling>,
    pub probe: Report,
}

impl SoakReport {
    /// Lost acknowledged writes over the whole run (`None`: not checked).
    pub fn lost(&self) -> Option<usize> {
        self.probe
            .lost_writes
            .checked
            .then_some(self.probe.lost_writes.missing.len())
    }

    /// Every event ran and the cluster is whole with nothing left behind.
    pub fn clean(&self) -> bool {
        !self.interrupted
            && self.events.len() == self.events_planned
            && self.events.iter().all(|e| e.fault_error.is_none())
            && self.whole_at_end.is_ok()
            && self.leftovers.is_empty()
    }

    /// Split-brain writes the probe saw (old-server writes begun after the new one's first).
    pub fn split_brain_writes(&self) -> u64 {
        self.probe
            .analysis
            .split_brain
            .iter()
            .map(|b| b.writes_after_takeover)
            .sum()
    }

    /// Writes an old leader acknowledged after it lost the lock, over all events (`None`: some
    /// event's could not be counted although its lock moved).
    pub fn old_leader_writes(&self) -> Option<u64> {
        self.events
            .iter()
            .map(|e| {
                match (
                    &e.old_leader_writes_not_counted,
                    e.old_leader_writes_after_lock_lost,
                ) {
                    (Some(_), _) => None,
                    (None, n) => Some(n.unwrap_or(0)),
                }
            })
            .sum()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SoakError {
    #[error("{0}")]
    NotWhole(String),
    #[error("the probe failed: {0}")]
    Probe(String),
}

/// What to run.
#[derive(Debug, Clone)]
pub struct SoakPlan {
    pub seed: u64,
    pub schedule: Vec<Planned>,
    /// The probe's settings; the runner bounds its duration by the events' limits.
    pub probe: Settings,
    /// How long the cluster may take to be whole again after one event.
    pub whole_within: Duration,
    /// What the drawn faults changed in the client settings (one probe serves every event).
    pub client_note: Option<String>,
}

/// An upper bound for the whole soak: every event at its limit.
pub fn longest(plan: &SoakPlan) -> Duration {
    plan.schedule
        .iter()
        .map(|p| p.gap + Duration::from_secs(p.fault.secs().unwrap_or(0)) + plan.whole_within)
        .sum::<Duration>()
        + Duration::from_secs(60)
}

/// Runs the soak; `each` hears of every event as it ends. `stop` (a signal) ends it early: the
/// fault in place is undone, the probe stops and still reports.
pub async fn run(
    lab: &Lab,
    plan: &SoakPlan,
    mut stop: watch::Receiver<bool>,
    mut each: impl FnMut(&SoakEvent),
) -> Result<SoakReport, SoakError> {
    // Patroni's settings, read once for the whole soak (its faults do not change them).
    let live = Live::read_within(lab, ConfigReader::Run, Duration::from_secs(120), &stop)
        .await
        .map_err(SoakError::NotWhole)?;
    cluster::wait_whole(lab, &live, Duration::from_secs(120), &stop)
        .await
        .map_err(SoakError::NotWhole)?;
    let timeline = Timeline::default();
    let (poll_stop, poll_rx) = watch::channel(false);
    let poller = tokio::spawn(timeline::poll_cluster(
        lab.clone(),
        timeline.clone(),
        poll_rx,
    ));
    let mut settings = plan.probe.clone();
    settings.duration = Some(longest(plan));
    // Only acknowledged writes stay in memory: a soak runs for hours.
    let (probe_stop, probe) = start_probe(settings, Keep::AcknowledgedWrites);
    // Injection times on the wall clock; put on the probe's clock once it reports.
    let mut events: Vec<(SoakEvent, u64, Option<String>)> = Vec::new();
    let total = plan.schedule.len();
    for (index, planned) in plan.schedule.iter().enumerate() {
        if !sleep_unless(planned.gap, &mut stop).await {
            break;
        }
        let leader = match ready(lab, plan, &live, planned.storm, &stop).await {
            Ok(leader) => leader,
            Err(e) => {
                timeline.record(Source::Fault, format!("soak stopped: {e}"));
                break;
            }
        };
        let (mut event, injected_unix, injected, leader_addr) =
            inject(lab, (index, total), planned.fault, leader, &timeline, &stop).await;
        // In a storm's pair, the second fault follows without waiting for a whole cluster.
        if plan.schedule.get(index + 1).is_some_and(|next| next.storm) {
            timeline.mark(
                Mark::SoakEvent,
                format!("event {}: storm, the next event follows at once", index + 1),
            );
            events.push((event, injected_unix, leader_addr));
            each(&events.last().expect("just pushed").0);
            continue;
        }
        settle(lab, plan, &live, injected, &timeline, &stop, &mut event).await;
        each(&event);
        let stop_here = event.whole_again_ms.is_none() || *stop.borrow();
        events.push((event, injected_unix, leader_addr));
        if stop_here {
            break;
        }
    }
    sleep_unless(Duration::from_secs(3), &mut stop).await;
    let _ = probe_stop.send(true);
    let (report, attempts) = probe
        .await
        .map_err(|e| SoakError::Probe(e.to_string()))?
        .map_err(|e| SoakError::Probe(e.to_string()))?;
    let _ = poll_stop.send(true);
    let sampling = poller.await.unwrap_or_default();

    let interrupted = *stop.borrow();
    let started = report.started_unix_us as i64;
    let all = timeline.events(report.started_unix_us);
    let mut addrs = Vec::new();
    let mut events: Vec<SoakEvent> = events
        .into_iter()
        .map(|(mut e, unix, addr)| {
            e.injected_at_us = unix as i64 - started;
            addrs.push(addr);
            e
        })
        .collect();
    let lost_before_first_event = attribute(&mut events, &addrs, &all, &attempts, &report);
    let whole_at_end = cluster::wait_whole(lab, &live, plan.whole_within, &stop)
        .await
        .map(|(w, _)| w.leader);
    let leftovers = leftovers(lab).await;
    Ok(SoakReport {
        seed: plan.seed,
        events_planned: total,
        interrupted,
        client_timeouts: patroni_lab_scenario::runner::ClientTimeouts::of(
            &plan.probe,
            &plan.client_note,
        ),
        events,
        lost_before_first_event,
        whole_at_end,
        leftovers,
        timeline: all,
        sampling,
        probe: report,
    })
}

/// The leader the next event acts on: in a storm's pair whoever holds the lock, else the
/// leader of a whole cluster.
async fn ready(
    lab: &Lab,
    plan: &SoakPlan,
    live: &Live,
    storm: bool,
    stop: &watch::Receiver<bool>,
) -> Result<String, String> {
    if storm {
        cluster::wait_holder(lab, plan.whole_within, stop).await
    } else {
        cluster::wait_whole(lab, live, plan.whole_within, stop)
            .await
            .map(|(w, _)| w.leader)
    }
}

/// Event `index` of `total`: `fault` injected on `leader`, on the timeline; the event as far as
/// the injection knows it, its wall-clock time, when, and the leader's address.
async fn inject(
    lab: &Lab,
    (index, total): (usize, usize),
    fault: Fault,
    leader: String,
    timeline: &Timeline,
    stop: &watch::Receiver<bool>,
) -> (SoakEvent, u64, Instant, Option<String>) {
    let injected_unix = patroni_lab_common::unix_us();
    let injected = Instant::now();
    timeline.mark(
        Mark::SoakEvent,
        format!("event {} of {total}: inject {}", index + 1, fault.written()),
    );
    // The leader's address as the probe records servers (its container's address).
    let leader_addr = lab.host(&leader).ok().and_then(|h| h.address().ok());
    let fault_error = match run_fault(fault, lab, &leader, timeline, stop).await {
        Ok(()) | Err(FaultError::Interrupted(_)) => None,
        Err(e) => Some(e.to_string()),
    };
    let event = SoakEvent {
        index: index + 1,
        fault: fault.written(),
        injected_at_us: 0,
        leader_before: leader,
        leader_after: None,
        whole_again_ms: None,
        fault_error,
        lost_after: None,
        lock_lost_at_us: None,
        old_leader_writes_after_lock_lost: None,
        old_leader_writes_not_counted: None,
    };
    if let Some(e) = &event.fault_error {
        timeline.record(Source::Fault, format!("fault step failed: {e} (undone)"));
    }
    (event, injected_unix, injected, leader_addr)
}

/// Waits for a whole cluster after an event; when it does not come, the doctor's findings go
/// on the timeline.
async fn settle(
    lab: &Lab,
    plan: &SoakPlan,
    live: &Live,
    injected: Instant,
    timeline: &Timeline,
    stop: &watch::Receiver<bool>,
    event: &mut SoakEvent,
) {
    let limit = plan.whole_within.saturating_sub(injected.elapsed());
    match cluster::wait_whole(lab, live, limit, stop).await {
        Ok((w, _)) => {
            event.whole_again_ms = Some(injected.elapsed().as_secs_f64() * 1000.0);
            event.leader_after = Some(w.leader.clone());
            timeline.mark(
                Mark::SoakEvent,
                format!(
                    "event {}: cluster whole again, {} leads",
                    event.index, w.leader
                ),
            );
        }
        Err(e) => {
            timeline.record(Source::Fault, e);
            // Why: the doctor's findings, each on the timeline.
            patroni_lab_doctor::doctor::explain(lab, timeline, &format!("event {}: ", event.index))
                .await;
        }
    }
}

/// Puts each lost write and each old leader's write with its event: the old leader's writes
/// after it lost the lock (before the next event), and the lost writes acknowledged from the
/// event to the next. Returns the lost writes acknowledged before the first event.
fn attribute(
    events: &mut [SoakEvent],
    addrs: &[Option<String>],
    all: &[patroni_lab_cluster::timeline::Event],
    attempts: &[Attempt],
    report: &Report,
) -> Option<u64> {
    // Each event's old leader: when it lost the lock (before the next event), and the writes
    // it acknowledged from then until the next event.
    let starts: Vec<i64> = events.iter().map(|e| e.injected_at_us).collect();
    for (i, e) in events.iter_mut().enumerate() {
        let next = starts.get(i + 1).copied().unwrap_or(i64::MAX);
        e.lock_lost_at_us = lock_left_after(all, &e.leader_before, e.injected_at_us, next);
        if let Some(at) = e.lock_lost_at_us {
            match addrs[i].as_deref() {
                Some(addr) => {
                    e.old_leader_writes_after_lock_lost = Some(writes_by(attempts, addr, at, next))
                }
                None => {
                    e.old_leader_writes_not_counted =
                        Some("the leader's address could not be read".into())
                }
            }
        }
    }
    let acked_at = lost_ack_times(attempts, report);
    let lost_before_first_event = acked_at.as_ref().map(|times| {
        let first = events.first().map_or(i64::MAX, |e| e.injected_at_us);
        times.iter().filter(|t| **t < first).count() as u64
    });
    if let Some(times) = &acked_at {
        let starts: Vec<i64> = events.iter().map(|e| e.injected_at_us).collect();
        for (i, e) in events.iter_mut().enumerate() {
            let next = starts.get(i + 1).copied().unwrap_or(i64::MAX);
            e.lost_after = Some(
                times
                    .iter()
                    .filter(|t| **t >= e.injected_at_us && **t < next)
                    .count() as u64,
            );
        }
    }
    lost_before_first_event
}

pub fn event_line(total: usize, e: &SoakEvent) -> String {
    let whole = e
        .whole_again_ms
        .map_or("NOT whole again".to_string(), |ms| {
            format!("whole after {:.1} s", ms / 1000.0)
        });
    let after = e.leader_after.as_deref().unwrap_or("?");
    let lost = e
        .lost_after
        .map_or(String::new(), |n| format!("; lost after it: {n}"));
    let error = e
        .fault_error
        .as_deref()
        .map_or(String::new(), |err| format!("; FAULT STEP FAILED: {err}"));
    let old = match (
        e.old_leader_writes_after_lock_lost,
        &e.old_leader_writes_not_counted,
    ) {
        (Some(n), _) if n > 0 => format!("; {} wrote {n} after losing the lock", e.leader_before),
        (_, Some(why)) => format!("; old leader's writes NOT COUNTED ({why})"),
        _ => String::new(),
    };
    format!(
        "event {:>3} of {total}  {:<18} {} -> {after}: {whole}{lost}{old}{error}",
        e.index, e.fault, e.leader_before
    )
}

/// The report as text: the events, the probe's summary, the verdict's parts.
pub fn summary(r: &SoakReport, max_lost: u64) -> String {
    let mut s = format!(
        "soak: seed {}, {} of {} events\n",
        r.seed,
        r.events.len(),
        r.events_planned
    );
    for e in &r.events {
        s.push_str(&event_line(r.events_planned, e));
        s.push('\n');
    }
    s.push_str(&patroni_lab_probe::report::summary(&r.probe));
    let t = &r.client_timeouts;
    s.push_str(&format!(
        "client time-outs for every event: statement {:.0} ms, connect {:.0} ms{}\n",
        t.statement_ms,
        t.connect_ms,
        t.changed_by_scenario
            .as_deref()
            .map_or(String::new(), |n| format!(" ({n})"))
    ));
    match r.lost() {
        Some(n) => {
            let before = r.lost_before_first_event.unwrap_or(0);
            s.push_str(&format!(
                "lost acknowledged writes: {n} (allowed {max_lost}){}\n",
                if before > 0 {
                    format!("; {before} before the first event")
                } else {
                    String::new()
                }
            ));
        }
        None => s.push_str("lost acknowledged writes: NOT CHECKED\n"),
    }
    // Why an event was not whole again, beside the lost writes: the doctor's findings (a
    // diverged member holds the only copy of writes the cluster lost).
    for e in r.timeline.iter().filter(|e| e.mark == Some(Mark::Doctor)) {
        s.push_str(&format!("  {}\n", e.what));
    }
    s.push_str(&format!(
        "split-brain writes: {} (allowed 0); old leaders' writes after losing the lock: {} (allowed 0)\n",
        r.split_brain_writes(),
        r.old_leader_writes()
            .map_or("NOT COUNTED".to_string(), |n| n.to_string())
    ));
    if r.interrupted {
        s.push_str("INTERRUPTED by a signal: the soak did not run to its end\n");
    }
    match &r.whole_at_end {
        Ok(leader) => s.push_str(&format!("cluster whole at the end: yes, {leader} leads\n")),
        Err(e) => s.push_str(&format!("cluster whole at the end: NO ({e})\n")),
    }
    if r.leftovers.is_empty() {
        s.push_str("left behind: nothing (containers running, no undo armed, no packet filter)\n");
    } else {
        for l in &r.leftovers {
            s.push_str(&format!("left behind: {l}\n"));
        }
    }
    s
}

/// The soak passes when every event ran and was proven, nothing is left behind, no more than
/// `max_lost` acknowledged writes were lost, and no write was acknowledged by two primaries:
/// no split-brain write and no write by an old leader after it lost the lock (counted).
pub fn passed(r: &SoakReport, max_lost: u64) -> bool {
    r.clean()
        && r.lost().is_some_and(|n| n as u64 <= max_lost)
        && r.split_brain_writes() == 0
        && r.old_leader_writes() == Some(0)
}

/// The soak's verdict, in order of precedence: INTERRUPTED (a signal), ERROR (a fault that did
/// not run as planned), PASS or FAIL (see [`passed`]).
pub fn verdict(r: &SoakReport, max_lost: u64) -> patroni_lab_scenario::report::Verdict {
    use patroni_lab_scenario::report::Verdict;
    if r.interrupted {
        Verdict::Interrupted
    } else if r.events.iter().any(|e| e.fault_error.is_some()) {
        Verdict::Error
    } else if passed(r, max_lost) {
        Verdict::Pass
    } else {
        Verdict::Fail
    }
}

/// The HTML report: the whole run's chart with every event marked, then the summary.
pub fn page(r: &SoakReport, max_lost: u64) -> String {
    use patroni_lab_probe::html::{self, Marker};
    let markers: Vec<Marker> = r
        .timeline
        .iter()
        .filter(|e| matches!(e.mark, Some(Mark::SoakEvent | Mark::Doctor)))
        .map(|e| Marker {
            at_us: e.at_us,
            label: e.what.clone(),
        })
        .collect();
    let extra = format!(
        "<h2>Events</h2><pre>{}</pre>",
        html::escape(&summary(r, max_lost))
    );
    let title = format!("patroni-lab soak, seed {}", r.seed);
    html::page_with(&r.probe, &title, &extra, &markers)
}

/// When each lost write was acknowledged, on the probe's clock (`None`: not checked, or not
/// every lost write is among the attempts).
fn lost_ack_times(attempts: &[Attempt], report: &Report) -> Option<Vec<i64>> {
    let lost = &report.lost_writes;
    if !lost.checked {
        return None;
    }
    if lost.missing.is_empty() {
        return Some(Vec::new());
    }
    let wanted: std::collections::HashSet<(u32, u64)> =
        lost.missing.iter().map(|w| (w.client, w.seq)).collect();
    let times: Vec<i64> = attempts
        .iter()
        .filter(|a| {
            a.outcome == patroni_lab_probe::classify::Outcome::Ok
                && a.kind == patroni_lab_probe::record::Kind::Write
                && wanted.contains(&(a.client, a.seq))
        })
        .map(|a| a.end_us as i64)
        .collect();
    (times.len() == lost.missing.len()).then_some(times)
}

/// What a fault left behind, one line each (empty: nothing), as the doctor finds it — the
/// one leftover detector (`patroni_lab_doctor::doctor::leftovers`); a part it could not read is
/// a line too, for nothing left is a claim.
pub async fn leftovers(lab: &Lab) -> Vec<String> {
    let d = patroni_lab_doctor::doctor::leftovers(lab).await;
    d.findings
        .into_iter()
        .map(|f| f.what)
        .chain(
            d.not_checked
                .into_iter()
                .map(|n| format!("could not look: {n}")),
        )
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_seed_another() {
        let faults = &patroni_lab_faults::faults::soak_defaults();
        let a = schedule(7, 50, faults, false);
        assert_eq!(a, schedule(7, 50, faults, false));
        assert_ne!(a, schedule(8, 50, faults, false));
        assert!(a.iter().all(|p| !p.storm));
        let storm = schedule(7, 50, faults, true);
        assert_eq!(storm, schedule(7, 50, faults, true));
        for (i, p) in storm.iter().enumerate() {
            assert_eq!(p.storm, i % 2 == 1);
            let (lo, hi) = if p.storm { STORM_GAP } else { GAP };
            assert!(p.gap >= lo && p.gap < hi, "{p:?}");
        }
        assert!(a.iter().all(|p| p.gap >= GAP.0 && p.gap < GAP.1));
    }

    #[test]
    fn fifty_events_draw_on_most_of_the_vocabulary() {
        let faults = &patroni_lab_faults::faults::soak_defaults();
        for seed in 0..20 {
            let drawn: std::collections::HashSet<&str> = schedule(seed, 50, faults, false)
                .iter()
                .map(|p| p.fault.name())
                .collect();
            // 12 faults, 50 draws: missing more than 3 is rarer than one seed in a thousand.
            assert!(drawn.len() >= 9, "seed {seed}: only {drawn:?}");
        }
    }

    #[test]
    fn below_stays_below_and_covers_the_range() {
        let mut p = Picker::new(1);
        let mut seen = [0usize; 5];
        for _ in 0..5000 {
            seen[p.below(5)] += 1;
        }
        assert!(seen.iter().all(|n| (800..1200).contains(n)), "{seen:?}");
    }
}
