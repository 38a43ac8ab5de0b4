//! `kill-leader`: the leader's container crashed — frozen, then killed (SIGKILL); its lock lives
//! until it expires.
//! Started again once another member leads.

use std::time::Duration;

use crate::fault::steps::leader_down;
use patroni_lab_cluster::host::Service;
use patroni_lab_cluster::findings::leftover;
use crate::fault::{Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;

pub struct KillLeader;

/// What it is, as data: its name, how long it lasts, what it needs and does beyond its steps,
/// what it can leave behind.
const DECLARED: Declared = Declared {
    name: "kill-leader",
    default_secs: None,
    needs: Needs::Containers,
    bound_rule: Some("ttl + 15 s"),
    effects: Effects {
        in_matrix: true,
        lock_expires: true,
        ..Effects::PLAIN
    },
    params: &[],
    leftovers: &[leftover::CONTAINER_NOT_RUNNING],
};

impl FaultKind for KillLeader {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, _: &Args) -> String {
        "SIGKILL to every process of the leader at one instant (its service frozen first, then killed); started again once the other leads".into()
    }
    /// ttl-bound: ttl + 15 s (the current figures per profile: README, `bench figures`).
    fn expectations(&self, _: &Args, t: Timing) -> Expectations {
        Expectations {
            max_window: Some(Duration::from_secs(t.ttl + 15)),
            whole_within: Duration::from_secs(120),
            ..Expectations::base()
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        // Frozen first, so the crash is one instant for every process of the service, as a
        // machine's is: killed one by one, the backends can go on acknowledging commits after
        // the WAL sender is gone. What remains is async replication's own tail (SCENARIOS.md,
        // "kill-leader under async").
        leader_down(ctx, &[Service::Pause, Service::Kill])
    }
}
