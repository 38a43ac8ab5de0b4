//! `restart-leader`: PostgreSQL restarted in place through the REST API; no failover.

use super::*;

#[test]
#[ignore = "long fault run: `make test-long` runs it (CI runs both)"]
fn restart_leader_restarts_postgres_in_place_through_the_rest_api() {
    let lab = LabTest::begin("restart_leader_restarts_postgres_in_place_through_the_rest_api");
    let (code, report, _) = scenario("restart-leader", &[]);
    assert_eq!(code, 0);
    grades_all_pass(&report);
    assert!(has_event(
        &report["runs"][0],
        &format!("restart requested ({})", lab.leader)
    ));
    assert!(
        has_event(&report["runs"][0], "restart done"),
        "{:?}",
        events(&report["runs"][0])
    );
    assert_eq!(
        report["runs"][0]["leader_after"],
        lab.leader.as_str(),
        "no failover"
    );
    all_back();
}
