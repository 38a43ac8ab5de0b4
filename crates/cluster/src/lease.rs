//! Where in the leader's loop a fault lands: the leader lease's time left, read from etcd's own
//! lease (`timetolive`) every [`POLL`] while a run waits to inject. etcd gives whole seconds,
//! truncated, so the tracker anchors on the moment the figure changes (a second boundary, or a
//! renewal that starts it afresh at the granted TTL) and counts down from there: the lease's
//! time left to a few tens of milliseconds, stated with each figure. It also waits for a chosen
//! time left (`--at-lease-remaining`), to put a fault at the best or the worst point on purpose.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use patroni_lab_common::etcd;
use serde::Serialize;
use tokio::sync::watch;

use crate::lab::{Lab, NAMESPACE, SCOPE};

/// How often the lease is read while a run waits to inject.
pub const POLL: Duration = Duration::from_millis(50);
/// How often the leader key is read again (a new leader has a lease of its own).
const KEY_EVERY: Duration = Duration::from_secs(1);
/// One read's time-out.
const TIMEOUT: Duration = Duration::from_millis(300);

/// The leader lease when a fault was injected.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LeasePhase {
    /// Its time left (ms): a killed leader's lock expires this long after the injection.
    pub remaining_ms: f64,
    /// Since the leader last renewed it (ms): `granted_s` minus the time left.
    pub age_ms: f64,
    /// The TTL it was granted (Patroni's `ttl`, s).
    pub granted_s: u64,
    /// How far both figures can be off (ms): half the interval around the change they are
    /// anchored on, plus the time since the last read.
    pub precision_ms: f64,
}

/// A change of etcd's whole-second figure, seen between two reads.
#[derive(Debug, Clone)]
struct Anchor {
    /// Midway between the read before the change and the read that saw it.
    at: Instant,
    /// The time left at `at` (s): the second crossed, or the granted TTL after a renewal.
    remaining_s: f64,
    /// Half the interval the change lies in.
    half_width: Duration,
    granted_s: u64,
    /// The last read that still agreed with this anchor.
    last_read: Instant,
}

/// The lease as last tracked; shared between the tracking thread and the runner.
#[derive(Clone, Default)]
pub struct Tracker {
    anchor: Arc<Mutex<Option<Anchor>>>,
}

impl Tracker {
    /// Tracks the leader lease of `lab` until `stop` turns true; `None` without etcd (a
    /// cluster given by URLs: the lease is not measured).
    pub fn start(
        lab: &Lab,
        stop: watch::Receiver<bool>,
    ) -> Option<(Self, tokio::task::JoinHandle<()>)> {
        let url = lab.etcd_url.clone()?;
        let tracker = Self::default();
        let shared = tracker.clone();
        let task = tokio::task::spawn_blocking(move || shared.track(&url, &stop));
        Some((tracker, task))
    }

    fn track(&self, url: &str, stop: &watch::Receiver<bool>) {
        let key = etcd::leader_key(NAMESPACE, SCOPE);
        let mut lease: Option<String> = None;
        let mut key_read: Option<Instant> = None;
        // The previous read: when it started and the whole seconds it gave.
        let mut previous: Option<(Instant, u64)> = None;
        while !*stop.borrow() {
            let next = Instant::now() + POLL;
            if key_read.is_none_or(|t| t.elapsed() >= KEY_EVERY) {
                let now = etcd::read_leader(url, &key, TIMEOUT)
                    .ok()
                    .and_then(|k| k.lease);
                key_read = Some(Instant::now());
                if now != lease {
                    lease = now;
                    previous = None;
                    *self.anchor.lock().unwrap() = None;
                }
            }
            if let Some(id) = &lease {
                let start = Instant::now();
                let read = etcd::lease_ttl(url, id, TIMEOUT);
                let end = Instant::now();
                match read {
                    Ok(etcd::LeaseTtl {
                        remaining_s: Some(left),
                        granted_s,
                    }) => {
                        let mut anchor = self.anchor.lock().unwrap();
                        if let Some((before, was)) = previous.filter(|(_, was)| *was != left) {
                            let width = end - before;
                            *anchor = Some(Anchor {
                                at: before + width / 2,
                                remaining_s: crossed(was, left, granted_s),
                                half_width: width / 2,
                                granted_s,
                                last_read: end,
                            });
                        } else if let Some(a) = anchor.as_mut() {
                            a.last_read = end;
                        }
                        previous = Some((start, left));
                    }
                    // Expired, or etcd not answering: nothing to count down from.
                    _ => {
                        previous = None;
                        key_read = None;
                        *self.anchor.lock().unwrap() = None;
                    }
                }
            }
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    }

    /// The lease now, once a change has been seen to anchor on.
    pub fn now(&self) -> Option<LeasePhase> {
        let a = self.anchor.lock().unwrap().clone()?;
        let now = Instant::now();
        let remaining = (a.remaining_s - (now - a.at).as_secs_f64()).max(0.0);
        Some(LeasePhase {
            remaining_ms: remaining * 1000.0,
            age_ms: (a.granted_s as f64 - remaining) * 1000.0,
            granted_s: a.granted_s,
            precision_ms: (a.half_width + now.saturating_duration_since(a.last_read)).as_secs_f64()
                * 1000.0,
        })
    }

    /// Waits until the lease's time left comes down through `left` (from above: a renewal in
    /// between starts the wait over), up to `limit`; `Ok(None)` when `stop` turned true.
    pub async fn wait_for(
        &self,
        left: Duration,
        limit: Duration,
        stop: &mut watch::Receiver<bool>,
    ) -> Result<Option<LeasePhase>, String> {
        let deadline = tokio::time::Instant::now() + limit;
        let target_ms = left.as_secs_f64() * 1000.0;
        let mut above = false;
        loop {
            if let Some(p) = self.now().filter(|p| p.precision_ms < 250.0) {
                if p.remaining_ms > target_ms {
                    above = true;
                } else if above {
                    return Ok(Some(p));
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(format!(
                    "the leader lease was not seen coming down through {:.1} s left within {} s",
                    left.as_secs_f64(),
                    limit.as_secs()
                ));
            }
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_millis(5)) => {}
                _ = stop.changed() => {}
            }
            if *stop.borrow() {
                return Ok(None);
            }
        }
    }
}

/// The time left at a change of etcd's figure from `was` to `now` whole seconds: a renewal (the
/// figure went up) starts at the granted TTL; a countdown crossed `now + 1` (truncation).
fn crossed(was: u64, now: u64, granted_s: u64) -> f64 {
    if now > was {
        granted_s as f64
    } else {
        (now + 1) as f64
    }
}

/// The times left a lease passes through in every loop, to choose `--at-lease-remaining` from:
/// `[ttl − loop_wait + 1, ttl − 1]` s (the leader renews every loop_wait plus its loop's own
/// work; one second off each end, so the wait is not lost to a renewal a little early or late).
pub fn reachable(ttl: u64, loop_wait: u64) -> (u64, u64) {
    ((ttl + 1).saturating_sub(loop_wait), ttl.saturating_sub(1))
}

/// `n` lease times left spread evenly over [`reachable`]: the midpoints of `n` equal slices,
/// so `n` runs meet the leader's loop at `n` different points by construction.
pub fn stratified(n: u32, ttl: u64, loop_wait: u64) -> Vec<Duration> {
    let (low, high) = reachable(ttl, loop_wait);
    let span = high.saturating_sub(low) as f64;
    (0..n)
        .map(|k| Duration::from_secs_f64(low as f64 + span * (f64::from(k) + 0.5) / f64::from(n)))
        .collect()
}

/// Checks `left` against [`reachable`]; the error is one line saying what to pass.
pub fn check_reachable(left: Duration, ttl: u64, loop_wait: u64) -> Result<(), String> {
    let (low, high) = reachable(ttl, loop_wait);
    let s = left.as_secs_f64();
    if low > high || s < low as f64 || s > high as f64 {
        return Err(format!(
            "--at-lease-remaining {s} s: under ttl {ttl} and loop_wait {loop_wait} the leader lease passes through {low} to {high} s left in every loop (it is renewed every loop_wait); pick a value in that range"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stratified_points_are_the_midpoints_of_equal_slices_of_the_loop() {
        let secs: Vec<f64> = stratified(4, 30, 10)
            .iter()
            .map(Duration::as_secs_f64)
            .collect();
        // Reachable 21 to 29 s: slices of 2 s, midpoints 22, 24, 26, 28.
        assert_eq!(secs, [22.0, 24.0, 26.0, 28.0]);
        for d in stratified(6, 20, 5) {
            assert!(check_reachable(d, 20, 5).is_ok(), "{d:?}");
        }
    }

    #[test]
    fn a_change_anchors_on_the_second_crossed_or_the_renewal() {
        // 24 -> 23 (truncated): the lease crossed 24.0 s left.
        assert_eq!(crossed(24, 23, 30), 24.0);
        // 21 -> 29: renewed, the lease starts again at 30 s.
        assert_eq!(crossed(21, 29, 30), 30.0);
    }

    #[test]
    fn the_reachable_range_is_one_loop_below_the_ttl() {
        assert_eq!(reachable(30, 10), (21, 29));
        assert_eq!(reachable(20, 14), (7, 19));
        assert!(check_reachable(Duration::from_secs(21), 30, 10).is_ok());
        assert!(check_reachable(Duration::from_secs(29), 30, 10).is_ok());
        let e = check_reachable(Duration::from_secs(35), 30, 10).unwrap_err();
        assert!(e.contains("21 to 29 s"), "{e}");
        assert!(check_reachable(Duration::from_secs(20), 30, 10).is_err());
    }

    #[tokio::test]
    async fn waiting_needs_the_lease_above_the_target_first() {
        let t = Tracker::default();
        let anchor = |remaining_s: f64| Anchor {
            at: Instant::now(),
            remaining_s,
            half_width: Duration::from_millis(25),
            granted_s: 30,
            last_read: Instant::now(),
        };
        // Already below 25 s left: no wait ends on it (that would be any point of the loop).
        *t.anchor.lock().unwrap() = Some(anchor(22.0));
        let (_tx, mut stop) = watch::channel(false);
        let r = t
            .wait_for(
                Duration::from_secs(25),
                Duration::from_millis(200),
                &mut stop,
            )
            .await;
        assert!(r.is_err(), "{r:?}");
        // 25.1 s left: the wait ends about 100 ms later, at 25 s.
        *t.anchor.lock().unwrap() = Some(anchor(25.1));
        let p = t
            .wait_for(Duration::from_secs(25), Duration::from_secs(1), &mut stop)
            .await
            .unwrap()
            .unwrap();
        assert!((24_950.0..=25_000.0).contains(&p.remaining_ms), "{p:?}");
        assert!((p.age_ms - (30_000.0 - p.remaining_ms)).abs() < 1e-6);
    }
}
