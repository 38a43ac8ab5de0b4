//! `etcd-loss`: etcd stopped; the leader demotes, and leads again once etcd is back.

use super::*;

#[test]
#[ignore = "long fault run: `make test-long` runs it (CI runs both)"]
fn etcd_loss_is_undone_and_the_cluster_leads_again() {
    let _lab = LabTest::begin("etcd_loss_is_undone_and_the_cluster_leads_again");
    let (code, report, _) = scenario("etcd-loss", &["--secs", "5"]);
    assert_eq!(code, 0);
    grades_all_pass(&report);
    assert!(has_event(&report["runs"][0], "docker stop etcd"));
    assert!(has_event(&report["runs"][0], "docker start etcd"));
    assert!(
        has_event(&report["runs"][0], "leader lock: unknown"),
        "{:?}",
        events(&report["runs"][0])
    );
    all_back();
}
