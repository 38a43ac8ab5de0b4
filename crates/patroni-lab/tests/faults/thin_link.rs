//! `thin-link`: what the leader sends on one of its links capped (htb as its device's root
//! qdisc), proven by our class's own counters, undone — and a root qdisc of the user's that was
//! there before is there again, exactly as it was.

use super::*;

/// A root qdisc of "the user's" on a container's eth0, taken off again on any exit.
struct UsersQdisc {
    node: String,
}

impl UsersQdisc {
    fn on(node: &str) -> Self {
        run_ok(
            "docker",
            &[
                "exec", "--user", "root", node, "tc", "qdisc", "add", "dev", "eth0", "root",
                "handle", "8001:", "tbf", "rate", "900mbit", "burst", "64kb", "latency", "50ms",
            ],
        );
        Self {
            node: node.to_string(),
        }
    }
}

impl Drop for UsersQdisc {
    fn drop(&mut self) {
        let _ = run(
            "docker",
            &[
                "exec", "--user", "root", &self.node, "tc", "qdisc", "del", "dev", "eth0", "root",
            ],
        );
    }
}

fn root_qdisc(node: &str) -> String {
    run_ok(
        "docker",
        &[
            "exec", "--user", "root", node, "tc", "qdisc", "show", "dev", "eth0",
        ],
    )
    .lines()
    .find(|l| l.contains(" root "))
    .unwrap_or_default()
    .trim()
    .to_string()
}

#[test]
fn thin_link_caps_the_replicas_link_and_puts_the_users_root_qdisc_back() {
    let lab = LabTest::begin("thin_link_caps_the_replicas_link_and_puts_the_users_root_qdisc_back");
    let leader = &lab.leader;
    let users = UsersQdisc::on(leader);
    let before = root_qdisc(leader);
    assert!(before.starts_with("qdisc tbf 8001: root"), "{before}");
    let (code, report, stderr) = scenario("thin-link:leader-replica:1mbit", &["--secs", "10"]);
    let after = root_qdisc(leader);
    drop(users);
    let run = &report["runs"][0];
    let replica = container_ip(other(leader));
    assert!(
        has_event(
            run,
            &format!(
                "{leader}: what eth0 sends to the leader-replica link ({replica}) capped at 1mbit"
            )
        ),
        "{:?}",
        events(run)
    );
    // The proof is our class's own counters and its rate as the kernel reads it back.
    proof_from(
        run,
        "the link's packets pass our class, capped at 1Mbit as the kernel reads it back",
        leader,
    );
    // The replica's link is not the lock's: nobody fails over, no client fails for it.
    assert_eq!(code, 0, "{stderr}");
    grades_all_pass(&report);
    // The user's root qdisc is back, line for line.
    assert_eq!(after, before);
    all_back();
}
