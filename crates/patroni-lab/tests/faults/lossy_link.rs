//! `lossy-link`: a share of one of the leader's links' packets dropped (nftables' random number
//! in our own table), proven by the rule's counter of dropped packets, undone.

use super::*;

#[test]
fn lossy_link_drops_packets_of_its_link_and_is_undone() {
    let lab = LabTest::begin("lossy_link_drops_packets_of_its_link_and_is_undone");
    let (code, report, _) = scenario("lossy-link:leader-etcd:30%", &["--secs", "10"]);
    let run = &report["runs"][0];
    let leader = &lab.leader;
    // The link's far end is etcd's address.
    let etcd = container_ip("etcd");
    assert!(
        has_event(
            run,
            &format!("{leader}: 30 % of the leader-etcd link's packets dropped ({etcd})")
        ),
        "{:?}",
        events(run)
    );
    // The proof is the rule's own counter: packets of that link were dropped.
    proof_from(
        run,
        "packets of the link dropped by our rules meanwhile",
        leader,
    );
    // A lossy link to etcd may cost the lock (then asynchronous replication may lose writes):
    // what this tests is the fault, not Patroni's luck.
    passed_but_for_async_loss(code, &report);
    let tables = run_ok(
        "docker",
        &["exec", "--user", "root", leader, "nft", "list", "tables"],
    );
    assert!(!tables.contains("plab"), "filter left in place: {tables}");
    all_back();
}
