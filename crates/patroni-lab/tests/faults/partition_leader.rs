//! `partition-leader`: the leader cut off from etcd and its replica; undone, its lost writes reported.

use super::*;

#[test]
#[ignore = "long fault run: `make test-long` runs it (CI runs both)"]
fn partition_leader_is_undone_and_its_lost_writes_are_reported() {
    let lab = LabTest::begin("partition_leader_is_undone_and_its_lost_writes_are_reported");
    let (code, report, _) = scenario("partition-leader", &["--secs", "35"]);
    let leader = &lab.leader;
    assert!(
        has_event(&report["runs"][0], &format!("{leader} cut off from etcd")),
        "{:?}",
        events(&report["runs"][0])
    );
    assert!(has_event(
        &report["runs"][0],
        &format!("nft delete table inet plab in {leader}")
    ));
    assert!(
        has_event(
            &report["runs"][0],
            &format!("leader lock: {}", other(leader))
        ),
        "{:?}",
        events(&report["runs"][0])
    );
    // Asynchronous replication: the cut-off primary acknowledged writes that never reached the
    // replica until it demoted itself; they are lost, reported, and fail the grade (exit 3).
    let lost = &report["runs"][0]["probe"]["lost_writes"];
    assert_eq!(lost["checked"], Value::Bool(true), "{lost}");
    assert!(!lost["missing"].as_array().unwrap().is_empty(), "{lost}");
    assert_eq!(code, 3);
    // Patroni's promise (loop_wait + 2 x retry_timeout <= ttl): the cut-off leader stops
    // accepting writes before its lock expires, so none after the lock moved.
    let run = &report["runs"][0];
    assert!(run["lock_lost_at_us"].as_i64().is_some(), "{run}");
    assert_eq!(run["old_leader_writes_after_lock_lost"], 0);
    let tables = run_ok(
        "docker",
        &["exec", "--user", "root", leader, "nft", "list", "tables"],
    );
    assert!(!tables.contains("plab"), "filter left in place: {tables}");
    all_back();
}
