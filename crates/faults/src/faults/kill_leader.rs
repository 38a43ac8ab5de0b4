//! `kill-leader`: the leader's container crashed — frozen, then killed (SIGKILL); its lock lives
//! until it expires.
//! Started again once another member leads.

use std::time::Duration;

use crate::fault::steps::leader_down;
use patroni_lab_cluster::host::Service;
use crate::fault::{Ctx, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;

pub struct KillLeader;

impl FaultKind for KillLeader {
    fn name(&self) -> &'static str {
        "kill-leader"
    }
    fn describe(&self, _: Option<u64>) -> String {
        "SIGKILL to every process of the leader at one instant (its service frozen first, then killed); started again once the other leads".into()
    }
    fn bound_rule(&self) -> Option<&'static str> {
        Some("ttl + 15 s")
    }
    fn lock_expires(&self) -> bool {
        true
    }
    fn needs(&self) -> Needs {
        Needs::Containers
    }
    /// ttl-bound: ttl + 15 s. Measured 26-31 s with ttl 30 / loop_wait 10 (26.9 s by the
    /// runner); 12.5 s median, 17.8 s worst with fast's ttl 20 (bound 35 s).
    fn expectations(&self, _: Option<u64>, t: Timing) -> Expectations {
        Expectations {
            max_window: Some(Duration::from_secs(t.ttl + 15)),
            whole_within: Duration::from_secs(120),
            ..Expectations::base()
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        // Frozen first, so the crash is one instant for every process in the container, as a
        // machine's is. A bare `docker kill` lets them die one by one: the backends went on
        // acknowledging commits ~40 ms after the kill was issued, the WAL sender already gone
        // (2 of 6 runs on 2026-11-29). What remains is async replication's own tail
        // (SCENARIOS.md, "kill-leader under async").
        leader_down(ctx, &[Service::Pause, Service::Kill])
    }
}
