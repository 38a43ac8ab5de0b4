//! What the doctor and "whole" report a bad state with: a finding (what, evidence, repair) and
//! its severity, and a diagnosis (the findings and what could not be read). A leaf: it imports
//! nothing of the crate.

use serde::Serialize;

/// How bad a finding is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Clients are served, but the next failure costs more than it should.
    Degraded,
    /// Clients are not served, or a member holds data the cluster does not (a repair is due).
    Broken,
}

/// One bad state, in plain words.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// A stable name for it (`diverged-timeline`, `replica-not-streaming`, ...).
    pub code: &'static str,
    pub severity: Severity,
    /// The member or part it is about.
    pub part: String,
    /// What is wrong, one line.
    pub what: String,
    /// What was read that shows it.
    pub evidence: String,
    /// How to mend it.
    pub repair: String,
}

/// The findings that name what a fault left behind when its undo never ran: each fault
/// declares which it can leave (`Declared::leftovers`), and the doctor's leftover check — the
/// one the soak asks too — reports them under these codes.
pub mod leftover {
    /// An undo still armed in this process.
    pub const UNDO_ARMED: &str = "undo-armed";
    /// A container stopped or paused.
    pub const CONTAINER_NOT_RUNNING: &str = "container-not-running";
    /// A partition's packet filter.
    pub const PACKET_FILTER_LEFT: &str = "packet-filter-left";
    /// A bandwidth cap's root qdisc of ours (thin-link).
    pub const QDISC_LEFT: &str = "qdisc-left";
    /// A process stopped by a signal (SIGSTOP without its SIGCONT).
    pub const PROCESS_STOPPED: &str = "process-stopped";
    /// PgBouncer paused.
    pub const PGBOUNCER_PAUSED: &str = "pgbouncer-paused";
    /// HAProxy's hold line enabled.
    pub const HAPROXY_HOLD_ENABLED: &str = "haproxy-hold-enabled";
    /// Every one, as the doctor checks them.
    pub const ALL: &[&str] = &[
        UNDO_ARMED,
        CONTAINER_NOT_RUNNING,
        PACKET_FILTER_LEFT,
        QDISC_LEFT,
        PROCESS_STOPPED,
        PGBOUNCER_PAUSED,
        HAPROXY_HOLD_ENABLED,
    ];
}

/// What the doctor found.
#[derive(Debug, Clone, Serialize)]
pub struct Diagnosis {
    /// The holder of the leader key, if any.
    pub leader: Option<String>,
    pub findings: Vec<Finding>,
    /// Parts that could not be read, so were not checked.
    pub not_checked: Vec<String>,
}

impl Diagnosis {
    /// The worst finding's severity (`None`: healthy, as far as it was checked).
    pub fn worst(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }
}
