//! `delay-link`: where the kernel has no netem qdisc (this machine's), refused before anything
//! is done, in one line naming the host and the qdisc; where it has one, proven by the timed
//! connects. Nothing is left either way: no veth pair of the check's, the default root qdisc.

use super::*;

/// Whether this kernel makes a netem qdisc, asked as the fault asks (a veth pair of the test's
/// own in `node`, removed at once).
fn kernel_has_netem(node: &str) -> bool {
    let out = run(
        "docker",
        &[
            "exec",
            "--user",
            "root",
            node,
            "sh",
            "-c",
            "ip link add plab-t0 type veth peer name plab-t1 && { tc qdisc add dev plab-t0 root netem delay 1ms; rc=$?; ip link del plab-t0; exit $rc; }",
        ],
    );
    out.status.success()
}

#[test]
fn delay_link_is_refused_in_one_line_without_netem_and_proven_with_it() {
    let lab = LabTest::begin("delay_link_is_refused_in_one_line_without_netem_and_proven_with_it");
    let leader = lab.leader.clone();
    if kernel_has_netem(&leader) {
        let (code, report, stderr) = scenario("delay-link:leader-etcd:200ms", &["--secs", "5"]);
        let run = &report["runs"][0];
        assert!(
            find_event(run, "the 200 ms delay").is_some(),
            "no proof: {:?}",
            events(run)
        );
        assert_eq!(code, 0, "{stderr}");
    } else {
        let started = Instant::now();
        let out = Command::new(bin())
            .args(["scenario", "run", "delay-link", "--secs", "5"])
            .current_dir(repo_root())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        // Before anything slow: no probe, no wait for a whole cluster, no fault.
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
        let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(
            lines[0]
                .starts_with("patroni-lab scenario: error: delay-link needs the netem qdisc, and ")
                && lines[0].contains("Specified qdisc kind is unknown")
                && lines[0].ends_with("; nothing was done"),
            "{stderr}"
        );
    }
    for node in NODES {
        let links = run_ok("docker", &["exec", node, "cat", "/proc/net/dev"]);
        assert!(
            !links.contains("plab-q"),
            "{node}: the check's veth pair left: {links}"
        );
        let root = run_ok(
            "docker",
            &[
                "exec", "--user", "root", node, "tc", "qdisc", "show", "dev", "eth0",
            ],
        );
        assert!(root.starts_with("qdisc noqueue 0: root"), "{node}: {root}");
    }
    all_back();
}
