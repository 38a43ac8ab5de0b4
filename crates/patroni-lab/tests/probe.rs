//! The probe against the real lab: errors land in the right class, a restart gives one window
//! of about the right length, the lost-write check lists exactly the rows removed behind its
//! back, and a run through `make switchover` reports the window and no lost writes.

mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::*;

/// The probe binary, started in the background with a JSON report to read at the end.
struct ProbeRun {
    child: Child,
    json: std::path::PathBuf,
    args: Vec<String>,
}

impl ProbeRun {
    fn start(name: &str, args: &[&str]) -> Self {
        let json =
            std::env::temp_dir().join(format!("plab-probe-{name}-{}.json", std::process::id()));
        let _ = std::fs::remove_file(&json);
        let mut all: Vec<String> = vec![
            "probe".into(),
            "--quiet".into(),
            "--json".into(),
            json.display().to_string(),
        ];
        all.extend(args.iter().map(|a| a.to_string()));
        let child = Command::new(env!("CARGO_BIN_EXE_patroni-lab"))
            .args(&all)
            .env("PGPASSWORD", password())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the probe");
        Self {
            child,
            json,
            args: all,
        }
    }

    /// Waits for the probe to end; returns its exit code and the parsed report.
    fn finish(self) -> (i32, Value) {
        let out = self.child.wait_with_output().expect("wait for the probe");
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        eprintln!(
            "probe {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
            self.args
        );
        let text = std::fs::read_to_string(&self.json)
            .unwrap_or_else(|e| panic!("no JSON report ({e}); stderr: {stderr}"));
        let _ = std::fs::remove_file(&self.json);
        (
            out.status.code().unwrap_or(-1),
            serde_json::from_str(&text).unwrap(),
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
    if node == "patroni1" { 15432 } else { 15433 }
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
            "20",
            "-T",
            "4s",
        ],
    );
    std::thread::sleep(Duration::from_millis(1500));
    let killed = sql(port, "postgres", "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = 'probe_terminate_test'").unwrap();
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
    let ddl = patroni_lab_probe::workload::table_ddl("probe_writes");
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
    assert_eq!(code, 0);
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
            .contains("replica")
    );
}

#[test]
fn pgbouncer_restart_gives_one_window_of_about_its_length() {
    let _lab = LabTest::begin("pgbouncer_restart_gives_one_window_of_about_its_length");
    let run = ProbeRun::start(
        "restart",
        &[
            "--url",
            &url(6432, "probe_restart_test"),
            "-c",
            "2",
            "--rate",
            "100",
            "-T",
            "12s",
        ],
    );
    std::thread::sleep(Duration::from_secs(3));
    // PgBouncer is certainly down from the moment `stop` returns until `start` is issued, and
    // certainly up again once a write through it succeeds: the window must lie in between.
    let stop_issued = Instant::now();
    let stopped = Stopped::stop("pgbouncer");
    let stop_returned = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    let start_issued = Instant::now();
    stopped.start();
    let (_, _) = wait_for("a write through 6432", Duration::from_secs(30), || {
        write_through(6432)
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
            &url(5432, "probe_loss_test"),
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
                5432,
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
        5432,
        "postgres",
        &format!("DELETE FROM {table} WHERE client_id = 0 AND seq IN (3, 5, 7) RETURNING seq"),
    )
    .unwrap();
    assert_eq!(deleted.len(), 3);
    let (code, report) = run.finish();
    let _ = sql(5432, "postgres", &format!("DROP TABLE IF EXISTS {table}"));
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

#[test]
fn probe_through_make_switchover_reports_the_window_and_no_lost_writes() {
    let lab = LabTest::begin("probe_through_make_switchover_reports_the_window_and_no_lost_writes");
    let run = ProbeRun::start(
        "switchover",
        &[
            "--url",
            &url(5432, "probe_switchover_test"),
            "-c",
            "4",
            "-T",
            "20s",
            "--max-lost",
            "0",
            "--max-window",
            "30s",
        ],
    );
    std::thread::sleep(Duration::from_secs(5));
    run_ok("make", &["--no-print-directory", "switchover"]);
    wait_leader_is(other(&lab.leader), Duration::from_secs(30));
    let (code, report) = run.finish();
    assert_eq!(code, 0, "exceeded: {}", report["exceeded"]);
    let windows = report["windows"].as_array().unwrap();
    assert!(!windows.is_empty(), "a switchover is seen by clients");
    let longest = report["longest_window_ms"].as_f64().unwrap();
    eprintln!(
        "switchover window {longest:.0} ms, cut-over gap {} ms",
        report["cutovers"][0]["gap_ms"]
    );
    assert!(longest > 0.0 && longest < 30_000.0);
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
    assert_eq!(report["lost_writes"]["checked"], Value::Bool(true));
    assert_eq!(
        report["lost_writes"]["missing"].as_array().unwrap().len(),
        0
    );
    assert_eq!(report["split_brain"].as_array().unwrap().len(), 0);
}
