//! `stop-leader`: a graceful stop of the leader's container; the other node takes the lock and the old leader is started again.

use super::*;

#[test]
fn stop_leader_scenario_fails_over_gracefully_and_starts_the_old_leader_again() {
    let lab = LabTest::begin(
        "stop_leader_scenario_fails_over_gracefully_and_starts_the_old_leader_again",
    );
    leader_down_fails_over_and_comes_back(&lab, "stop-leader", "docker stop");
}
