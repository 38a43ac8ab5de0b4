//! The lab tests of one fault each (a module a fault, named as the fault): it happens (its step
//! is on the timeline and the cluster shows it), is undone, and the cluster is whole afterwards.
//! What the runner does for every fault (signals, refusals, placement, a cluster given by URLs)
//! is tested in `tests/scenario.rs`.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use patroni_lab_testkit::*;
use serde_json::Value;

mod crash_postgres;
mod delay_link;
mod etcd_loss;
mod freeze_etcd;
mod freeze_patroni;
mod freeze_postmaster;
mod kill_leader;
mod lossy_link;
mod oom_backend;
mod partition_leader;
mod proxy_restarts;
mod replica_loss;
mod restart_leader;
mod stop_leader;
mod switchover;
mod switchover_paused;
mod thin_link;

/// A scenario that takes the leader's container down: `step` (naming the leader) is on the
/// timeline, the other node takes the lock, and the old leader is started again.
pub(crate) fn leader_down_fails_over_and_comes_back(
    lab: &LabTest,
    scenario_name: &str,
    step: &str,
) {
    let (code, report, _) = scenario(scenario_name, &[]);
    if scenario_name == "kill-leader" {
        passed_but_for_async_loss(code, &report);
    } else {
        assert_eq!(code, 0);
        grades_all_pass(&report);
    }
    let new = other(&lab.leader);
    assert!(
        has_event(&report["runs"][0], &format!("{step} {}", lab.leader)),
        "{:?}",
        events(&report["runs"][0])
    );
    assert!(has_event(
        &report["runs"][0],
        &format!("docker start {}", lab.leader)
    ));
    assert!(has_event(
        &report["runs"][0],
        &format!("leader lock: {new}")
    ));
    assert_eq!(report["runs"][0]["leader_after"], new);
    all_back();
}
