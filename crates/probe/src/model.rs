//! What the analysis finds, as plain result types (a leaf: the passes that fill them import
//! these, never the other way round): totals, windows, stalls, servers, the cut-over, split
//! brain, latency, the per-second timeline, and the whole analysis.

use crate::percentile::Percentiles;
use crate::record::ServerId;
use std::collections::BTreeMap;

use serde::Serialize;

use crate::acked::Acked;

/// Counts over the whole run.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Totals {
    pub attempts: u64,
    pub ok: u64,
    pub failed: u64,
    pub in_doubt: u64,
    pub writes_ok: u64,
    pub reads_ok: u64,
    pub connects: u64,
    /// Writes refused with 25006 (they reached a read-only server).
    pub read_only_refusals: u64,
    /// Reads answered by a server in recovery: through an endpoint meant for the primary, a
    /// read that may have been stale.
    pub reads_from_recovery: u64,
}

/// First failure to the first success after it.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Window {
    /// `None` for the merged, all-clients windows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<u32>,
    pub start_us: u64,
    pub end_us: u64,
    pub duration_ms: f64,
    /// Failed and in-doubt attempts inside the window.
    pub errors: u64,
    pub classes: BTreeMap<String, u64>,
    /// Clients that had a window overlapping this one (merged windows only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub clients: Option<u32>,
    /// The run ended before a success closed the window.
    pub open_at_end: bool,
}

/// No acknowledgement from any client for longer than the threshold.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Stall {
    pub start_us: u64,
    pub end_us: u64,
    pub duration_ms: f64,
    /// Attempts that failed or ended in doubt during the stall (0: clients just waited).
    pub errors: u64,
    /// The run ended before an acknowledgement closed the stall: `end_us` is the end of the
    /// run and `duration_ms` the length so far.
    pub open_at_end: bool,
}

/// The writes one server committed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServerSpan {
    pub server: ServerId,
    pub writes: u64,
    pub first_commit_us: u64,
    pub last_commit_us: u64,
    #[serde(skip)]
    pub(crate) last_start_us: u64,
}

/// The move of writes from one server to the next.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Cutover {
    pub from: ServerId,
    pub to: ServerId,
    pub last_old_commit_us: u64,
    pub first_new_commit_us: u64,
    /// Last commit on the old primary to the first on the new one (0 when they overlap).
    pub gap_ms: f64,
}

/// Two servers that both committed writes at overlapping times.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct SplitBrain {
    pub earlier: ServerId,
    pub later: ServerId,
    /// Writes the earlier server committed that began after the later one had acknowledged one.
    pub writes_after_takeover: u64,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Latency {
    /// Successful attempts over the whole run.
    pub overall: Percentiles,
    /// Successful attempts that overlapped an unavailability window.
    pub in_windows: Percentiles,
}

/// One second of the run (by the time attempts ended).
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Second {
    pub second: u64,
    pub ok: u64,
    pub failed: u64,
    pub in_doubt: u64,
    pub p50_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub max_ms: Option<f64>,
}

/// Everything the analysis found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Analysis {
    pub totals: Totals,
    pub errors_by_class: BTreeMap<String, u64>,
    pub windows: Vec<Window>,
    pub client_windows: Vec<Window>,
    pub longest_window_ms: f64,
    pub stalls: Vec<Stall>,
    pub servers: Vec<ServerSpan>,
    pub cutovers: Vec<Cutover>,
    pub split_brain: Vec<SplitBrain>,
    pub latency: Latency,
    pub timeline: Vec<Second>,
    /// What reading clients saw on the reader endpoint (`None`: no reader endpoint given).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub readers: Option<crate::readers::Readers>,
    #[serde(skip)]
    pub acked: Acked,
    /// (client, seq) of writes whose outcome is unknown.
    #[serde(skip)]
    pub in_doubt: Vec<(u32, u64)>,
}
