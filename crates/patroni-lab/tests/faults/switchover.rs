//! `switchover`: the leader moves, PgBouncer follows, every grade passes.

use super::*;

#[test]
fn switchover_scenario_moves_the_leader_and_grades_pass() {
    let lab = LabTest::begin("switchover_scenario_moves_the_leader_and_grades_pass");
    let (code, report, _) = scenario("switchover", &[]);
    assert_eq!(code, 0);
    grades_all_pass(&report);
    let new = other(&lab.leader);
    assert_eq!(report["runs"][0]["leader_after"], new);
    assert!(
        has_event(&report["runs"][0], "switchover requested"),
        "{:?}",
        events(&report["runs"][0])
    );
    assert!(
        has_event(&report["runs"][0], &format!("leader lock: {new}")),
        "{:?}",
        events(&report["runs"][0])
    );
    assert!(
        has_event(&report["runs"][0], &format!("PgBouncer -> {new}")),
        "{:?}",
        events(&report["runs"][0])
    );
    all_back();
}
