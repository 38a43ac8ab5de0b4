//! `oom-backend`: one busy backend SIGKILLed as the OOM killer does; every session reset, recovery in place.

use super::*;

/// A backend killed as the OOM killer does: proven by every session of the kill gone and the
/// postmaster recovering in place; nobody fails over and nothing acknowledged is lost.
#[test]
fn oom_backend_resets_every_session_and_the_leader_recovers_in_place() {
    let lab = LabTest::begin("oom_backend_resets_every_session_and_the_leader_recovers_in_place");
    let (code, report, stderr) = scenario("oom-backend", &[]);
    assert_eq!(code, 0, "{stderr}");
    grades_all_pass(&report);
    let run = &report["runs"][0];
    assert!(
        has_event(
            &report["runs"][0],
            &format!("SIGKILL to {}'s backend pid", lab.leader)
        ),
        "{:?}",
        events(&report["runs"][0])
    );
    assert!(
        has_event(&report["runs"][0], "recovered in place"),
        "{:?}",
        events(&report["runs"][0])
    );
    assert_eq!(run["leader_before"], run["leader_after"], "{run}");
    eprintln!(
        "oom-backend: longest window {} ms, in doubt {}, whole again after {} ms",
        run["probe"]["longest_window_ms"], run["probe"]["in_doubt"]["total"], run["whole_again_ms"]
    );
    all_back();
}
