//! `kill-leader`: SIGKILL to the leader's container; the other node takes the lock and the old leader is started again.

use super::*;

#[test]
#[ignore = "long fault run: `make test-long` runs it (CI runs both)"]
fn kill_leader_scenario_fails_over_and_starts_the_old_leader_again() {
    let lab = LabTest::begin("kill_leader_scenario_fails_over_and_starts_the_old_leader_again");
    leader_down_fails_over_and_comes_back(&lab, "kill-leader", "docker kill -s KILL");
}
