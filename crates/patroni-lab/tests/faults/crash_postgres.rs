//! `crash-postgres`: SIGKILL to the postmaster only; Patroni notices and recovers.

use super::*;

#[test]
#[ignore = "long fault run: `make test-long` runs it (CI runs both)"]
fn crash_postgres_kills_only_the_postmaster_and_patroni_recovers() {
    let lab = LabTest::begin("crash_postgres_kills_only_the_postmaster_and_patroni_recovers");
    let (code, report, _) = scenario("crash-postgres", &[]);
    assert_eq!(code, 0);
    grades_all_pass(&report);
    // Patroni itself stayed up: its own REST API said what happened to PostgreSQL (it may be
    // slower than the sampler's 300 ms time-out while it queries a dead postmaster).
    // Seen as a leader state other than "running" (Patroni says crashed, stopped, starting or,
    // when it polls a dead postmaster, unknown — which one depends on when the poll lands).
    let leader_prefix = format!("{}: ", lab.leader);
    assert!(
        events(&report["runs"][0])
            .iter()
            .any(|e| e.starts_with(&leader_prefix) && !e.ends_with("(running)") && e.contains('(')),
        "the crash is seen: {:?}",
        events(&report["runs"][0])
    );
    // The crash is proven (the postmaster gone, then Patroni noticing it) before the cluster
    // counts as whole again: "whole after 0.2 s" read before Patroni had looked is impossible.
    let gone = event_at(&report["runs"][0], "'s postmaster (pid");
    let noticed = event_at(
        &report["runs"][0],
        &format!("Patroni on {} noticed", lab.leader),
    );
    assert!(
        !has_event(&report["runs"][0], "noticed: state unknown")
            && !events(&report["runs"][0])
                .iter()
                .any(|e| e.ends_with("started again at ")),
        "{:?}",
        events(&report["runs"][0])
    );
    let whole = event_at(&report["runs"][0], "cluster whole again");
    eprintln!("postmaster gone at {gone} us, noticed at {noticed} us, whole at {whole} us");
    assert!(
        gone <= noticed && noticed < whole,
        "{:?}",
        events(&report["runs"][0])
    );
    let injected = event_at(&report["runs"][0], "inject crash-postgres");
    let whole_ms = report["runs"][0]["whole_again_ms"].as_f64().unwrap();
    assert!(whole_ms * 1000.0 >= (noticed - injected) as f64);
    all_back();
}
