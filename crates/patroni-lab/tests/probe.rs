//! The probe against the real lab: errors land in the right class, a restart gives one window
//! of about the right length, the lost-write check lists exactly the rows removed behind its
//! back, and a run through `make switchover` reports the window and no lost writes.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use patroni_lab_testkit::*;
use serde_json::Value;

/// The probe binary, started in the background with a JSON report to read at the end.
struct ProbeRun {
    child: Child,
    json: std::path::PathBuf,
    history: std::path::PathBuf,
    args: Vec<String>,
}

impl ProbeRun {
    fn start(name: &str, args: &[&str]) -> Self {
        let json =
            std::env::temp_dir().join(format!("plab-probe-{name}-{}.json", std::process::id()));
        let _ = std::fs::remove_file(&json);
        let history = json.with_extension("jsonl");
        let mut all: Vec<String> = vec![
            "probe".into(),
            "--quiet".into(),
            "--json".into(),
            json.display().to_string(),
            "--history".into(),
            history.display().to_string(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        let child = Command::new(bin())
            .args(&all)
            .env("PGPASSWORD", password())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the probe");
        Self {
            child,
            json,
            history,
            args: all,
        }
    }

    /// Waits until the probe has recorded `n` successful attempts (instead of a fixed sleep).
    fn wait_acknowledged(&self, n: usize) {
        wait_for(
            &format!("{n} acknowledged attempts"),
            Duration::from_secs(30),
            || {
                let text = std::fs::read_to_string(&self.history).map_err(|e| e.to_string())?;
                let ok = text
                    .lines()
                    .filter(|l| l.contains(r#""outcome":"ok""#))
                    .count();
                if ok >= n {
                    Ok(())
                } else {
                    Err(format!("{ok} so far"))
                }
            },
        );
    }

    /// Waits for the probe to end; returns its exit code and the parsed report.
    fn finish(self) -> (i32, Value) {
        let (code, report, _) = self.finish_with_history();
        (code, report)
    }

    /// As [`finish`], with the history's text (read before it is removed).
    fn finish_with_history(self) -> (i32, Value, String) {
        let out = self.child.wait_with_output().expect("wait for the probe");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!(
            "probe {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            self.args
        );
        let text = std::fs::read_to_string(&self.json)
            .unwrap_or_else(|e| panic!("no JSON report ({e}); stderr: {stderr}"));
        let history = std::fs::read_to_string(&self.history).unwrap_or_default();
        let _ = std::fs::remove_file(&self.json);
        let _ = std::fs::remove_file(&self.history);
        (
            out.status.code().unwrap_or(-1),
            serde_json::from_str(&text).unwrap(),
            history,
        )
    }
}

fn class_count(report: &Value, class: &str) -> u64 {
    report["errors_by_class"][class].as_u64().unwrap_or(0)
}

fn url(port: u16, app: &str) -> String {
    format!("postgres://postgres@127.0.0.1:{port}/postgres?application_name={app}")
}

fn direct_port(node: &str) -> u16 {
    pg_port(node)
}

#[test]
fn terminated_session_is_57p01_and_the_probe_goes_on() {
    let lab = LabTest::begin("terminated_session_is_57p01_and_the_probe_goes_on");
    let port = direct_port(&lab.leader);
    let run = ProbeRun::start(
        "terminate",
        &[
            "--url",
            &url(port, "probe_terminate_test"),
            "--mode",
            "persistent",
            "-c",
            "1",
            "--rate",
            "4",
            "-T",
            "5s",
        ],
    );
    // The run's sessions are named '<application_name> <run id>'.
    let sessions = "FROM pg_stat_activity WHERE application_name LIKE 'probe_terminate_test r%'";
    wait_for("the probe's session", Duration::from_secs(10), || {
        let rows = sql(port, "postgres", &format!("SELECT count(*) {sessions}"))?;
        if rows[0][0].as_deref() == Some("1") {
            Ok(())
        } else {
            Err(format!("{rows:?}"))
        }
    });
    run.wait_acknowledged(2);
    let killed = sql(
        port,
        "postgres",
        &format!("SELECT count(pg_terminate_backend(pid)) {sessions}"),
    )
    .unwrap();
    assert_eq!(
        killed[0][0].as_deref(),
        Some("1"),
        "one probe session to terminate"
    );
    let (code, report) = run.finish();
    assert_eq!(code, 0);
    assert!(
        class_count(&report, "57P01_admin_shutdown") >= 1,
        "errors: {}",
        report["errors_by_class"]
    );
    // At 4 writes a second the session sits idle >99 % of the time: the 57P01 came while
    // nothing was sent, so the write that found the session dead never reached a server.
    assert_eq!(report["totals"]["in_doubt"], 0, "{}", report["totals"]);
    assert!(report["totals"]["failed"].as_u64().unwrap() >= 1);
    assert_eq!(report["windows"].as_array().unwrap().len(), 1);
    assert!(
        report["totals"]["connects"].as_u64().unwrap() >= 2,
        "it reconnected"
    );
    let last_second = report["timeline"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert!(
        last_second["ok"].as_u64().unwrap() > 0,
        "writes went on after the kill"
    );
}

#[test]
fn write_to_a_replica_is_25006_and_failed_not_in_doubt() {
    let lab = LabTest::begin("write_to_a_replica_is_25006_and_failed_not_in_doubt");
    let port = direct_port(other(&lab.leader));
    // The table must exist (made on the leader, replicated) for the write to reach the
    // read-only check rather than fail on a missing table.
    let ddl = patroni_lab_probe::sql::table_ddl("probe_writes");
    sql(direct_port(&lab.leader), "postgres", &ddl).unwrap();
    wait_for("probe_writes replicated", Duration::from_secs(10), || {
        let rows = sql(
            port,
            "postgres",
            "SELECT to_regclass('probe_writes') IS NOT NULL",
        )?;
        if rows[0][0].as_deref() == Some("t") {
            Ok(())
        } else {
            Err("not yet".into())
        }
    });
    let run = ProbeRun::start(
        "readonly",
        &[
            "--url",
            &url(port, "probe_readonly_test"),
            "-c",
            "2",
            "-T",
            "1500ms",
            "--verify-timeout",
            "1s",
        ],
    );
    let (code, report) = run.finish();
    assert_eq!(code, 4, "no primary to check on: exit 4 (not checked)");
    let attempts = report["totals"]["attempts"].as_u64().unwrap();
    assert!(attempts > 0);
    assert_eq!(class_count(&report, "25006_read_only"), attempts);
    assert_eq!(
        report["totals"]["read_only_refusals"].as_u64().unwrap(),
        attempts
    );
    assert_eq!(report["totals"]["failed"].as_u64().unwrap(), attempts);
    assert_eq!(report["totals"]["in_doubt"].as_u64().unwrap(), 0);
    // The check reads from a primary only: on a replica it says why it could not.
    assert_eq!(report["lost_writes"]["checked"], Value::Bool(false));
    assert!(
        report["lost_writes"]["error"]
            .as_str()
            .unwrap()
            .contains("not a primary")
    );
}

#[test]
fn pgbouncer_restart_gives_one_window_of_about_its_length() {
    let _lab = LabTest::begin("pgbouncer_restart_gives_one_window_of_about_its_length");
    let run = ProbeRun::start(
        "restart",
        &[
            "--url",
            &url(PGBOUNCER_PORT, "probe_restart_test"),
            "-c",
            "2",
            "--rate",
            "100",
            "-T",
            "25s",
        ],
    );
    // 30, not more: a debug-build probe in the tools container acknowledged ~10 writes/s, so
    // waiting for 100 left the restart at the very end of a 12 s run (seen: window open at the end).
    run.wait_acknowledged(30);
    // PgBouncer is certainly down from the moment `stop` returns until `start` is issued, and
    // certainly up again once a write through it succeeds: the window must lie in between.
    let stop_issued = Instant::now();
    let stopped = Stopped::stop("pgbouncer");
    let stop_returned = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let start_issued = Instant::now();
    stopped.start();
    let (_, _) = wait_for("a write through 6432", Duration::from_secs(30), || {
        write_through(PGBOUNCER_PORT)
    });
    let surely_down = (start_issued - stop_returned).as_secs_f64() * 1000.0;
    let at_most_down = stop_issued.elapsed().as_secs_f64() * 1000.0;
    let (code, report) = run.finish();
    assert_eq!(code, 0);
    let windows = report["windows"].as_array().unwrap();
    assert_eq!(windows.len(), 1, "one window: {windows:?}");
    let window_ms = windows[0]["duration_ms"].as_f64().unwrap();
    eprintln!(
        "PgBouncer surely down {surely_down:.0} ms, at most {at_most_down:.0} ms; the probe's window {window_ms:.0} ms"
    );
    assert!(
        window_ms >= surely_down && window_ms <= at_most_down + 500.0,
        "window {window_ms:.0} ms outside [{surely_down:.0}, {at_most_down:.0} + 500] ms"
    );
    let refused = class_count(&report, "connect_refused") + class_count(&report, "connection_lost");
    assert!(refused > 0, "errors: {}", report["errors_by_class"]);
    assert_eq!(report["lost_writes"]["checked"], Value::Bool(true));
    assert_eq!(
        report["lost_writes"]["missing"].as_array().unwrap().len(),
        0
    );
}

#[test]
fn lost_write_check_lists_exactly_the_rows_removed() {
    let _lab = LabTest::begin("lost_write_check_lists_exactly_the_rows_removed");
    let table = format!("probe_loss_test_{}", std::process::id());
    let run = ProbeRun::start(
        "loss",
        &[
            "--url",
            &url(CLIENT_PORT, "probe_loss_test"),
            "-c",
            "2",
            "--rate",
            "40",
            "-T",
            "5s",
            "--table",
            &table,
            "--max-lost",
            "0",
        ],
    );
    let removed = [3u64, 5, 7];
    wait_for(
        "client 0's seq 7 committed",
        Duration::from_secs(10),
        || {
            let rows = sql(
                CLIENT_PORT,
                "postgres",
                &format!("SELECT count(*) FROM {table} WHERE client_id = 0 AND seq IN (3, 5, 7)"),
            )?;
            if rows[0][0].as_deref() == Some("3") {
                Ok(())
            } else {
                Err(format!("{rows:?}"))
            }
        },
    );
    let deleted = sql(
        CLIENT_PORT,
        "postgres",
        &format!("DELETE FROM {table} WHERE client_id = 0 AND seq IN (3, 5, 7) RETURNING seq"),
    )
    .unwrap();
    assert_eq!(deleted.len(), 3);
    let (code, report) = run.finish();
    let _ = sql(
        CLIENT_PORT,
        "postgres",
        &format!("DROP TABLE IF EXISTS {table}"),
    );
    assert_eq!(code, 3, "--max-lost 0 with lost writes exits 3");
    let missing: Vec<(u64, u64)> = report["lost_writes"]["missing"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| (m["client"].as_u64().unwrap(), m["seq"].as_u64().unwrap()))
        .collect();
    assert_eq!(missing, removed.iter().map(|s| (0, *s)).collect::<Vec<_>>());
    assert!(
        report["exceeded"][0]
            .as_str()
            .unwrap()
            .contains("lost writes")
    );
}

/// The longest window a switchover may show here. Measured on this lab (2 cores): 1.5 to
/// 1.7 s through 5432 (2.2 to 2.6 s with `server_login_retry = 1`); with the seed's PgBouncer
/// `server_login_retry = 15` it is ~15 s, so a regression to that fails this bound.
const SWITCHOVER_WINDOW_MAX_MS: f64 = 6_000.0;
/// The least a switchover makes clients wait (window or stall): Patroni's part alone took
/// 1.42-1.55 s here (10 runs, 2026-11-29), so half of it.
const SWITCHOVER_WAIT_MIN_MS: f64 = 700.0;
/// How far the server-side gap (consecutive commit times) may lie from the client-side stall
/// on a switchover. Measured on this lab over 5 switchovers: -41 to +75 ms (PATRONI.md, "Two
/// clocks").
const SERVER_CLIENT_GAP_AGREEMENT_MS: f64 = 250.0;
/// HAProxy's check interval under the default profile (`profiles/default.ini`).
const HAPROXY_CHECK_INTER_MS: f64 = 1_000.0;

#[test]
fn probe_through_make_switchover_reports_the_window_and_no_lost_writes() {
    let lab = LabTest::begin("probe_through_make_switchover_reports_the_window_and_no_lost_writes");
    let run = ProbeRun::start(
        "switchover",
        &[
            "--url",
            &url(CLIENT_PORT, "probe_switchover_test"),
            "-c",
            "4",
            "-T",
            "30s",
            "--max-lost",
            "0",
        ],
    );
    // Writes before the switchover, then room for it: the probe here is a debug build, whose
    // SCRAM key derivation per connection holds it to ~15 transactions/s (measured), so 200
    // acknowledged writes before a 15 s end left no time for the switchover to show.
    run.wait_acknowledged(100);
    run_ok("make", &["--no-print-directory", "switchover"]);
    wait_leader_is(other(&lab.leader), Duration::from_secs(30));
    let (code, report) = run.finish();
    assert_eq!(code, 0, "exceeded: {}", report["exceeded"]);
    // One window for one switchover, or none: with PgBouncer's server_login_retry of 0.1 s
    // the clients it held can all get through once the new primary is named (2 of 10
    // switchovers here, 2026-11-29), and then the wait shows only as a stall, checked below.
    // A second, short one only where HAProxy had no line up: its check marks the old leader's
    // line down (fall 2) and cuts its sessions (`on-marked-down shutdown-sessions`) before the
    // new leader's line passes its next check (rise 1, inter 1 s): seen once here (157 ms,
    // 2026-12-04: "postgres_primary has no server available", then `<NOSRV>` refusals), as
    // connection_lost or a refused connect, after the first window and shorter than a check
    // interval.
    let windows = report["windows"].as_array().unwrap();
    assert!(
        windows.len() <= 2,
        "one window for one switchover, or two with HAProxy's: {windows:?}"
    );
    for w in windows {
        assert_eq!(w["open_at_end"], Value::Bool(false));
    }
    if let [first, second] = windows.as_slice() {
        let classes = second["classes"].as_object().unwrap();
        assert!(
            second["start_us"].as_u64() > first["end_us"].as_u64()
                && second["duration_ms"].as_f64().unwrap() < HAPROXY_CHECK_INTER_MS
                && classes
                    .keys()
                    .all(|c| c == "connection_lost" || c == "connect_refused"),
            "a second window that is not HAProxy's gap: {windows:?}"
        );
    }
    let longest = report["longest_window_ms"].as_f64().unwrap();
    let stall = report["stalls"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["duration_ms"].as_f64().unwrap())
        .fold(0.0, f64::max);
    let server_gap = report["lost_writes"]["server_gap"]["duration_ms"]
        .as_f64()
        .expect("a server-side gap");
    eprintln!(
        "switchover window {longest:.0} ms, client stall {stall:.0} ms, server commit gap {server_gap:.0} ms, cut-over gap {} ms",
        report["cutovers"][0]["gap_ms"]
    );
    assert!(
        longest < SWITCHOVER_WINDOW_MAX_MS,
        "window {longest:.0} ms (bound {SWITCHOVER_WINDOW_MAX_MS} ms)"
    );
    // The switchover was seen: clients waited through it, failing or held.
    assert!(
        longest.max(stall) >= SWITCHOVER_WAIT_MIN_MS,
        "window {longest:.0} ms, stall {stall:.0} ms: no switchover seen"
    );
    assert!(
        (server_gap - stall).abs() <= SERVER_CLIENT_GAP_AGREEMENT_MS,
        "server gap {server_gap:.0} ms vs client stall {stall:.0} ms"
    );
    let cutovers = report["cutovers"].as_array().unwrap();
    assert_eq!(
        cutovers.len(),
        1,
        "writes moved from one server to one other: {cutovers:?}"
    );
    assert_ne!(
        cutovers[0]["from"]["timeline"],
        cutovers[0]["to"]["timeline"]
    );
    let lost = &report["lost_writes"];
    assert_eq!(lost["checked"], Value::Bool(true));
    assert_eq!(lost["missing"].as_array().unwrap().len(), 0);
    // Checked on the new primary, on its new timeline.
    assert_eq!(
        lost["checked_on"]["timeline"],
        cutovers[0]["to"]["timeline"]
    );
    assert_eq!(report["split_brain"].as_array().unwrap().len(), 0);
}

/// Holds an ACCESS EXCLUSIVE lock on `table` from a session of its own for `hold`.
fn hold_table_lock(port: u16, table: &str, hold: Duration) -> std::thread::JoinHandle<()> {
    let sql_text = format!(
        "BEGIN; LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({}); COMMIT",
        hold.as_secs_f64()
    );
    std::thread::spawn(move || {
        sql(port, "postgres", &sql_text).unwrap();
    })
}

#[test]
fn in_doubt_writes_are_resolved_after_the_dust_settles() {
    let lab = LabTest::begin("in_doubt_writes_are_resolved_after_the_dust_settles");
    let port = direct_port(&lab.leader);
    let table = format!("probe_doubt_test_{}", std::process::id());
    sql(port, "postgres", &patroni_lab_probe::sql::table_ddl(&table)).unwrap();
    let run = ProbeRun::start(
        "doubt",
        &[
            "--url",
            &url(CLIENT_PORT, "probe_doubt_test"),
            // One client: every write given up on keeps a PgBouncer server connection busy
            // behind the lock; four clients of the optimised probe gave up on 24 in 4 s,
            // PgBouncer's whole pool (20 + 5 reserve), and the final check's own connection
            // then waited for the lock like them (seen once: nothing left to end when it got in).
            "-c",
            "1",
            "-T",
            "4s",
            "--statement-timeout",
            "500ms",
            "--table",
            &table,
        ],
    );
    run.wait_acknowledged(20);
    // The review's case: a lock taken during the run and held well past its end, so that
    // writes the probe gave up on (in doubt) still wait on the server when the run ends.
    let locker = hold_table_lock(port, &table, Duration::from_secs(8));
    let (code, report) = run.finish();
    locker.join().unwrap();
    let lost = &report["lost_writes"];
    let count = |k: &str| lost[k].as_u64().unwrap();
    let run_id = report["run_id"].as_str().unwrap();
    let rows = sql(
        port,
        "postgres",
        &format!("SELECT count(*) FROM {table} WHERE run_id = '{run_id}'"),
    )
    .unwrap();
    let _ = sql(port, "postgres", &format!("DROP TABLE IF EXISTS {table}"));
    let rows: u64 = rows[0][0].as_deref().unwrap().parse().unwrap();
    assert_eq!(code, 0, "{lost}");
    assert_eq!(lost["checked"], Value::Bool(true), "{lost}");
    assert!(
        count("in_doubt") >= 1,
        "the lock made writes in doubt: {lost}"
    );
    assert_eq!(lost["settle"]["settled"], Value::Bool(true), "{lost}");
    assert!(
        lost["settle"]["terminated"].as_u64().unwrap() >= 1,
        "writes still waiting at the end were ended: {lost}"
    );
    // Long after the lock is gone, the table holds exactly what the report said committed.
    let reported = count("acknowledged") - lost["missing"].as_array().unwrap().len() as u64
        + count("in_doubt_found")
        + count("unexpected_rows");
    assert_eq!(rows, reported, "rows in the table vs the report: {lost}");
}

#[test]
fn sigterm_to_the_probe_as_pid_1_ends_the_run_and_keeps_the_report() {
    let _lab = LabTest::begin("sigterm_to_the_probe_as_pid_1_ends_the_run_and_keeps_the_report");
    let name = format!("patroni-lab-probe-sigterm-{}", std::process::id());
    let json = format!("sigterm-{}.json", std::process::id());
    let out_dir = repo_root().join("probe-out");
    let report_path = out_dir.join(&json);
    let _ = std::fs::remove_file(&report_path);
    let started = Instant::now();
    let mut child = Command::new(repo_root().join("scripts/probe.sh"))
        .args([
            "--quiet", "-c", "2", "--rate", "50", "-T", "120s", "--json", &json,
        ])
        .env("PROBE_CONTAINER", &name)
        .current_dir(repo_root())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start scripts/probe.sh");
    wait_for("the probe container", Duration::from_secs(30), || {
        let out = run("docker", &["top", &name]);
        if out.status.success() {
            Ok(())
        } else {
            Err("not yet".to_string())
        }
    });
    // The run is under way once its sessions show up on the server.
    wait_for("the probe's sessions", Duration::from_secs(30), || {
        let rows = sql(
            CLIENT_PORT,
            "postgres",
            "SELECT count(*) FROM probe_writes WHERE server_time > now() - interval '1 second'",
        )?;
        match rows[0][0].as_deref() {
            Some(n) if n != "0" => Ok(()),
            other => Err(format!("{other:?} recent writes")),
        }
    });
    let term_sent = Instant::now();
    run_ok("docker", &["kill", "--signal", "TERM", &name]);
    let status = wait_for(
        "the probe to end after SIGTERM",
        Duration::from_secs(30),
        || {
            child
                .try_wait()
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "still running".to_string())
        },
    )
    .0;
    let ended_after = term_sent.elapsed();
    let out = child.wait_with_output().unwrap();
    eprintln!(
        "ended {ended_after:?} after SIGTERM ({:?} into a 120 s run); stderr:\n{}",
        started.elapsed(),
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = run("docker", &["rm", "-f", &name]);
    // Cut short of its 120 s: it reports, and says INTERRUPTED (6), never a pass.
    assert_eq!(status.code(), Some(6));
    let text = std::fs::read_to_string(&report_path).expect("the JSON report was written");
    let _ = std::fs::remove_file(&report_path);
    let report: Value = serde_json::from_str(&text).unwrap();
    assert!(report["duration_ms"].as_f64().unwrap() < 60_000.0);
    assert_eq!(report["lost_writes"]["checked"], Value::Bool(true));
}

#[test]
fn verify_timeout_holds_inside_a_blocked_query_and_exits_4() {
    let lab = LabTest::begin("verify_timeout_holds_inside_a_blocked_query_and_exits_4");
    let port = direct_port(&lab.leader);
    let table = format!("probe_deadline_test_{}", std::process::id());
    sql(port, "postgres", &patroni_lab_probe::sql::table_ddl(&table)).unwrap();
    let run = ProbeRun::start(
        "deadline",
        &[
            "--url",
            &url(CLIENT_PORT, "probe_deadline_test"),
            "-c",
            "2",
            "-T",
            "2s",
            "--statement-timeout",
            "300ms",
            "--verify-timeout",
            "1s",
            "--table",
            &table,
        ],
    );
    run.wait_acknowledged(10);
    // The lock outlives the run by far: the check's read blocks on it.
    let locker = hold_table_lock(port, &table, Duration::from_secs(7));
    let started = Instant::now();
    let (code, report) = run.finish();
    let took = started.elapsed();
    locker.join().unwrap();
    let _ = sql(port, "postgres", &format!("DROP TABLE IF EXISTS {table}"));
    // Before the fix the blocked read ran until the lock went (~7 s).
    assert!(
        took < Duration::from_secs(5),
        "run (≤2 s) + check (1 s) took {took:?}"
    );
    assert_eq!(code, 4, "not checked: exit 4");
    let lost = &report["lost_writes"];
    assert_eq!(lost["checked"], Value::Bool(false), "{lost}");
    assert!(
        lost["error"].as_str().unwrap().contains("time limit"),
        "{lost}"
    );
}

#[test]
fn lost_write_check_confirms_the_leader_lock_holder_when_given_the_rest_apis() {
    let lab =
        LabTest::begin("lost_write_check_confirms_the_leader_lock_holder_when_given_the_rest_apis");
    let apis = format!(
        "http://127.0.0.1:{},http://127.0.0.1:{}",
        api_port("patroni1"),
        api_port("patroni2")
    );
    // One second of one client through 5432; the check is given `apis`.
    let run_with_apis = |tag: &str, apis: &str, extra: &[&str]| {
        let url = url(CLIENT_PORT, "probe_holder_test");
        let mut args = vec!["--url", &url, "-c", "1", "-T", "1s", "--patroni", apis];
        args.extend_from_slice(extra);
        ProbeRun::start(tag, &args).finish()
    };
    let (code, report) = run_with_apis("holder", &apis, &[]);
    assert_eq!(code, 0);
    assert_eq!(
        report["lost_writes"]["leader_confirmed"],
        lab.leader.as_str()
    );
    // Only the replica's API given: the holder's own API cannot confirm the node read, so the
    // check cannot be sure and says so (exit 4).
    let replica_api = format!("http://127.0.0.1:{}", api_port(other(&lab.leader)));
    let (code, report) = run_with_apis("holder2", &replica_api, &["--verify-timeout", "2s"]);
    assert_eq!(code, 4);
    assert_eq!(report["lost_writes"]["checked"], Value::Bool(false));
    let error = report["lost_writes"]["error"].as_str().unwrap();
    assert!(error.contains("leader-lock holder"), "{error}");
}

#[test]
fn a_wrong_password_is_one_line_exit_1_before_any_load() {
    let _lab = LabTest::begin("a_wrong_password_is_one_line_exit_1_before_any_load");
    for port in ["5432", "6432", "15432"] {
        let out = Command::new(bin())
            .args([
                "probe",
                "--quiet",
                "-T",
                "5s",
                "--url",
                &format!("postgres://postgres@127.0.0.1:{port}/postgres"),
            ])
            .env("PGPASSWORD", format!("{}-not", password()))
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{port}: {stderr}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{port}: {stderr}");
        assert!(
            lines[0].contains("authentication failed")
                && lines[0].contains("Are host, port, user and password right?"),
            "{port}: {stderr}"
        );
    }
}

#[test]
fn the_runs_clock_starts_after_its_setup_so_wall_and_run_times_agree() {
    let _lab = LabTest::begin("the_runs_clock_starts_after_its_setup_so_wall_and_run_times_agree");
    // A known delay in the probe's setup: PgBouncer paused, so its first query waits 2 s.
    sql(PGBOUNCER_PORT, "pgbouncer", "PAUSE postgres").expect("PAUSE");
    let resume = Resume;
    let run = ProbeRun::start(
        "clock",
        &[
            "--url",
            &url(PGBOUNCER_PORT, "probe_clock_test"),
            "--mode",
            "persistent",
            "-c",
            "1",
            "--rate",
            "20",
            "-T",
            "3s",
        ],
    );
    std::thread::sleep(Duration::from_secs(2));
    drop(resume);
    let (code, report, history) = run.finish_with_history();
    assert_eq!(code, 0);
    assert!(!history.is_empty(), "no history");
    let started = report["started_unix_us"].as_i64().unwrap();
    let run_id = report["run_id"].as_str().unwrap();
    // Each write's wall time as the client stamped it (client_time) against the run's clock.
    let rows = sql(
        CLIENT_PORT,
        "postgres",
        &format!(
            "SELECT client_id, seq, (extract(epoch FROM client_time) * 1e6)::bigint \
             FROM probe_writes WHERE run_id = '{run_id}' ORDER BY seq LIMIT 10"
        ),
    )
    .unwrap();
    assert!(!rows.is_empty(), "no writes for run {run_id}");
    let attempts: Vec<Value> = history
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let mut compared = 0;
    for r in rows {
        let seq: u64 = r[1].as_deref().unwrap().parse().unwrap();
        let wall: i64 = r[2].as_deref().unwrap().parse().unwrap();
        let a = attempts
            .iter()
            .find(|a| a["kind"] == "write" && a["seq"].as_u64() == Some(seq))
            .unwrap_or_else(|| panic!("write {seq} not in the history"));
        if a["connected"] == Value::Bool(true) {
            // Its stamp comes after the login, which its start includes.
            continue;
        }
        let on_run_clock = started + a["start_us"].as_i64().unwrap();
        let off_ms = (wall - on_run_clock) as f64 / 1000.0;
        eprintln!("write {seq}: client stamp - run clock = {off_ms:.1} ms");
        // Before the fix the run's clock started before the 2 s setup: ~2000 ms off.
        assert!(off_ms.abs() < 50.0, "write {seq} is {off_ms:.1} ms off");
        compared += 1;
    }
    assert!(compared >= 5, "only {compared} writes compared");
}

/// RESUMEs PgBouncer when dropped (also when the test fails).
struct Resume;
impl Drop for Resume {
    fn drop(&mut self) {
        let _ = sql(PGBOUNCER_PORT, "pgbouncer", "RESUME postgres");
    }
}

/// The reader side of a probe run through 5433 (after each write through 5432).
fn readers_of(report: &Value) -> &Value {
    let r = &report["readers"];
    assert!(r.is_object(), "no reader side: {report}");
    r
}

/// With replay running, readers on the replica see their own writes nearly always, and data
/// a few ms old at most; no read goes backwards.
#[test]
fn readers_on_a_streaming_replica_are_fresh_and_monotonic() {
    let _lab = LabTest::begin("readers_on_a_streaming_replica_are_fresh_and_monotonic");
    let run = ProbeRun::start(
        "readers_steady",
        &[
            "--url",
            &url(CLIENT_PORT, "probe_readers_steady"),
            "--reader-url",
            &url(READER_PORT, "probe_readers_steady_reader"),
            "-c",
            "2",
            "-T",
            "5s",
        ],
    );
    let (code, report) = run.finish();
    assert_eq!(code, 0, "{report}");
    let r = readers_of(&report);
    eprintln!("readers: {r}");
    assert_eq!(r["monotonic_violations"], 0, "{r}");
    assert_eq!(r["failed"], 0, "{r}");
    assert_eq!(r["answered_by_primary"], 0, "{r}");
    let ok = r["ok"].as_u64().unwrap() as f64;
    let missing = r["own_write_missing"].as_u64().unwrap() as f64;
    assert!(
        missing <= ok * READER_MISS_MAX_SHARE,
        "{missing} of {ok} missed"
    );
    let p99 = r["staleness"]["p99_ms"].as_f64().unwrap();
    assert!(p99 <= READER_P99_MAX_MS, "staleness p99 {p99} ms");
}

/// A streaming replica on this host: the share of reads that miss the write acknowledged just
/// before, and the staleness p99. Measured 0-2 of 436-478 reads (≤ 0.5 %) and 0 ms in 4 runs,
/// one run above 1 % right after a release build (2026-11-29: each read opens a new connection
/// to 5433 first, which mostly outlasts the replay); bounded at 5 % and 50 ms, so a reader
/// routed to a node that lags fails this while CI's load does not.
const READER_MISS_MAX_SHARE: f64 = 0.05;
const READER_P99_MAX_MS: f64 = 50.0;

/// The replica's replay stopped by hand for 4 s (SIGSTOP to its startup process, as the
/// `lag-replica` fault does; SIGCONT on every exit of the test): every read the replica
/// answered in that span misses the write its client had just had acknowledged, and the
/// report counts the misses exactly as the history shows them, read by read.
#[test]
fn read_your_writes_misses_are_counted_exactly_while_the_replica_does_not_replay() {
    let lab = LabTest::begin(
        "read_your_writes_misses_are_counted_exactly_while_the_replica_does_not_replay",
    );
    let replica = other(&lab.leader);
    let run = ProbeRun::start(
        "readers_ryw",
        &[
            "--url",
            &url(CLIENT_PORT, "probe_readers_ryw"),
            "--reader-url",
            &url(READER_PORT, "probe_readers_ryw_reader"),
            "-c",
            "2",
            "-T",
            "9s",
        ],
    );
    run.wait_acknowledged(50);
    let stopped = ReplayStopped::on(replica);
    let stop_unix = patroni_lab_common::unix_us() as i64;
    std::thread::sleep(Duration::from_secs(4));
    let cont_unix = patroni_lab_common::unix_us() as i64;
    drop(stopped);
    let (code, report, history) = run.finish_with_history();
    assert_eq!(code, 0, "{report}");
    let start = start_of(&report);
    // Reads that began 200 ms after the stop (a write acknowledged before it and read right
    // after is not in the span) and ended before the replay went on.
    let (from, to) = (stop_unix - start + 200_000, cont_unix - start);
    let reads: Vec<Value> = history
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|a| a["kind"] == "replica_read" && a["outcome"] == "ok")
        .collect();
    let missed = |a: &Value| a["seen"].as_u64().unwrap_or(0) < a["seq"].as_u64().unwrap();
    let during: Vec<&Value> = reads
        .iter()
        .filter(|a| a["in_recovery"] == true)
        .filter(|a| a["start_us"].as_i64().unwrap() >= from && a["end_us"].as_i64().unwrap() <= to)
        .collect();
    assert!(
        during.len() >= 20,
        "{} replica reads in the stop",
        during.len()
    );
    assert_eq!(during.iter().filter(|a| missed(a)).count(), during.len());
    let r = readers_of(&report);
    eprintln!("readers: {r}");
    assert_eq!(
        r["own_write_missing"].as_u64().unwrap(),
        reads.iter().filter(|a| missed(a)).count() as u64,
        "{r}"
    );
    // Away from the stop (before it, and 1 s after the replay went on), as a streaming
    // replica: nearly every read sees its write. Around its edges a read may or may not.
    let far: Vec<&Value> = reads
        .iter()
        .filter(|a| {
            let start = a["start_us"].as_i64().unwrap();
            start < stop_unix - start_of(&report) - 100_000 || start > to + 1_000_000
        })
        .collect();
    let missed_far = far.iter().filter(|a| missed(a)).count();
    assert!(
        missed_far as f64 <= far.len() as f64 * READER_MISS_MAX_SHARE + 3.0,
        "{missed_far} of {} missed away from the stop",
        far.len()
    );
    // The stalest read was about as old as the stop (to 0.3 s: the first write it missed
    // came within one write's time of the stop).
    let max = r["staleness"]["max_ms"].as_f64().unwrap();
    assert!((3_500.0..4_500.0).contains(&max), "staleness max {max} ms");
}

fn start_of(report: &Value) -> i64 {
    report["started_unix_us"].as_i64().unwrap()
}
