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
