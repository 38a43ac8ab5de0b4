//! The soak: one probe run through many faults from the scenario vocabulary, picked with their
//! gaps by a seeded generator (the same seed gives the same schedule), the cluster made whole
//! after each; at the end the probe's lost-write check, every lost write put with the event it
//! followed, and a check that nothing was left behind (a stopped or paused container, an armed
//! undo, a packet filter).

use std::path::Path;
use std::time::{Duration, Instant};

use patroni_lab_probe::report::Report;
use patroni_lab_probe::settings::Settings;
use serde::Serialize;
use tokio::sync::watch;

use crate::cluster;
use crate::fault::Fault;
use crate::guard;
use crate::lab::{Lab, docker};
use crate::runner::{run_fault, sleep_unless, start_probe};
use crate::timeline::{self, Event, Source, Timeline};

/// The pause between two events: from the cluster being whole to the next fault.
pub const GAP: (Duration, Duration) = (Duration::from_secs(2), Duration::from_secs(10));

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

/// One planned event: wait `gap` after the cluster is whole, then inject `fault`.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    pub gap: Duration,
    pub fault: Fault,
}

/// The whole schedule for `seed`: `events` faults drawn from `faults` with their gaps.
pub fn schedule(seed: u64, events: usize, faults: &[Fault]) -> Vec<Planned> {
    let mut picker = Picker::new(seed);
    (0..events)
        .map(|_| Planned {
            gap: picker.between(GAP.0, GAP.1),
            fault: faults[picker.below(faults.len())],
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
}

/// The soak's report.
#[derive(Debug, Clone, Serialize)]
pub struct SoakReport {
    pub seed: u64,
    pub events_planned: usize,
    pub events: Vec<SoakEvent>,
    /// Lost writes acknowledged before the first event (`None`: not checked).
    pub lost_before_first_event: Option<u64>,
    pub whole_at_end: Result<String, String>,
    /// What was left behind at the end (empty: nothing).
    pub leftovers: Vec<String>,
    pub timeline: Vec<Event>,
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
        self.events.len() == self.events_planned
            && self.events.iter().all(|e| e.fault_error.is_none())
            && self.whole_at_end.is_ok()
            && self.leftovers.is_empty()
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
    cluster::wait_whole(lab, Duration::from_secs(120))
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
    let (history, probe_stop, probe) = start_probe(settings, "soak");
    // Injection times on the wall clock; put on the probe's clock once it reports.
    let mut events: Vec<(SoakEvent, u64)> = Vec::new();
    let total = plan.schedule.len();
    for (index, planned) in plan.schedule.iter().enumerate() {
        if !sleep_unless(planned.gap, &mut stop).await {
            break;
        }
        let leader = match cluster::wait_whole(lab, plan.whole_within).await {
            Ok((leader, _)) => leader,
            Err(e) => {
                timeline.record(Source::Fault, format!("soak stopped: {e}"));
                break;
            }
        };
        let injected_unix = timeline::unix_us();
        let injected = Instant::now();
        timeline.record(
            Source::Fault,
            format!(
                "event {} of {total}: inject {}",
                index + 1,
                planned.fault.name()
            ),
        );
        let fault_error = run_fault(planned.fault, lab, &leader, &timeline, &stop)
            .await
            .err();
        let mut event = SoakEvent {
            index: index + 1,
            fault: planned.fault.name().to_string(),
            injected_at_us: 0,
            leader_before: leader,
            leader_after: None,
            whole_again_ms: None,
            fault_error,
            lost_after: None,
        };
        if let Some(e) = &event.fault_error {
            timeline.record(Source::Fault, format!("fault step failed: {e} (undone)"));
        }
        let limit = plan.whole_within.saturating_sub(injected.elapsed());
        match cluster::wait_whole(lab, limit).await {
            Ok((leader, _)) => {
                event.whole_again_ms = Some(injected.elapsed().as_secs_f64() * 1000.0);
                event.leader_after = Some(leader.clone());
                timeline.record(
                    Source::Fault,
                    format!("event {}: cluster whole again, {leader} leads", index + 1),
                );
            }
            Err(e) => timeline.record(Source::Fault, e),
        }
        each(&event);
        let stop_here = event.whole_again_ms.is_none() || *stop.borrow();
        events.push((event, injected_unix));
        if stop_here {
            break;
        }
    }
    sleep_unless(Duration::from_secs(3), &mut stop).await;
    let _ = probe_stop.send(true);
    let report = probe
        .await
        .map_err(|e| SoakError::Probe(e.to_string()))?
        .map_err(|e| SoakError::Probe(e.to_string()))?;
    let _ = poll_stop.send(true);
    let _ = poller.await;

    let started = report.started_unix_us as i64;
    let mut events: Vec<SoakEvent> = events
        .into_iter()
        .map(|(mut e, unix)| {
            e.injected_at_us = unix as i64 - started;
            e
        })
        .collect();
    let acked_at = lost_ack_times(&history, &report);
    let _ = std::fs::remove_file(&history);
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
    let whole_at_end = cluster::wait_whole(lab, plan.whole_within)
        .await
        .map(|(leader, _)| leader);
    let leftovers = {
        let lab = lab.clone();
        tokio::task::spawn_blocking(move || leftovers(&lab))
            .await
            .unwrap_or_else(|e| vec![e.to_string()])
    };
    Ok(SoakReport {
        seed: plan.seed,
        events_planned: total,
        events,
        lost_before_first_event,
        whole_at_end,
        leftovers,
        timeline: timeline.events(report.started_unix_us),
        probe: report,
    })
}

/// When each lost write was acknowledged, on the probe's clock (`None`: not checked or the
/// history cannot be read).
fn lost_ack_times(history: &Path, report: &Report) -> Option<Vec<i64>> {
    let lost = &report.lost_writes;
    if !lost.checked {
        return None;
    }
    if lost.missing.is_empty() {
        return Some(Vec::new());
    }
    let wanted: std::collections::HashSet<(u32, u64)> =
        lost.missing.iter().map(|w| (w.client, w.seq)).collect();
    let attempts = patroni_lab_probe::analysis::read_history(history).ok()?;
    let times: Vec<i64> = attempts
        .flatten()
        .filter(|a| {
            a.outcome == patroni_lab_probe::classify::Outcome::Ok
                && a.kind == patroni_lab_probe::record::Kind::Write
                && wanted.contains(&(a.client, a.seq))
        })
        .map(|a| a.end_us as i64)
        .collect();
    (times.len() == lost.missing.len()).then_some(times)
}

/// What a fault could leave behind: a container not running (stopped, paused), an undo still
/// armed, the partition's packet filter. Empty when nothing is left.
pub fn leftovers(lab: &Lab) -> Vec<String> {
    let mut left: Vec<String> = guard::armed_list()
        .into_iter()
        .map(|what| format!("an undo still armed: {what}"))
        .collect();
    if !lab.containers {
        return left;
    }
    left.extend(lab.not_running());
    for node in &lab.nodes {
        if docker(&[
            "exec", "--user", "root", &node.name, "nft", "list", "table", "inet", "plab",
        ])
        .is_ok()
        {
            left.push(format!(
                "{}: the packet filter (table inet plab) is still there",
                node.name
            ));
        }
    }
    left
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_schedule_and_another_seed_another() {
        let faults = crate::fault::ALL;
        let a = schedule(7, 50, faults);
        assert_eq!(a, schedule(7, 50, faults));
        assert_ne!(a, schedule(8, 50, faults));
        assert!(a.iter().all(|p| p.gap >= GAP.0 && p.gap < GAP.1));
    }

    #[test]
    fn fifty_events_draw_on_most_of_the_vocabulary() {
        let faults = crate::fault::ALL;
        for seed in 0..20 {
            let drawn: std::collections::HashSet<&str> = schedule(seed, 50, faults)
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
