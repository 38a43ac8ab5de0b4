//! `switchover-paused`: PgBouncer paused and HAProxy held through the switchover: no failed and no in-doubt writes; a runner killed mid-pause leaves PgBouncer to resume by itself (against the lab and against a cluster given by URLs).

use super::*;

/// PgBouncer's `paused` flag for database `postgres` (SHOW DATABASES), when it has the row.
fn pgbouncer_paused() -> Option<bool> {
    let rows = sql(PGBOUNCER_PORT, "pgbouncer", "SHOW DATABASES").ok()?;
    let header_paused = 15; // name, host, port, database, force_user, pool_size, ..., paused, disabled
    rows.iter()
        .find(|r| r[0].as_deref() == Some("postgres"))
        .and_then(|r| r.get(header_paused).cloned().flatten())
        .map(|v| v == "1")
}

/// Whether HAProxy's `hold` line is disabled (in maintenance), from its runtime API.
fn haproxy_hold_disabled() -> bool {
    let state = run_ok(
        "docker",
        &[
            "exec",
            "haproxy",
            "bash",
            "-c",
            "exec 3<>/dev/tcp/127.0.0.1/9999; echo 'show servers state postgres_primary' >&3; timeout 2 cat <&3",
        ],
    );
    // Columns: be_id be_name srv_id srv_name srv_addr srv_op_state srv_admin_state ...
    let line = state
        .lines()
        .find(|l| l.split_whitespace().nth(3) == Some("hold"))
        .unwrap_or_else(|| panic!("no hold line in: {state}"));
    let admin: u32 = line.split_whitespace().nth(6).unwrap().parse().unwrap();
    admin & 1 == 1
}

#[test]
fn paused_switchover_has_no_failed_and_no_in_doubt_writes_in_both_modes() {
    let _lab =
        LabTest::begin("paused_switchover_has_no_failed_and_no_in_doubt_writes_in_both_modes");
    for mode in ["per-tx", "persistent"] {
        let before = leader().unwrap();
        let (code, report, _) = scenario("switchover-paused", &["--mode", mode]);
        assert_eq!(code, 0, "{mode}");
        grades_all_pass(&report);
        let totals = &report["runs"][0]["probe"]["totals"];
        assert_eq!(totals["failed"], 0, "{mode}: {totals}");
        assert_eq!(totals["in_doubt"], 0, "{mode}: {totals}");
        assert_eq!(report["runs"][0]["leader_after"], other(&before), "{mode}");
        for step in [
            "PAUSE postgres done",
            "switchover done",
            "reloaded",
            "RESUME",
            "HAProxy hold line disabled",
        ] {
            assert!(
                has_event(&report["runs"][0], step),
                "{mode}: {step}: {:?}",
                events(&report["runs"][0])
            );
        }
        // PgBouncer resumes only once the new leader accepted a write on a direct connection,
        // and the hold line goes only once HAProxy marks the new leader UP (issue 14, item 5).
        let all = events(&report["runs"][0]);
        let index = |text: &str| {
            all.iter()
                .position(|e| e.contains(text))
                .unwrap_or_else(|| panic!("{mode}: no '{text}' in {all:?}"))
        };
        assert!(
            index("accepted a write") < index("RESUME postgres"),
            "{mode}: {all:?}"
        );
        assert!(
            index("HAProxy marks") < index("HAProxy hold line disabled"),
            "{mode}: {all:?}"
        );
        assert_eq!(pgbouncer_paused(), Some(false), "{mode}: resumed");
        assert!(haproxy_hold_disabled(), "{mode}: hold line off again");
        all_back();
    }
}

/// Starts a paused switchover (`extra`: more runner flags), waits until PgBouncer is paused and
/// SIGKILLs the runner, so that none of its guards runs: only the dead man's switches are left.
fn kill_runner_mid_pause(extra: &[String]) {
    let mut child = Command::new(bin())
        .args(["scenario", "run", "switchover-paused", "--inject-at", "2s"])
        .args(extra)
        .env("POSTGRES_PASSWORD", password())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Catch the pause (it lasts about as long as the switchover, ~2 s).
    wait_for(
        "PgBouncer paused by the runner",
        Duration::from_secs(60),
        || match pgbouncer_paused() {
            Some(true) => Ok(()),
            other => Err(format!("paused: {other:?}")),
        },
    );
    child.kill().unwrap();
    let _ = child.wait();
}

#[test]
#[ignore = "long fault run: `make test-long` runs it (CI runs both)"]
fn runner_killed_mid_pause_pgbouncer_resumes_by_itself() {
    let _lab = LabTest::begin("runner_killed_mid_pause_pgbouncer_resumes_by_itself");
    kill_runner_mid_pause(&[]);
    let killed = Instant::now();
    // The dead man's switches live in the containers: their flag files are there after the kill,
    // and each removes its own when it fires (then RESUMEs / disables the hold line). PgBouncer's
    // `postgres` row may be gone from SHOW DATABASES after the callback's RELOAD, so the flags,
    // not that row, say whether the switch fired.
    let flags = |container: &str| {
        run_ok(
            "docker",
            &[
                "exec",
                container,
                "sh",
                "-c",
                "ls /tmp | grep '^plab-' || true",
            ],
        )
    };
    assert!(
        !flags("pgbouncer").is_empty(),
        "the dead man's switch is armed"
    );
    // The switch is derived from the pause's own limits (PAUSE_DEAD_MAN): it fires then.
    let dead_man = patroni_lab_faults::faults::PAUSE_DEAD_MAN;
    let (_, took) = wait_for(
        "the dead man's switches to fire",
        dead_man + Duration::from_secs(15),
        || {
            let left = format!("{}{}", flags("pgbouncer"), flags("haproxy"));
            if left.trim().is_empty() {
                Ok(())
            } else {
                Err(left)
            }
        },
    );
    eprintln!("fired {:?} after the runner was killed", killed.elapsed());
    assert!(took <= dead_man + Duration::from_secs(5));
    wait_for("a write through 6432", Duration::from_secs(10), || {
        write_through(PGBOUNCER_PORT)
    });
    // Read after a client used database `postgres` (its entry exists): "not paused", not "unread".
    assert_eq!(pgbouncer_paused(), Some(false));
    wait_for("HAProxy hold line off", Duration::from_secs(10), || {
        if haproxy_hold_disabled() {
            Ok(())
        } else {
            Err("enabled".to_string())
        }
    });
    all_back();
}

#[test]
#[ignore = "long fault run: `make test-long` runs it (CI runs both)"]
fn paused_switchover_against_a_cluster_given_by_urls_has_no_errors() {
    let lab = LabTest::begin("paused_switchover_against_a_cluster_given_by_urls_has_no_errors");
    let args = as_remote();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, report, _) = scenario("switchover-paused", &refs);
    assert_eq!(code, 0);
    grades_all_pass(&report);
    let totals = &report["runs"][0]["probe"]["totals"];
    assert_eq!(
        (totals["failed"].as_u64(), totals["in_doubt"].as_u64()),
        (Some(0), Some(0)),
        "{totals}"
    );
    assert_eq!(report["runs"][0]["leader_after"], other(&lab.leader));
    assert!(has_event(&report["runs"][0], "RESUME postgres"));
    assert!(
        !has_event(&report["runs"][0], "HAProxy hold line"),
        "no HAProxy outside the lab"
    );
    assert_eq!(pgbouncer_paused(), Some(false));
    all_back();
}

#[test]
#[ignore = "long fault run: `make test-long` runs it (CI runs both)"]
fn runner_killed_mid_pause_against_urls_pgbouncer_resumes_by_itself() {
    let _lab = LabTest::begin("runner_killed_mid_pause_against_urls_pgbouncer_resumes_by_itself");
    kill_runner_mid_pause(&as_remote());
    // The dead man's switch here is a process of its own (patroni-lab scenario resume-after):
    // its flag file is there after the kill, and it removes it when it fires (then RESUMEs).
    let flags = || -> Vec<String> {
        std::fs::read_dir(std::env::temp_dir())
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with("plab-pause-"))
            .collect()
    };
    assert!(!flags().is_empty(), "the dead man's switch is armed");
    let dead_man = patroni_lab_faults::faults::PAUSE_DEAD_MAN;
    let (_, took) = wait_for(
        "the dead man's switch to fire",
        dead_man + Duration::from_secs(15),
        || {
            let left = flags();
            if left.is_empty() {
                Ok(())
            } else {
                Err(format!("{left:?}"))
            }
        },
    );
    assert!(took <= dead_man + Duration::from_secs(5));
    // And clients get through PgBouncer again.
    wait_for("a write through 6432", Duration::from_secs(10), || {
        write_through(PGBOUNCER_PORT)
    });
    // Read after a client used database `postgres` (its entry exists): "not paused", not "unread".
    assert_eq!(pgbouncer_paused(), Some(false));
    all_back();
}
