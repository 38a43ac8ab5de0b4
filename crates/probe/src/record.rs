//! One attempt as the probe records it: one JSON object per line in the history file.

use serde::{Deserialize, Serialize};

use crate::classify::{Failure, Outcome};

/// A write appends a row; a read selects one; a replica read, on the reader endpoint right
/// after the client's write `seq` was acknowledged, selects the client's newest row there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Write,
    Read,
    ReplicaRead,
}

/// The server that answered: its address as PostgreSQL sees it and its timeline. A new
/// primary after a failover has a new timeline even at the same address.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ServerId {
    pub addr: String,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub timeline: Option<u32>,
}

impl std::fmt::Display for ServerId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.timeline {
            Some(tl) => write!(f, "{} tl{}", self.addr, tl),
            None => f.write_str(&self.addr),
        }
    }
}

/// One attempt. Times are microseconds since the run began (monotonic clock); the wall clock
/// of any instant is the report's `started_unix_us` plus that offset.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub client: u32,
    /// Per-client sequence number; for a write, the `seq` of the row it appends.
    pub seq: u64,
    pub kind: Kind,
    pub start_us: u64,
    pub end_us: u64,
    pub outcome: Outcome,
    /// Whether this attempt opened a new connection (always, in connection-per-transaction mode).
    pub connected: bool,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub server: Option<ServerId>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub in_recovery: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub error: Option<Failure>,
    /// A replica read: the newest of its client's rows it saw (0: none).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub seen: Option<u64>,
    /// The server's WAL position when it answered, bytes from 0/0: a write's (on the primary,
    /// just before its commit), a read's (a replica's replayed position).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub wal: Option<u64>,
}

impl Attempt {
    /// An attempt just begun: ok until it fails, nothing known yet.
    pub fn begun(client: u32, seq: u64, kind: Kind, start_us: u64) -> Self {
        Self {
            client,
            seq,
            kind,
            start_us,
            end_us: 0,
            outcome: Outcome::Ok,
            connected: false,
            server: None,
            in_recovery: None,
            error: None,
            seen: None,
            wal: None,
        }
    }

    pub fn latency_us(&self) -> u64 {
        self.end_us.saturating_sub(self.start_us)
    }
}
