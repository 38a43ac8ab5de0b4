//! `replica-loss`: the replica stopped; clients see nothing and it comes back.

use super::*;

#[test]
#[ignore = "long fault run: `make test-long` runs it (CI runs both)"]
fn replica_loss_is_not_seen_by_clients_and_the_replica_comes_back() {
    let lab = LabTest::begin("replica_loss_is_not_seen_by_clients_and_the_replica_comes_back");
    let (code, report, _) = scenario("replica-loss", &["--secs", "3"]);
    assert_eq!(code, 0);
    grades_all_pass(&report);
    let replica = other(&lab.leader);
    assert!(has_event(
        &report["runs"][0],
        &format!("docker stop {replica}")
    ));
    assert!(
        has_event(
            &report["runs"][0],
            &format!("{replica}: REST API not answering")
        ),
        "{:?}",
        events(&report["runs"][0])
    );
    all_back();
}
