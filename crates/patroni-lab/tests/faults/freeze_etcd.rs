//! `freeze-etcd`: etcd paused (silent, not refusing); proven, undone, the cluster leads again.

use super::*;

/// A frozen etcd (paused: connections hang, unanswered) is proven as such — paused, and its
/// client port silent rather than refusing —, undone, and ridden out: the leader serves on
/// past retry_timeout, then demotes itself, and leads again once etcd answers (the default
/// 25 s freeze, graded against its bound).
#[test]
#[ignore = "long fault run: `make test-long` runs it (CI runs both)"]
fn freeze_etcd_is_proven_silent_undone_and_the_cluster_leads_again() {
    let lab = LabTest::begin("freeze_etcd_is_proven_silent_undone_and_the_cluster_leads_again");
    let (code, report, _) = scenario("freeze-etcd", &[]);
    assert_eq!(code, 0, "{:?}", events(&report["runs"][0]));
    grades_all_pass(&report);
    assert!(
        has_event(&report["runs"][0], "docker pause etcd"),
        "{:?}",
        events(&report["runs"][0])
    );
    assert!(
        has_event(
            &report["runs"][0],
            "proof: etcd's client port gave no answer to GET /version within 1 s"
        ),
        "{:?}",
        events(&report["runs"][0])
    );
    assert!(
        has_event(&report["runs"][0], "docker unpause etcd"),
        "{:?}",
        events(&report["runs"][0])
    );
    // The leader demoted itself while etcd was frozen, more than retry_timeout (10 s) after
    // the freeze, and led again after the thaw.
    let paused = event_at(&report["runs"][0], "docker pause etcd");
    let thawed = event_at(&report["runs"][0], "docker unpause etcd");
    let demoted = event_at(
        &report["runs"][0],
        &format!("{} PostgreSQL: in recovery", lab.leader),
    );
    assert!(
        demoted - paused > 10_000_000 && demoted < thawed,
        "demoted {} s after the freeze, thawed after {} s: {:?}",
        (demoted - paused) / 1_000_000,
        (thawed - paused) / 1_000_000,
        events(&report["runs"][0])
    );
    assert_eq!(report["runs"][0]["leader_after"], lab.leader);
    all_back();
}
