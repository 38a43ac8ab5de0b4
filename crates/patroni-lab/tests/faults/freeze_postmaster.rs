//! `freeze-postmaster`: SIGSTOP to the postmaster only, Patroni left running; nobody fails over (Patroni #1371).

use super::*;

/// The new fault written on the `Host` seam: the leader's postmaster stopped, its backends and
/// Patroni running. Proven (the postmaster in state T, Patroni still saying "primary,
/// running"), held, undone (SIGCONT); nobody fails over (Patroni #1371), nothing is lost.
#[test]
#[ignore = "long fault run: `make test-long` runs it (CI runs both)"]
fn freeze_postmaster_stops_only_the_postmaster_and_nobody_fails_over() {
    let lab = LabTest::begin("freeze_postmaster_stops_only_the_postmaster_and_nobody_fails_over");
    let (code, report, stderr) = scenario("freeze-postmaster:10", &[]);
    assert_eq!(code, 0, "{stderr}");
    grades_all_pass(&report);
    let run = &report["runs"][0];
    assert!(
        has_event(
            &report["runs"][0],
            &format!("{}'s postmaster (pid", lab.leader)
        ) && has_event(&report["runs"][0], "is T (stopped)"),
        "{:?}",
        events(&report["runs"][0])
    );
    assert!(
        has_event(
            &report["runs"][0],
            &format!(
                "proof: {}'s Patroni still says primary (running)",
                lab.leader
            )
        ),
        "{:?}",
        events(&report["runs"][0])
    );
    assert!(
        has_event(
            &report["runs"][0],
            &format!("docker exec {} kill -CONT", lab.leader)
        ),
        "{:?}",
        events(&report["runs"][0])
    );
    assert!(
        has_event(
            &report["runs"][0],
            &format!("proof: a new connection to {} is not answered", lab.leader)
        ),
        "{:?}",
        events(&report["runs"][0])
    );
    assert_eq!(run["leader_before"], run["leader_after"], "{run}");
    assert!(
        !has_event(&report["runs"][0], "leader lock: none"),
        "{:?}",
        events(&report["runs"][0])
    );
    eprintln!(
        "freeze-postmaster 10 s: longest window {} ms, failed {}, whole again after {} ms",
        run["probe"]["longest_window_ms"], run["probe"]["totals"]["failed"], run["whole_again_ms"]
    );
    all_back();
}
