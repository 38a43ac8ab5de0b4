//! The client's window broken into phases: from the probe's window (the longest one) and what
//! the observer saw (`patroni_lab_cluster::timeline`'s typed samples), the moments the cluster passed on the
//! way back — the old leader stopped serving, the lock left it, another member took it, that
//! member's PostgreSQL came out of recovery, PgBouncer targeted it, HAProxy routed to it — and
//! the client's first write after. Each phase runs from one such moment to the next, so the
//! phases add up to the window by construction: that says nothing. What is checked is that
//! each moment was seen, lies inside the window and comes after the one before it, each within
//! its source's precision (one sampling gap, from a sample's start to the next one's end). A moment
//! not seen, outside or out of order is a finding, never hidden (an out-of-order moment's phase
//! is cut to 0 and said so). A prediction from the live settings and the lease alone (the
//! lease left at the injection, HAProxy's check timing, Patroni's fixed status request, and
//! step times measured on earlier runs) is set beside the moments it can say something about;
//! no prediction uses a moment of the run it predicts.

use serde::Serialize;

use patroni_lab_cluster::timeline::{Event, LockSeen, Mark, PgState, Sampling, Seen, Source};

/// One moment on the way back, on the probe's clock.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Milestone {
    pub name: &'static str,
    /// When the sample that saw it ended (`None`: not seen).
    pub at_us: Option<i64>,
    /// It happened at most this long before `at_us` (the source's longest sampling gap, from
    /// one sample's start to the next one's end); `None`: not measured.
    pub precision_ms: Option<f64>,
    /// The prediction from the live settings, as ms after the injection (`None`: none made).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted_ms: Option<Predicted>,
    /// Already so when the injection came (or the window began): it stood in nobody's way,
    /// and `at_us` is the window's start (or the injection, if later), not a change seen.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub already: bool,
}

/// A moment as found: when, to within what, and whether it was already so (see
/// [`Milestone::already`]).
type Found = (Option<i64>, Option<f64>, bool);

/// A range the settings predict, and why.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Predicted {
    pub min_ms: f64,
    pub max_ms: f64,
    pub rule: String,
    /// Whether the measured moment (with its precision) lies outside the range.
    pub outside: bool,
}

/// One phase of the window.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phase {
    pub name: &'static str,
    pub start_us: i64,
    pub end_us: i64,
    pub duration_ms: f64,
}

/// The window's phases, and whether the observer accounts for all of it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Phases {
    /// What the phases break up: the client's longest window, or its longest stall when no
    /// request failed (the `window_*` fields are then the stall's).
    pub span: SpanKind,
    pub window_start_us: i64,
    pub window_end_us: i64,
    pub window_ms: f64,
    /// From the injection to the window's start (`None`: no injection on the timeline).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub injected_at_us: Option<i64>,
    pub milestones: Vec<Milestone>,
    pub phases: Vec<Phase>,
    /// The longest phase.
    pub dominant: Option<&'static str>,
    /// The cluster's part: from the window's start until the new (or the same) leader's
    /// PostgreSQL was primary — what Patroni takes, the floor no client setting lowers — as
    /// the range its moment's precision allows (`None`: that moment was not seen inside the
    /// window). The rest of the window is the clients' way back (PgBouncer's switch, HAProxy,
    /// the reconnect).
    pub cluster_ms: Option<Between>,
    /// The widest precision of the moments seen (ms).
    pub precision_ms: Option<f64>,
    /// When the first client write may come, as ms after the injection: from the earliest
    /// predicted moment to the last one plus the client's back-off (`None`: nothing on the way
    /// back predicted, or no injection).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub predicted_end_ms: Option<Predicted>,
    /// Every moment seen, inside the window and in order, each within its precision: the
    /// observer accounts for the whole window.
    pub accounted_for: bool,
    /// What keeps it from being accounted for, and predictions the run fell outside of.
    pub findings: Vec<String>,
}

/// A duration known to lie within a range (a moment's precision).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Between {
    pub min_ms: f64,
    pub max_ms: f64,
}

impl Phases {
    /// The clients' way back: the window less the cluster's part.
    pub fn clients_ms(&self) -> Option<Between> {
        self.cluster_ms.map(|c| Between {
            min_ms: self.window_ms - c.max_ms,
            max_ms: self.window_ms - c.min_ms,
        })
    }
}

/// What clients waited through: their longest window (writes failed), or, in a run where none
/// failed, their longest stall (no acknowledgement: requests held, e.g. in PgBouncer's queue).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Span {
    pub start_us: i64,
    pub end_us: i64,
    pub ms: f64,
    pub kind: SpanKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SpanKind {
    Window,
    Stall,
}

impl SpanKind {
    fn name(self) -> &'static str {
        match self {
            Self::Window => "window",
            Self::Stall => "stall",
        }
    }
}

impl Span {
    fn of(start_us: u64, end_us: u64, ms: f64, kind: SpanKind) -> Self {
        Self {
            start_us: start_us as i64,
            end_us: end_us as i64,
            ms,
            kind,
        }
    }

    pub fn window(w: &patroni_lab_probe::model::Window) -> Self {
        Self::of(w.start_us, w.end_us, w.duration_ms, SpanKind::Window)
    }

    pub fn stall(s: &patroni_lab_probe::model::Stall) -> Self {
        Self::of(s.start_us, s.end_us, s.duration_ms, SpanKind::Stall)
    }
}

/// What the runner knows that the prediction needs.
#[derive(Debug, Clone, Copy, Default)]
pub struct Settings {
    /// The leader lease's time left at the injection and its precision (ms), when the fault
    /// leaves the lock to expire (`None`: no lease measured, or the lock is released).
    pub lease_left_ms: Option<(f64, f64)>,
    /// HAProxy's check interval (ms) and rise.
    pub haproxy_check: Option<(f64, u32)>,
    /// When the leader's next HA loop runs after the injection (ms: loop_wait minus the
    /// lease's age) and its precision, for a fault the leader's own Patroni mends on that loop
    /// (`None`: not such a fault, or not measured).
    pub next_loop_ms: Option<(f64, f64)>,
    /// The longest a client waits before it tries again (the probe's back-off ceiling, ms).
    pub client_backoff_ms: f64,
}

/// How long Patroni takes to start a crashed PostgreSQL once its loop is due: the worst of the
/// crash-postgres runs with a margin (< 2x; docs/measurements/2026-11-29-phases.md). Where
/// every step constant comes from: docs/measurements/2026-12-04-verdicts-and-the-host-seam.md.
const RESTART_MS: f64 = 3000.0;
/// How much earlier than `loop_wait` after the last renewal a loop may run (its own cycle's
/// time before the renewal), with a wide margin.
const LOOP_EARLY_MS: f64 = 500.0;

/// How long after the expiry etcd may take to revoke a lease: its lessor looks for expired
/// leases every 500 ms (etcd `lease/lessor.go`, `revokeExpiredLeases` on a 500 ms ticker).
const ETCD_REVOKE_EVERY_MS: f64 = 500.0;

/// Before it takes a free lock, a replica asks every other member for its status with a time-out
/// hard-coded to 2 s (Patroni `ha.py`, `fetch_node_status`): a member that does not answer (a
/// frozen one, or a killed one whose address no longer answers) costs all of it.
const STATUS_REQUEST_MS: f64 = 2000.0;
/// From the lock gone (and the status requests answered) to another member holding it: the
/// worst of the kill-leader and switchover runs with a margin (< 2x; same file).
const TAKE_MS: f64 = 400.0;
/// From the lock taken to that member's PostgreSQL primary: the worst of the same runs with a
/// margin (< 2x).
const PROMOTE_MS: f64 = 600.0;

const STOPPED: &str = "old leader stopped serving";
const LOCK_LEFT: &str = "lock left the old leader";
const LOCK_TAKEN: &str = "new leader took the lock";
const PROMOTED: &str = "new leader's PostgreSQL primary";
/// The same member back as primary (the lock never moved).
const BACK: &str = "its PostgreSQL primary again";
const PGBOUNCER: &str = "PgBouncer targets it";
const HAPROXY: &str = "HAProxy routes clients";

/// The phase that ends at the same member's PostgreSQL primary again (instead of "promotion").
const BACK_PHASE: &str = "back as primary";

/// The phase that ends at each moment, in order; the last ends at the first client write.
const PHASE_NAMES: [&str; 7] = [
    "old leader stopping",
    "waiting for the lock",
    "lock free",
    "promotion",
    "PgBouncer switch",
    "HAProxy check",
    "client reconnect",
];

fn sampling_gap(sampling: &[Sampling], seen: &Seen) -> Option<f64> {
    let wanted = |s: &Sampling| match seen {
        Seen::Rest { member, .. } => s.source == format!("{member} REST"),
        Seen::Postgres { member, .. } => s.source == format!("{member} PostgreSQL"),
        Seen::Lock(_) => {
            s.source.starts_with("etcd leader key") || s.source.starts_with("leader lock")
        }
        Seen::PgBouncer { .. } => s.source == "PgBouncer target",
        Seen::HaProxy(_) => s.source == "HAProxy routing",
        Seen::Readers(_) => s.source == "HAProxy readers",
    };
    // A gap runs from one sample's start to the next one's end, so a sample that timed out
    // ("not answering") is inside it: no time-out to add.
    sampling.iter().find(|s| wanted(s))?.max_gap_ms
}

/// When `matches` became true at or after `from`: when its source's last sample up to then
/// already matched, it stood in nobody's way — the window's start (or `from`, if later) —,
/// else the first sample after that matches; and its precision.
fn first(
    events: &[Event],
    sampling: &[Sampling],
    (from, start): (i64, i64),
    matches: impl Fn(&Seen) -> bool,
) -> Found {
    let seen = || {
        events
            .iter()
            .filter(|e| e.source == Source::Cluster)
            .filter_map(|e| e.seen.as_ref().map(|s| (e.at_us, s)))
    };
    let mut latest: Vec<(String, &Seen)> = Vec::new();
    for (_, s) in seen().take_while(|(at, _)| *at <= from) {
        match latest.iter_mut().find(|(k, _)| *k == s.key()) {
            Some(l) => l.1 = s,
            None => latest.push((s.key(), s)),
        }
    }
    if let Some((_, s)) = latest.iter().find(|(_, s)| matches(s)) {
        return (Some(from.max(start)), sampling_gap(sampling, s), true);
    }
    seen()
        .filter(|(at, _)| *at > from)
        .find(|(_, s)| matches(s))
        .map_or((None, None, false), |(at, s)| {
            (Some(at), sampling_gap(sampling, s), false)
        })
}

/// HAProxy stands in the way only while none of its lines is up (every line leads to the one
/// PgBouncer, which the callback points at the leader): the end of the last such spell after
/// `from` that ended by the first client write (within the sampling gap); the window's start
/// (or `from`, if later) when there was none. Also whether there was such a spell (only then
/// did HAProxy wait for a check).
fn haproxy_back(
    events: &[Event],
    sampling: &[Sampling],
    (from, start): (i64, i64),
    end: i64,
) -> (Found, bool) {
    let probe = Seen::HaProxy(Ok(Vec::new()));
    let gap = sampling_gap(sampling, &probe);
    let slack = (gap.unwrap_or(0.0) * 1000.0) as i64;
    // Not read between the injection and the window's end (no HAProxy given, or its page not
    // answering): not seen, not "never in the way". A sample that could not read the page is
    // no reading at all (below, it neither starts nor ends a spell).
    // (The timeline keeps changes: the state at `from` is the last one seen up to it.)
    let states: Vec<(i64, bool)> = events
        .iter()
        .filter(|e| e.source == Source::Cluster && e.at_us <= end + slack)
        .filter_map(|e| match &e.seen {
            Some(Seen::HaProxy(state)) => Some((e.at_us, state.is_ok())),
            _ => None,
        })
        .collect();
    let at_from = states.iter().rposition(|(at, _)| *at <= from).unwrap_or(0);
    let window_states = states.get(at_from..).unwrap_or_default();
    let read = window_states.iter().any(|(_, ok)| *ok);
    // Unreadable for a stretch of the window: a spell could hide in it.
    let blind = window_states.iter().any(|(_, ok)| !ok);
    if !read {
        return ((None, None, false), false);
    }
    let mut down = false;
    let mut back: Option<i64> = None;
    for e in events
        .iter()
        .filter(|e| e.source == Source::Cluster && e.at_us > from && e.at_us <= end + slack)
    {
        if let Some(Seen::HaProxy(Ok(lines))) = &e.seen {
            let up = !lines.is_empty();
            // A spell that began after the first client write stood in no one's way.
            if !up && !down && e.at_us > end {
                break;
            }
            if !up {
                down = true;
            } else if down {
                down = false;
                back = Some(e.at_us);
            }
        }
    }
    // A spell still on at the first client write did not stop it (a client that had connected
    // before, held in PgBouncer's queue, got through): it is not the window's either.
    match back {
        Some(at) => ((Some(at), gap, false), true),
        None if blind => ((None, None, false), false),
        None => ((Some(from.max(start)), gap, true), false),
    }
}

/// The window's phases; `None` when the probe saw no window.
pub fn of(
    events: &[Event],
    sampling: &[Sampling],
    span: Option<Span>,
    old: &str,
    new: Option<&str>,
    settings: Settings,
) -> Option<Phases> {
    let w = span?;
    let (start, end) = (w.start_us, w.end_us);
    let injected = events
        .iter()
        .find(|e| e.mark == Some(Mark::Injected))
        .map(|e| e.at_us);
    let from = injected.unwrap_or(start);
    let new = new.unwrap_or("?");
    let moved = new != old;
    let is = |m: &str, name: &str| m == name;
    let mut ms: Vec<Milestone> = Vec::new();
    let mut push = |name: &'static str, (at, precision, already): Found| {
        ms.push(Milestone {
            name,
            at_us: at,
            precision_ms: precision,
            predicted_ms: None,
            already,
        })
    };
    let stopped = first(
        events,
        sampling,
        (from, start),
        |s| matches!(s, Seen::Postgres { member, state } if is(member, old) && !matches!(state, PgState::Primary { .. })),
    );
    push(STOPPED, stopped);
    let after_stop = stopped.0.unwrap_or(from);
    if moved {
        push(
            LOCK_LEFT,
            first(
                events,
                sampling,
                (from, start),
                |s| matches!(s, Seen::Lock(l) if *l != LockSeen::Unknown && *l != LockSeen::Held(old.into())),
            ),
        );
        push(
            LOCK_TAKEN,
            first(
                events,
                sampling,
                (from, start),
                |s| matches!(s, Seen::Lock(LockSeen::Held(h)) if is(h, new)),
            ),
        );
    }
    push(
        if moved { PROMOTED } else { BACK },
        first(
            events,
            sampling,
            (if moved { from } else { after_stop }, start),
            |s| matches!(s, Seen::Postgres { member, state: PgState::Primary { .. } } if is(member, new)),
        ),
    );
    push(
        PGBOUNCER,
        first(
            events,
            sampling,
            (from, start),
            |s| matches!(s, Seen::PgBouncer { target: Ok(t), .. } if t.starts_with(new)),
        ),
    );
    let (haproxy, spell) = haproxy_back(events, sampling, (from, start), end);
    push(HAPROXY, haproxy);
    predict(&mut ms, injected, settings, spell, moved);
    let mut p = assemble(w, injected, ms, moved);
    predict_end(&mut p, settings.client_backoff_ms);
    Some(p)
}

/// The window's end (the first client write) predicted from the moments' predictions: not
/// before the earliest of them (the lock leaving, the member back as primary), not after the
/// last one that ends the way back (HAProxy routing again, or the member back as primary) plus
/// the client's back-off. Without such a last one (HAProxy never waited) there is none.
fn predict_end(p: &mut Phases, backoff_ms: f64) {
    let Some(inj) = p.injected_at_us else { return };
    let predicted = |name: &str| {
        p.milestones
            .iter()
            .find(|m| m.name == name)
            .and_then(|m| m.predicted_ms.as_ref())
    };
    let Some(first) = [LOCK_LEFT, BACK].into_iter().find_map(predicted) else {
        return;
    };
    let Some(last) = [HAPROXY, BACK].into_iter().find_map(predicted) else {
        return;
    };
    let (min, max) = (first.min_ms, last.max_ms + backoff_ms);
    let end_ms = (p.window_end_us - inj) as f64 / 1000.0;
    let outside = end_ms < min || end_ms > max;
    if outside {
        p.findings.push(format!(
            "the first client write: {:.2} s after the injection, outside its prediction [{:.2}, {:.2}] s",
            end_ms / 1000.0,
            min / 1000.0,
            max / 1000.0
        ));
    }
    p.predicted_end_ms = Some(Predicted {
        min_ms: min,
        max_ms: max,
        rule: format!(
            "from the earliest predicted moment ({}) to the last ({}) + the client's back-off of up to {backoff_ms:.0} ms",
            first.rule, last.rule
        ),
        outside,
    });
}

/// Sets the settings' predictions on the moments they speak of: from the live settings, the
/// lease measured at the injection and step times measured on earlier runs — never from a
/// moment of this run.
fn predict(
    ms: &mut [Milestone],
    injected: Option<i64>,
    s: Settings,
    haproxy_spell: bool,
    moved: bool,
) {
    let Some(inj) = injected else { return };
    let lock_left = s.lease_left_ms.map(|(left, prec)| {
        (
            left - prec,
            left + prec + ETCD_REVOKE_EVERY_MS,
            format!(
                "the lease's {:.2} s left at the injection (±{prec:.0} ms), + up to {ETCD_REVOKE_EVERY_MS:.0} ms for etcd to revoke it",
                left / 1000.0
            ),
        )
    });
    let back = s.next_loop_ms.map(|(next, prec)| {
        (
            next - prec - LOOP_EARLY_MS,
            next + prec + RESTART_MS,
            format!(
                "the leader's next loop {:.2} s after the injection (loop_wait minus the lease's age, ±{prec:.0} ms), + up to {:.0} s to start PostgreSQL",
                next / 1000.0,
                RESTART_MS / 1000.0
            ),
        )
    });
    // Patroni's /primary answers 200 once its member holds the lock and has asked for the
    // promotion, which can be before PostgreSQL leaves recovery: the earliest a line comes up
    // is the lock taken, itself after the lock left. The latest: the lock left, the status
    // requests, the take and the promotion, then inter x rise.
    // The lock's expiry speaks of a run where the lock moved; the member's next loop of one
    // where it came back.
    let primary_by = match (lock_left.as_ref().filter(|_| moved), back.as_ref()) {
        (Some((min, max, _)), _) => Some((
            *min,
            max + STATUS_REQUEST_MS + TAKE_MS + PROMOTE_MS,
            format!(
                "the lock's prediction, + up to {STATUS_REQUEST_MS:.0} ms of status requests, {TAKE_MS:.0} ms to take the lock and {PROMOTE_MS:.0} ms to promote"
            ),
        )),
        (None, Some((min, max, _))) if !moved => Some((
            *min,
            *max,
            "the member's PostgreSQL back as primary".to_string(),
        )),
        _ => None,
    };
    for m in ms.iter_mut() {
        let range = match m.name {
            LOCK_LEFT => lock_left.clone(),
            BACK => back.clone(),
            // Predicted only when HAProxy had no line up for a spell (it waited for a check).
            HAPROXY if haproxy_spell => match (s.haproxy_check, primary_by.as_ref()) {
                (Some((inter, rise)), Some((min, max, why))) => Some((
                    *min,
                    max + inter * f64::from(rise),
                    format!(
                        "no line up until a check passes: {why}, + inter {inter:.0} ms x rise {rise}"
                    ),
                )),
                _ => None,
            },
            _ => None,
        };
        if let (Some((min, max, rule)), Some(a)) = (range, m.at_us) {
            let seen_ms = (a - inj) as f64 / 1000.0;
            let prec = m.precision_ms.unwrap_or(0.0);
            // Measured in [seen - precision, seen]: outside when that range misses [min, max].
            let outside = seen_ms < min || seen_ms - prec > max;
            m.predicted_ms = Some(Predicted {
                min_ms: min,
                max_ms: max,
                rule,
                outside,
            });
        }
    }
}

fn assemble(span: Span, injected: Option<i64>, ms: Vec<Milestone>, moved: bool) -> Phases {
    let (start, end, window_ms) = (span.start_us, span.end_us, span.ms);
    let mut findings = Vec::new();
    let mut phases = Vec::new();
    let mut boundary = start;
    let mut names = PHASE_NAMES.iter();
    for m in &ms {
        // The lock phases have no moments when the lock did not move.
        let name = loop {
            let n = *names.next().unwrap_or(&"?");
            if moved {
                break n;
            }
            // The same member comes back: no lock phases, and it is not promoted.
            match n {
                "waiting for the lock" | "lock free" => {}
                "promotion" => break BACK_PHASE,
                _ => break n,
            }
        };
        let prec = m.precision_ms.unwrap_or(0.0);
        // What this moment cannot come before: the old leader stops before its lock leaves,
        // which goes before another takes it, which goes before that one's promotion; PgBouncer
        // and HAProxy follow the lock taken (each on its own: HAProxy's check asks Patroni,
        // not PgBouncer), or the old leader stopping when the lock did not move.
        let after = match m.name {
            LOCK_LEFT => Some(STOPPED),
            LOCK_TAKEN => Some(LOCK_LEFT),
            PROMOTED => Some(LOCK_TAKEN),
            BACK => Some(STOPPED),
            PGBOUNCER | HAPROXY if moved => Some(LOCK_TAKEN),
            PGBOUNCER | HAPROXY => Some(STOPPED),
            _ => None,
        }
        .and_then(|n| ms.iter().find(|x| x.name == n))
        .and_then(|x| Some((x.name, x.at_us?, x.precision_ms.unwrap_or(0.0))));
        match m.at_us {
            None => findings.push(format!("{}: not seen", m.name)),
            // The old leader stopping is what starts the window: it may come first (a client
            // fails only once it tries, or once PgBouncer gives up holding it).
            Some(a) if m.name == STOPPED && a < start => {}
            // It happened at most `prec` before it was seen: seen before the start, it was.
            Some(a) if a < start => findings.push(format!(
                "{}: seen {:.0} ms before the window began",
                m.name,
                (start - a) as f64 / 1000.0
            )),
            Some(a) if (a as f64 - prec * 1000.0) > end as f64 => findings.push(format!(
                "{}: seen {:.0} ms after the first client write (precision {prec:.0} ms)",
                m.name,
                (a - end) as f64 / 1000.0
            )),
            // Before what it must follow, by more than that one's precision: out of order
            // (its phase is cut to 0 below). A moment already so stood in nobody's way.
            Some(a)
                if !m.already
                    && after.is_some_and(|(_, b, bp)| (a as f64) < b as f64 - bp * 1000.0) =>
            {
                let (n, b, bp) = after.expect("matched");
                findings.push(format!(
                    "{}: seen {:.0} ms before {n} (precision {bp:.0} ms): out of order, its phase cut to 0",
                    m.name,
                    (b - a) as f64 / 1000.0,
                ));
            }
            _ => {}
        }
        if let Some(p) = &m.predicted_ms {
            if p.outside {
                findings.push(format!(
                    "{}: outside its prediction [{:.2}, {:.2}] s after the injection ({})",
                    m.name,
                    p.min_ms / 1000.0,
                    p.max_ms / 1000.0,
                    p.rule
                ));
            }
        }
        let b = m.at_us.unwrap_or(boundary).clamp(boundary, end);
        phases.push(Phase {
            name,
            start_us: boundary,
            end_us: b,
            duration_ms: (b - boundary) as f64 / 1000.0,
        });
        boundary = b;
    }
    phases.push(Phase {
        name: PHASE_NAMES[PHASE_NAMES.len() - 1],
        start_us: boundary,
        end_us: end,
        duration_ms: (end - boundary) as f64 / 1000.0,
    });
    let dominant = phases
        .iter()
        .max_by(|a, b| a.duration_ms.total_cmp(&b.duration_ms))
        .map(|p| p.name);
    let precision_ms = ms
        .iter()
        .filter(|m| m.at_us.is_some())
        .filter_map(|m| m.precision_ms)
        .reduce(f64::max);
    let accounted_for = !findings
        .iter()
        .any(|f| !f.contains("outside its prediction"));
    // Seen at `a`, it happened in [a - precision, a]; only inside the window is it a part.
    let cluster_ms = ms
        .iter()
        .find(|m| m.name == PROMOTED || m.name == BACK)
        .and_then(|m| m.at_us.map(|a| (a, m.precision_ms.unwrap_or(0.0))))
        .filter(|(a, _)| (start..=end).contains(a))
        .map(|(a, prec)| {
            let max_ms = (a - start) as f64 / 1000.0;
            Between {
                min_ms: (max_ms - prec).max(0.0),
                max_ms,
            }
        });
    Phases {
        span: span.kind,
        window_start_us: start,
        window_end_us: end,
        window_ms,
        injected_at_us: injected,
        milestones: ms,
        phases,
        dominant,
        cluster_ms,
        precision_ms,
        predicted_end_ms: None,
        accounted_for,
        findings,
    }
}

/// The phases as text lines for the run's summary.
pub fn lines(p: &Phases) -> Vec<String> {
    let mut out = vec![format!(
        "{} {:.0} ms ({:+.2} s to {:+.2} s) by phase{}; {}:",
        p.span.name(),
        p.window_ms,
        p.window_start_us as f64 / 1e6,
        p.window_end_us as f64 / 1e6,
        p.precision_ms.map_or(String::new(), |x| format!(
            ", each moment to within {x:.0} ms"
        )),
        if p.accounted_for {
            if p.span == SpanKind::Window {
                "every moment seen inside the window, in order"
            } else {
                "every moment seen inside the stall, in order"
            }
        } else {
            "NOT ACCOUNTED FOR (below)"
        }
    )];
    for ph in &p.phases {
        out.push(format!(
            "  {:<22} {:>7.0} ms{}",
            ph.name,
            ph.duration_ms,
            if Some(ph.name) == p.dominant {
                "  <- dominant"
            } else {
                ""
            }
        ));
    }
    if let (Some(c), Some(k)) = (p.cluster_ms, p.clients_ms()) {
        out.push(format!(
            "  the cluster's part {:.0}-{:.0} ms (until the leader's PostgreSQL was primary, seen to within {:.0} ms), the clients' way back {:.0}-{:.0} ms",
            c.min_ms,
            c.max_ms,
            c.max_ms - c.min_ms,
            k.min_ms,
            k.max_ms
        ));
    }
    for m in p.milestones.iter().filter(|m| m.predicted_ms.is_some()) {
        let pr = m.predicted_ms.as_ref().expect("filtered");
        let seen = match (m.at_us, p.injected_at_us) {
            (Some(a), Some(i)) => format!("{:.2} s", (a - i) as f64 / 1e6),
            _ => "not seen".into(),
        };
        out.push(format!(
            "  predicted: {} {:.2}-{:.2} s after the injection, measured {seen}{} ({})",
            m.name,
            pr.min_ms / 1000.0,
            pr.max_ms / 1000.0,
            if pr.outside { " OUTSIDE" } else { "" },
            pr.rule
        ));
    }
    if let (Some(pr), Some(i)) = (&p.predicted_end_ms, p.injected_at_us) {
        out.push(format!(
            "  predicted: the first client write {:.2}-{:.2} s after the injection, measured {:.2} s{}",
            pr.min_ms / 1000.0,
            pr.max_ms / 1000.0,
            (p.window_end_us - i) as f64 / 1e6,
            if pr.outside { " OUTSIDE" } else { "" }
        ));
    }
    for f in &p.findings {
        out.push(format!("  finding: {f}"));
    }
    out
}

/// The phases as a stacked bar (each phase's share of the window) with its legend, for the
/// run's HTML page.
pub fn html_bar(p: &Phases) -> String {
    const COLOURS: [&str; 7] = [
        "#8c564b", "#d62728", "#ff7f0e", "#9467bd", "#2ca02c", "#17becf", "#1f77b4",
    ];
    let colour = |name: &str| {
        let name = if name == BACK_PHASE {
            "promotion"
        } else {
            name
        };
        PHASE_NAMES
            .iter()
            .position(|n| *n == name)
            .map_or("#999", |i| COLOURS[i])
    };
    let total = p.window_ms.max(1.0);
    let mut bar = String::new();
    let mut legend = String::new();
    for ph in &p.phases {
        let share = 100.0 * ph.duration_ms / total;
        bar.push_str(&format!(
            "<div title=\"{}: {:.0} ms\" style=\"flex:0 0 {share:.2}%;background:{}\"></div>",
            ph.name,
            ph.duration_ms,
            colour(ph.name)
        ));
        legend.push_str(&format!(
            "<tr><td><span style=\"display:inline-block;width:12px;height:12px;background:{}\"></span> {}</td><td>{:.0} ms</td><td>{share:.0} %</td></tr>",
            colour(ph.name),
            ph.name,
            ph.duration_ms
        ));
    }
    format!(
        "<h2>The window by phase: {:.0} ms{}</h2>\
         <div class=\"phases\" style=\"display:flex;width:100%;height:24px;border:1px solid #444\">{bar}</div>\
         <table>{legend}</table><p>{}</p>",
        p.window_ms,
        p.dominant
            .map_or(String::new(), |d| format!(", dominated by {d}")),
        if p.accounted_for {
            "Every moment was seen inside the window, in order."
        } else {
            "The observer does not account for all of the window: see the findings in the timeline below."
        }
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use patroni_lab_cluster::timeline::Seen;
    use patroni_lab_probe::model::Window;

    fn seen(at_ms: i64, s: Seen) -> Event {
        Event {
            unix_us: 0,
            at_us: at_ms * 1000,
            source: Source::Cluster,
            what: s.to_string(),
            seen: Some(s),
            mark: None,
        }
    }

    fn inject(at_ms: i64) -> Event {
        Event {
            unix_us: 0,
            at_us: at_ms * 1000,
            source: Source::Fault,
            what: "inject kill-leader".into(),
            seen: None,
            mark: Some(Mark::Injected),
        }
    }

    fn pg(member: &str, state: PgState) -> Seen {
        Seen::Postgres {
            member: member.into(),
            state,
        }
    }

    /// The phases of a window `w` whose leader was patroni1 and is `new` after.
    fn phases_of(events: &[Event], w: &Window, new: &str, settings: Settings) -> Phases {
        of(
            events,
            &gaps(100.0),
            Some(Span::window(w)),
            "patroni1",
            Some(new),
            settings,
        )
        .unwrap()
    }

    fn gaps(ms: f64) -> Vec<Sampling> {
        [
            "patroni1 PostgreSQL",
            "patroni2 PostgreSQL",
            "etcd leader key",
            "PgBouncer target",
            "HAProxy routing",
        ]
        .iter()
        .map(|s| Sampling {
            source: s.to_string(),
            samples: 100,
            max_gap_ms: Some(ms),
            p99_gap_ms: Some(ms),
        })
        .collect()
    }

    fn window(start_ms: u64, end_ms: u64) -> Window {
        Window {
            client: None,
            start_us: start_ms * 1000,
            end_us: end_ms * 1000,
            duration_ms: (end_ms - start_ms) as f64,
            errors: 1,
            classes: Default::default(),
            clients: None,
            open_at_end: false,
        }
    }

    /// A killed leader: the window from 10.0 s to 32.0 s.
    fn killed() -> Vec<Event> {
        vec![
            seen(0, pg("patroni1", PgState::Primary { timeline: 1 })),
            seen(0, pg("patroni2", PgState::Replica)),
            seen(0, Seen::Lock(LockSeen::Held("patroni1".into()))),
            seen(
                0,
                Seen::PgBouncer {
                    target: Ok("patroni1".into()),
                    waiting: None,
                },
            ),
            seen(0, Seen::HaProxy(Ok(vec!["patroni1".into()]))),
            inject(10_000),
            seen(10_100, pg("patroni1", PgState::NotAnswering)),
            // The old leader's check failed twice: no line up, clients refused.
            seen(12_000, Seen::HaProxy(Ok(vec![]))),
            seen(30_000, Seen::Lock(LockSeen::Free)),
            seen(30_100, Seen::Lock(LockSeen::Held("patroni2".into()))),
            seen(31_000, pg("patroni2", PgState::Primary { timeline: 2 })),
            seen(
                31_200,
                Seen::PgBouncer {
                    target: Ok("patroni2".into()),
                    waiting: None,
                },
            ),
            seen(31_500, Seen::HaProxy(Ok(vec!["patroni2".into()]))),
        ]
    }

    #[test]
    fn a_killed_leaders_window_is_its_phases_and_the_lock_dominates() {
        let w = window(10_000, 32_000);
        let p = phases_of(&killed(), &w, "patroni2", Settings::default());
        let d: Vec<(&str, f64)> = p.phases.iter().map(|x| (x.name, x.duration_ms)).collect();
        assert_eq!(
            d,
            [
                ("old leader stopping", 100.0),
                ("waiting for the lock", 19_900.0),
                ("lock free", 100.0),
                ("promotion", 900.0),
                ("PgBouncer switch", 200.0),
                ("HAProxy check", 300.0),
                ("client reconnect", 500.0),
            ]
        );
        assert_eq!(
            p.phases.iter().map(|x| x.duration_ms).sum::<f64>(),
            22_000.0
        );
        assert_eq!(p.dominant, Some("waiting for the lock"));
        assert!(p.accounted_for, "{:?}", p.findings);
        // The cluster's part ends at the new primary: 21 of the 22 s, seen to within one
        // sampling gap (100 ms).
        assert_eq!(
            p.cluster_ms,
            Some(Between {
                min_ms: 20_900.0,
                max_ms: 21_000.0
            })
        );
        assert!(lines(&p).iter().any(|l| l.contains(
            "the cluster's part 20900-21000 ms (until the leader's PostgreSQL was primary, seen to within 100 ms), the clients' way back 1000-1100 ms"
        )), "{:?}", lines(&p));
        // The old leader stopped answering: its precision is its source's longest gap (which
        // holds the timed-out sample itself).
        assert_eq!(p.milestones[0].precision_ms, Some(100.0));
    }

    #[test]
    fn a_stall_is_broken_up_like_a_window_and_says_so() {
        let w = window(10_000, 32_000);
        let stall = Span {
            kind: SpanKind::Stall,
            ..Span::window(&w)
        };
        let p = of(
            &killed(),
            &gaps(100.0),
            Some(stall),
            "patroni1",
            Some("patroni2"),
            Settings::default(),
        )
        .unwrap();
        assert_eq!(p.span, SpanKind::Stall);
        assert_eq!(p.cluster_ms.map(|c| c.max_ms), Some(21_000.0));
        assert!(
            lines(&p)[0].starts_with("stall 22000 ms (+10.00 s to +32.00 s) by phase"),
            "{:?}",
            lines(&p)
        );
        assert!(lines(&p)[0].ends_with("every moment seen inside the stall, in order:"));
    }

    #[test]
    fn a_moment_not_seen_or_after_the_first_write_does_not_add_up() {
        let mut events = killed();
        events.retain(|e| e.seen != Some(Seen::HaProxy(Ok(vec!["patroni2".into()]))));
        events.retain(|e| e.seen != Some(pg("patroni2", PgState::Primary { timeline: 2 })));
        let w = window(10_000, 32_000);
        let p = phases_of(&events, &w, "patroni2", Settings::default());
        assert!(!p.accounted_for);
        assert_eq!(p.findings, ["new leader's PostgreSQL primary: not seen"]);
        // HAProxy with no line up still at the first write did not stop it: not the window's.
        let ha = p.milestones.iter().find(|m| m.name == HAPROXY).unwrap();
        assert_eq!(ha.at_us, Some(10_000_000));
        // PgBouncer switched 1 s after the client's first write: more than its 100 ms precision.
        let mut late = killed();
        late.push(seen(
            33_000,
            Seen::PgBouncer {
                target: Ok("patroni2".into()),
                waiting: None,
            },
        ));
        late.retain(|e| e.what != "PgBouncer -> patroni2" || e.at_us == 33_000_000);
        let p = phases_of(&late, &w, "patroni2", Settings::default());
        assert!(!p.accounted_for);
        assert!(
            p.findings[0].starts_with("PgBouncer targets it: seen 1000 ms after"),
            "{:?}",
            p.findings
        );
        assert_eq!(
            p.phases.iter().map(|x| x.duration_ms).sum::<f64>(),
            22_000.0
        );
    }

    #[test]
    fn a_moment_out_of_order_or_before_the_window_is_a_finding() {
        let w = window(10_000, 32_000);
        // PgBouncer seen on the new leader 0.6 s before it took the lock (seen to within
        // 100 ms): out of order, its phase cut to 0, and said so.
        let mut early = killed();
        early.retain(|e| e.what != "PgBouncer -> patroni2");
        early.push(seen(
            29_500,
            Seen::PgBouncer {
                target: Ok("patroni2".into()),
                waiting: None,
            },
        ));
        early.sort_by_key(|e| e.at_us);
        let p = phases_of(&early, &w, "patroni2", Settings::default());
        assert!(!p.accounted_for);
        assert_eq!(
            p.findings,
            [
                "PgBouncer targets it: seen 600 ms before new leader took the lock (precision 100 ms): out of order, its phase cut to 0"
            ]
        );
        assert_eq!(p.phases[4].duration_ms, 0.0);
        // After the lock was taken but before the promotion was seen: in order (PgBouncer
        // follows the lock, not the promotion's sample), its phase 0.
        let mut close = killed();
        close.retain(|e| e.what != "PgBouncer -> patroni2");
        close.push(seen(
            30_200,
            Seen::PgBouncer {
                target: Ok("patroni2".into()),
                waiting: None,
            },
        ));
        close.sort_by_key(|e| e.at_us);
        let p = phases_of(&close, &w, "patroni2", Settings::default());
        assert!(p.accounted_for, "{:?}", p.findings);
        assert_eq!(p.phases[4].duration_ms, 0.0);
        // The lock seen gone 50 ms before the first failure: it went then or earlier (a sample
        // ends after what it saw), before the window, whatever the precision. The old leader
        // stopping long before is no finding: it is what starts the window.
        let p = phases_of(
            &killed(),
            &window(30_050, 32_000),
            "patroni2",
            Settings::default(),
        );
        assert_eq!(
            p.findings,
            ["lock left the old leader: seen 50 ms before the window began"]
        );
    }

    #[test]
    fn the_old_leader_stopping_after_the_first_write_is_still_a_finding() {
        // Exempt only from "before the window": seen 300 ms after the first write (precision
        // 100 ms), it is out of the window like any moment.
        let p = phases_of(
            &killed(),
            &window(5_000, 9_800),
            "patroni2",
            Settings::default(),
        );
        assert!(
            p.findings
                .iter()
                .any(|f| f.starts_with("old leader stopped serving: seen 300 ms after")),
            "{:?}",
            p.findings
        );
    }

    #[test]
    fn haproxy_never_read_is_not_seen_rather_than_never_in_the_way() {
        let mut events = killed();
        events.retain(|e| !matches!(e.seen, Some(Seen::HaProxy(_))));
        let p = phases_of(
            &events,
            &window(10_000, 32_000),
            "patroni2",
            Settings::default(),
        );
        assert!(!p.accounted_for);
        assert_eq!(p.findings, ["HAProxy routes clients: not seen"]);
        // Readable at the injection (a line up), then its page not answering until after the
        // first write: a spell could hide there, so not seen either.
        let mut blind = killed();
        blind.retain(|e| !matches!(e.seen, Some(Seen::HaProxy(_))) || e.at_us == 0);
        blind.push(seen(11_000, Seen::HaProxy(Err("no answer".into()))));
        blind.sort_by_key(|e| e.at_us);
        let p = phases_of(
            &blind,
            &window(10_000, 32_000),
            "patroni2",
            Settings::default(),
        );
        assert_eq!(p.findings, ["HAProxy routes clients: not seen"]);
        // An unreadable sample neither starts nor ends a spell: down, unreadable, up.
        let mut gap = killed();
        gap.push(seen(20_000, Seen::HaProxy(Err("no answer".into()))));
        gap.sort_by_key(|e| e.at_us);
        let p = phases_of(
            &gap,
            &window(10_000, 32_000),
            "patroni2",
            Settings::default(),
        );
        let ha = p.milestones.iter().find(|m| m.name == HAPROXY).unwrap();
        assert_eq!(ha.at_us, Some(31_500_000));
    }

    #[test]
    fn a_lock_that_never_moved_gets_no_prediction_from_the_lease() {
        // The same member back (a short freeze that kept the lock): the lease's expiry speaks
        // of nothing here; HAProxy is predicted from the member's next loop or not at all.
        let events = vec![
            seen(0, pg("patroni1", PgState::Primary { timeline: 1 })),
            seen(0, Seen::HaProxy(Ok(vec!["patroni1".into()]))),
            inject(5_000),
            seen(5_050, pg("patroni1", PgState::NotAnswering)),
            seen(6_000, Seen::HaProxy(Ok(vec![]))),
            seen(7_000, pg("patroni1", PgState::Primary { timeline: 1 })),
            seen(7_500, Seen::HaProxy(Ok(vec!["patroni1".into()]))),
        ];
        let settings = Settings {
            lease_left_ms: Some((20_000.0, 50.0)),
            haproxy_check: Some((1000.0, 1)),
            ..Settings::default()
        };
        let p = phases_of(&events, &window(5_000, 7_600), "patroni1", settings);
        let ha = p.milestones.iter().find(|m| m.name == HAPROXY).unwrap();
        assert_eq!(ha.predicted_ms, None, "{ha:?}");
    }

    #[test]
    fn the_lock_is_predicted_from_the_lease_and_a_miss_is_a_finding() {
        let w = window(10_000, 32_000);
        let lease = |left_ms: f64| Settings {
            lease_left_ms: Some((left_ms, 50.0)),
            haproxy_check: Some((1000.0, 1)),
            next_loop_ms: None,
            client_backoff_ms: 200.0,
        };
        // Lock left 20.0 s after the injection: inside [19.95, 20.55].
        let p = phases_of(&killed(), &w, "patroni2", lease(20_000.0));
        let lock = &p.milestones[1];
        assert_eq!(lock.name, LOCK_LEFT);
        assert!(!lock.predicted_ms.as_ref().unwrap().outside);
        let ha = p.milestones.iter().find(|m| m.name == HAPROXY).unwrap();
        assert!(!ha.predicted_ms.as_ref().unwrap().outside, "{ha:?}");
        assert!(p.findings.is_empty(), "{:?}", p.findings);
        // HAProxy: from the lock's earliest (19.95 s) to its latest (20.55 s) + the status
        // requests, the take and the promotion (2.0 + 0.4 + 0.6 s) + inter x rise (1.0 s).
        let pr = ha.predicted_ms.as_ref().unwrap();
        assert_eq!((pr.min_ms, pr.max_ms), (19_950.0, 24_550.0));
        // The first client write (22.0 s after the injection): after the lock could leave
        // (19.95 s) and before HAProxy's latest (24.55 s) plus the back-off (0.2 s).
        let end = p.predicted_end_ms.as_ref().unwrap();
        assert_eq!(
            (end.min_ms, end.max_ms, end.outside),
            (19_950.0, 24_750.0, false)
        );
        assert!(lines(&p).iter().any(|l| l.contains(
            "predicted: the first client write 19.95-24.75 s after the injection, measured 22.00 s"
        )));
        // The prediction is the settings' alone: a promotion seen 1 s later moves nothing.
        let mut slow = killed();
        for e in &mut slow {
            if e.seen == Some(pg("patroni2", PgState::Primary { timeline: 2 })) {
                e.at_us += 1_000_000;
            }
        }
        let q = phases_of(&slow, &window(10_000, 33_000), "patroni2", lease(20_000.0));
        let qa = q.milestones.iter().find(|m| m.name == HAPROXY).unwrap();
        assert_eq!(
            qa.predicted_ms.as_ref().map(|p| (p.min_ms, p.max_ms)),
            Some((19_950.0, 24_550.0))
        );
        // A client back 0.45 s after HAProxy's latest with no back-off allowed: a finding.
        let late = Settings {
            client_backoff_ms: 0.0,
            ..lease(20_000.0)
        };
        let p = phases_of(&killed(), &window(10_000, 35_000), "patroni2", late);
        assert!(p.predicted_end_ms.as_ref().unwrap().outside);
        assert!(
            p.findings.iter().any(|f| f.contains(
                "the first client write: 25.00 s after the injection, outside its prediction [19.95, 24.55] s"
            )),
            "{:?}",
            p.findings
        );
        // A lease said to have 15 s left: the lock leaving at 20 s is outside, and said so.
        let p = phases_of(&killed(), &w, "patroni2", lease(15_000.0));
        assert!(p.milestones[1].predicted_ms.as_ref().unwrap().outside);
        assert!(
            p.findings[0].contains("outside its prediction [14.95, 15.55]"),
            "{:?}",
            p.findings
        );
        assert!(
            p.accounted_for,
            "a missed prediction is a finding, not a gap in the account"
        );
    }

    #[test]
    fn a_leader_that_comes_back_has_no_lock_phases() {
        let events = vec![
            seen(0, pg("patroni1", PgState::Primary { timeline: 1 })),
            seen(
                0,
                Seen::PgBouncer {
                    target: Ok("patroni1".into()),
                    waiting: None,
                },
            ),
            seen(0, Seen::HaProxy(Ok(vec!["patroni1".into()]))),
            inject(5_000),
            seen(5_050, pg("patroni1", PgState::NotAnswering)),
            seen(7_000, pg("patroni1", PgState::Primary { timeline: 1 })),
        ];
        let w = window(5_000, 7_400);
        let p = phases_of(&events, &w, "patroni1", Settings::default());
        let names: Vec<&str> = p.phases.iter().map(|x| x.name).collect();
        assert_eq!(
            names,
            [
                "old leader stopping",
                "back as primary",
                "PgBouncer switch",
                "HAProxy check",
                "client reconnect"
            ]
        );
        // PgBouncer and HAProxy never left it: nothing to wait for there.
        assert_eq!(p.phases[2].duration_ms, 0.0);
        assert_eq!(p.phases[3].duration_ms, 0.0);
        assert_eq!(p.phases[1].duration_ms, 1950.0);
        assert_eq!(
            p.cluster_ms.map(|c| c.max_ms),
            Some(2000.0),
            "back as primary ends the cluster's part"
        );
        assert!(p.accounted_for, "{:?}", p.findings);
        assert!(html_bar(&p).contains("dominated by back as primary"));
        // A crash mended on the leader's next loop: 1.5 s after the injection here (age 8.5 s
        // of loop_wait 10), primary again 2.0 s after it: inside [0.95, 4.55].
        let crash = Settings {
            next_loop_ms: Some((1500.0, 50.0)),
            ..Settings::default()
        };
        let p = phases_of(&events, &w, "patroni1", crash);
        let back = p.milestones.iter().find(|m| m.name == BACK).unwrap();
        let pr = back.predicted_ms.as_ref().unwrap();
        assert_eq!((pr.min_ms, pr.max_ms, pr.outside), (950.0, 4550.0, false));
        // Said to be 8 s away: back after 2 s is outside, and a finding.
        let late = Settings {
            next_loop_ms: Some((8000.0, 50.0)),
            ..Settings::default()
        };
        let p = phases_of(&events, &w, "patroni1", late);
        assert!(
            p.findings[0].starts_with("its PostgreSQL primary again: outside its prediction"),
            "{:?}",
            p.findings
        );
    }

    #[test]
    fn haproxy_that_kept_a_line_up_never_stood_in_the_way() {
        let mut events = killed();
        events.retain(|e| !matches!(e.seen, Some(Seen::HaProxy(_))) || e.at_us == 0);
        let w = window(10_000, 32_000);
        let p = phases_of(&events, &w, "patroni2", Settings::default());
        let ha = p.phases.iter().find(|x| x.name == "HAProxy check").unwrap();
        assert_eq!(ha.duration_ms, 0.0);
        assert_eq!(p.phases.last().unwrap().duration_ms, 800.0);
        // HAProxy never waited for a check: nothing to predict there (the window beginning
        // after the injection, as a switchover's does).
        let w = window(10_100, 32_000);
        let settings = Settings {
            haproxy_check: Some((1000.0, 1)),
            ..Settings::default()
        };
        let p = phases_of(&events, &w, "patroni2", settings);
        let ha = p.milestones.iter().find(|m| m.name == HAPROXY).unwrap();
        assert_eq!(ha.predicted_ms, None);
        assert!(p.findings.is_empty(), "{:?}", p.findings);
        assert!(p.accounted_for, "{:?}", p.findings);
    }

    #[test]
    fn a_haproxy_spell_after_the_first_write_is_not_the_windows() {
        let mut events = killed();
        // A blip right after the first client write (32.0 s), ending later than the slack.
        events.push(seen(32_050, Seen::HaProxy(Ok(vec![]))));
        events.push(seen(32_600, Seen::HaProxy(Ok(vec!["patroni2".into()]))));
        let w = window(10_000, 32_000);
        let p = phases_of(&events, &w, "patroni2", Settings::default());
        let ha = p.milestones.iter().find(|m| m.name == HAPROXY).unwrap();
        assert_eq!(ha.at_us, Some(31_500_000));
        assert!(p.accounted_for, "{:?}", p.findings);
    }

    #[test]
    fn no_window_no_phases() {
        assert_eq!(
            of(
                &killed(),
                &gaps(100.0),
                None,
                "patroni1",
                Some("patroni2"),
                Settings::default()
            ),
            None
        );
    }
}
