//! `freeze-patroni`: the leader's Patroni stopped, PostgreSQL left primary: a split brain the report counts and fails on.

use super::*;

#[test]
#[ignore = "long fault run: `make test-long` runs it (CI runs both)"]
fn freeze_patroni_makes_a_split_brain_that_the_report_counts_and_fails_on() {
    let lab =
        LabTest::begin("freeze_patroni_makes_a_split_brain_that_the_report_counts_and_fails_on");
    // Patroni frozen 40 s (> ttl 30): the lock expires, the replica is promoted, and the old
    // primary (no watchdog) goes on committing for the clients on its own address.
    let (code, report, _) = scenario("freeze-patroni", &["--secs", "40"]);
    let run = &report["runs"][0];
    assert!(
        has_event(
            &report["runs"][0],
            &format!("{}'s Patroni (pid ", lab.leader)
        ) && has_event(&report["runs"][0], ") is T (stopped)"),
        "{:?}",
        events(&report["runs"][0])
    );
    assert!(has_event(&report["runs"][0], "still runs as a primary"));
    assert!(has_event(
        &report["runs"][0],
        &format!("docker exec {} kill -CONT", lab.leader)
    ));
    assert!(
        has_event(
            &report["runs"][0],
            &format!("leader lock: {}", other(&lab.leader))
        ),
        "{:?}",
        events(&report["runs"][0])
    );
    // Counted exactly: writes the old leader acknowledged after etcd's key left it.
    let after = run["old_leader_writes_after_lock_lost"].as_u64().unwrap();
    assert!(after > 0, "{run}");
    // Checked against the new primary's table: some of them are not there. (That they are no
    // more than were counted, and no more than all the lost writes, holds by construction:
    // both are subsets. Not checks.)
    let lost_of_them = run["old_leader_writes_lost"].as_u64().unwrap();
    let lost = run["probe"]["lost_writes"]["missing"]
        .as_array()
        .unwrap()
        .len() as u64;
    eprintln!(
        "after the lock moved: {after} acknowledged by the old leader, {lost_of_them} of them lost; {lost} lost in all"
    );
    assert!(lost_of_them > 0, "{run}");
    // Both detectors fire and the scenario fails on them.
    let brains: u64 = run["probe"]["split_brain"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["writes_after_takeover"].as_u64().unwrap())
        .sum();
    assert!(brains > 0, "{}", run["probe"]["split_brain"]);
    let failed: Vec<&str> = run["grades"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|g| g["pass"] == Value::Bool(false))
        .map(|g| g["name"].as_str().unwrap())
        .collect();
    assert!(
        failed.contains(&"old leader's writes after it lost the lock"),
        "{failed:?}"
    );
    assert_eq!(code, 3);
    all_back();
}
