//! The scenario runner against the real lab, for every fault alike: a run reads Patroni's
//! settings once; a failing expectation exits 3 and still undoes the fault; SIGINT mid-fault or
//! while waiting for a whole cluster is INTERRUPTED and undone; a matrix interrupted mid-fault
//! saves no cell; where in the leader's loop a fault lands (the jitter, a chosen lease time
//! left); a cluster given by URLs; refusals before anything is done. Each fault's own test is
//! in `tests/faults/`.

use std::process::Command;
use std::time::{Duration, Instant};

use patroni_lab_testkit::*;
use serde_json::Value;

/// A run reads Patroni's settings once: the plan is made under one `GET /config`, and the run
/// itself (its whole checks before and after, the jitter, the phases' loop) reads none more.
/// The doctor's reads, had it been asked, are counted apart.
#[test]
fn a_switchover_run_reads_the_clusters_settings_once() {
    use patroni_lab_cluster::cluster::Live;
    use patroni_lab_cluster::lab::{ConfigReader, Lab, config_reads};
    use patroni_lab_faults::faults::Fault;
    use patroni_lab_scenario::plan;
    let lab_test = LabTest::begin("a_switchover_run_reads_the_clusters_settings_once");
    let lab = Lab::from_env();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // Every read, whoever it is counted for: a passing run asks the doctor nothing.
    let all = || {
        [
            ConfigReader::Run,
            ConfigReader::Doctor,
            ConfigReader::Profile,
        ]
        .map(config_reads)
        .iter()
        .sum::<u64>()
    };
    let before = all();
    let report = runtime.block_on(async {
        let live = Live::read(&lab, ConfigReader::Run).await.unwrap();
        let fault = Fault::from_spec("switchover").unwrap();
        let expectations = plan::live_expectations(&live, fault, &Default::default()).unwrap();
        let probe = plan::probe_for(&lab, |_| Ok(())).unwrap();
        let plan = plan::plan_for(
            fault,
            expectations,
            probe,
            plan::default_duration(plan::INJECT_AT),
            patroni_lab_scenario::runner::Jitter::LoopWait,
            plan::default_duration(plan::TAIL),
            live,
        )
        .unwrap();
        let (_stop, stop_rx) = tokio::sync::watch::channel(false);
        plan::run_set(&lab, &plan, 1, stop_rx, |_| {})
            .await
            .unwrap()
    });
    let report = serde_json::to_value(&report).unwrap();
    grades_all_pass(&report);
    assert_eq!(report["runs"][0]["leader_after"], other(&lab_test.leader));
    assert_eq!(
        all() - before,
        1,
        "GET /config reads during the run (counted for the run: {})",
        config_reads(ConfigReader::Run)
    );
    all_back();
}

#[test]
fn a_failing_expectation_exits_3_and_still_undoes_the_fault() {
    let lab = LabTest::begin("a_failing_expectation_exits_3_and_still_undoes_the_fault");
    // A window of at most 1 ms cannot hold through a frozen leader.
    let (code, report, _) = scenario("freeze-leader", &["--secs", "3", "--max-window", "1ms"]);
    assert_eq!(code, 3);
    assert_eq!(report["passed"], Value::Bool(false));
    assert!(has_event(
        &report["runs"][0],
        &format!("docker pause {}", lab.leader)
    ));
    assert!(has_event(
        &report["runs"][0],
        &format!("docker unpause {}", lab.leader)
    ));
    all_back();
}

/// Sends SIGINT to `child` and waits up to `limit` for it to end; its exit and stderr.
fn sigint_and_wait(
    child: &mut std::process::Child,
    limit: Duration,
) -> (std::process::ExitStatus, String) {
    // The shell's kill: the tools image has no kill binary (procps).
    run_ok("sh", &["-c", &format!("kill -INT {}", child.id())]);
    let out = wait_for("the runner to end after SIGINT", limit, || {
        child
            .try_wait()
            .map_err(|e| e.to_string())?
            .ok_or_else(|| "running".to_string())
    })
    .0;
    let mut stderr = String::new();
    use std::io::Read as _;
    let _ = child.stderr.take().unwrap().read_to_string(&mut stderr);
    (out, stderr)
}

/// Starts `patroni-lab <args>` with a 40 s freeze of the leader, sends SIGINT two seconds into
/// the freeze, and returns the exit code and stderr.
fn interrupt_a_freeze(leader: &str, args: &[&str]) -> (i32, String) {
    let mut child = spawn_runner(args);
    wait_for(
        "the leader frozen by the fault",
        Duration::from_secs(90),
        || {
            let status = run_ok("docker", &["inspect", "-f", "{{.State.Status}}", leader]);
            if status.trim() == "paused" {
                Ok(())
            } else {
                Err(status)
            }
        },
    );
    std::thread::sleep(Duration::from_secs(2));
    let interrupted = Instant::now();
    let (out, stderr) = sigint_and_wait(&mut child, Duration::from_secs(90));
    eprintln!(
        "runner ended {:?} after SIGINT with {out:?}\nstderr:\n{stderr}",
        interrupted.elapsed()
    );
    // Interrupted long before the 40 s freeze was over.
    assert!(interrupted.elapsed() < Duration::from_secs(40));
    (out.code().unwrap_or(-1), stderr)
}

/// A member's Patroni stopped (SIGSTOP) until this is dropped, a test's panic included: on the
/// leader, the cluster is not whole while it holds (its REST API does not answer); held for
/// seconds, well inside the lease, so nobody takes the lock.
struct PatroniStopped {
    node: String,
    pid: String,
}

impl PatroniStopped {
    fn on(node: &str) -> Self {
        let pid = patroni_lab_cluster::lab::patroni_pid(
            patroni_lab_cluster::lab::container(node).as_ref(),
        )
        .expect("patroni's pid");
        run_ok("docker", &["exec", node, "kill", "-STOP", &pid]);
        Self {
            node: node.to_string(),
            pid,
        }
    }
}

impl Drop for PatroniStopped {
    fn drop(&mut self) {
        let _ = Command::new("docker")
            .args(["exec", &self.node, "kill", "-CONT", &self.pid])
            .status();
    }
}

/// A signal while the first run still waits for a whole cluster (the leader's Patroni stopped
/// for the 4 s before the signal and the second or two the runner takes to end, its lease 20 s
/// or more) ends the set as INTERRUPTED (exit 6) with the runs asked for and none done, not as
/// an error (exit 1).
#[test]
fn a_signal_while_waiting_for_a_whole_cluster_is_interrupted_not_an_error() {
    let lab =
        LabTest::begin("a_signal_while_waiting_for_a_whole_cluster_is_interrupted_not_an_error");
    let json = std::env::temp_dir().join(format!("plab-wait-sigint-{}.json", std::process::id()));
    let stopped = PatroniStopped::on(&lab.leader);
    let json_arg = json.display().to_string();
    let mut child = spawn_runner(&[
        "scenario",
        "run",
        "switchover",
        "--runs",
        "2",
        "--json",
        &json_arg,
    ]);
    std::thread::sleep(Duration::from_secs(4));
    let (out, stderr) = sigint_and_wait(&mut child, Duration::from_secs(30));
    drop(stopped);
    assert_eq!(out.code(), Some(6), "{stderr}");
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("the report")).unwrap();
    let _ = std::fs::remove_file(&json);
    assert_eq!(report["verdict"], "INTERRUPTED", "{report}");
    assert_eq!(report["runs_requested"], 2);
    assert_eq!(report["runs"].as_array().unwrap().len(), 0);
    all_back();
}

#[test]
fn sigint_two_seconds_into_a_freeze_is_interrupted_not_a_pass_and_undone() {
    let lab =
        LabTest::begin("sigint_two_seconds_into_a_freeze_is_interrupted_not_a_pass_and_undone");
    let json =
        std::env::temp_dir().join(format!("plab-scenario-sigint-{}.json", std::process::id()));
    let json_arg = json.display().to_string();
    let (code, _) = interrupt_a_freeze(
        &lab.leader,
        &[
            "scenario",
            "run",
            "freeze-leader",
            "--secs",
            "40",
            "--inject-at",
            "2s",
            "--inject-jitter",
            "0s",
            "--json",
            &json_arg,
        ],
    );
    let text = std::fs::read_to_string(&json).expect("the report was still written");
    let _ = std::fs::remove_file(&json);
    let report: Value = serde_json::from_str(&text).unwrap();
    // Its own exit code (6, README "Exit codes"), not 0 and not a failed expectation (3).
    assert_eq!(code, 6);
    assert_eq!(report["passed"], Value::Bool(false));
    assert_eq!(report["verdict"], "INTERRUPTED");
    assert_eq!(report["runs"][0]["interrupted"], Value::Bool(true));
    assert!(report["runs"][0]["grades"].as_array().unwrap().is_empty());
    assert!(
        has_event(
            &report["runs"][0],
            &format!("docker unpause {}", lab.leader)
        ),
        "{:?}",
        events(&report["runs"][0])
    );
    all_back();
}

#[test]
#[ignore = "long fault run: `make test-long` runs it (CI runs both)"]
fn a_matrix_interrupted_mid_fault_saves_no_cell_and_says_so() {
    let lab = LabTest::begin("a_matrix_interrupted_mid_fault_saves_no_cell_and_says_so");
    let out = std::env::temp_dir().join(format!("plab-matrix-sigint-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&out);
    let out_arg = out.display().to_string();
    let (code, stderr) = interrupt_a_freeze(
        &lab.leader,
        &[
            "matrix",
            "--profiles",
            "default",
            "--scenarios",
            "freeze-leader:40",
            "--runs",
            "1",
            "--steady",
            "0",
            "--out",
            &out_arg,
        ],
    );
    assert_eq!(code, 6, "{stderr}");
    assert!(stderr.contains("; not saved"), "{stderr}");
    let cells = out.join("cells");
    let saved: Vec<_> = walk(&cells);
    assert!(saved.is_empty(), "cells saved: {saved:?}");
    let _ = std::fs::remove_dir_all(&out);
    all_back();
}

/// Every file under `dir` (none when it does not exist).
fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            files.extend(walk(&p));
        } else {
            files.push(p);
        }
    }
    files
}

/// A cluster given by URLs uses only what it was given: with the lab's HAProxy stopped, a
/// switchover through PgBouncer's own port still runs and passes on what it measured, and the
/// report names HAProxy (and the rest it was not given) as not checked, never the lab's.
#[test]
fn a_cluster_given_by_urls_reads_none_of_the_labs_parts_it_was_not_given() {
    let lab =
        LabTest::begin("a_cluster_given_by_urls_reads_none_of_the_labs_parts_it_was_not_given");
    let haproxy = Stopped::stop("haproxy");
    let args: Vec<String> = as_remote()
        .into_iter()
        .take(4) // --patroni and --url: no --pgbouncer
        .collect();
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, report, stderr) = scenario("switchover", &refs);
    haproxy.start();
    assert_eq!(code, 0, "{stderr}");
    grades_all_pass(&report);
    assert_eq!(report["runs"][0]["leader_after"], other(&lab.leader));
    let not_checked: Vec<&str> = report["not_checked"]
        .as_array()
        .expect("not_checked")
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    for part in ["HAProxy", "PgBouncer", "PostgreSQL directly", "etcd"] {
        assert!(
            not_checked.iter().any(|n| n.contains(part)),
            "{part}: {not_checked:?}"
        );
    }
    // No sampler read the lab's HAProxy stats page.
    let sources: Vec<&str> = report["runs"][0]["sampling"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["source"].as_str().unwrap())
        .collect();
    assert!(
        !sources.iter().any(|s| s.contains("HAProxy")),
        "{sources:?}"
    );
    all_back();
}

#[test]
#[ignore = "long fault run: `make test-long` runs it (CI runs both)"]
fn a_fault_lands_at_a_random_point_of_the_leaders_loop() {
    let _lab = LabTest::begin("a_fault_lands_at_a_random_point_of_the_leaders_loop");
    // `loop`, the default: up to the cluster's loop_wait (10 s in the default profile), read live.
    let (code, report, stderr) = scenario(
        "restart-leader",
        &[
            "--inject-at",
            "1s",
            "--inject-jitter",
            "loop",
            "--runs",
            "2",
        ],
    );
    assert!(code == 0 || code == 3, "{stderr}");
    passed_but_for_async_loss(code, &report);
    let runs = report["runs"].as_array().unwrap();
    let mut injected = Vec::new();
    for run in runs {
        assert_eq!(run["jitter_up_to_ms"].as_f64(), Some(10_000.0), "{run}");
        let at = run["injected_after_ms"].as_f64().unwrap();
        assert!((1_000.0..11_000.0).contains(&at), "injected after {at} ms");
        // The inject step on the timeline is where the report says it was (probe's clock).
        let step = run["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| {
                e["what"]
                    .as_str()
                    .unwrap()
                    .starts_with("inject restart-leader (")
            })
            .unwrap_or_else(|| panic!("no inject step: {run}"));
        let step_ms = step["at_us"].as_f64().unwrap() / 1000.0;
        assert!(
            (step_ms - at).abs() < 500.0,
            "step at {step_ms} ms, report {at} ms"
        );
        injected.push(at);
    }
    // Random points: two runs landing on the same millisecond of a 10 s range would say the
    // jitter is not drawn (1 in 10,000 by chance).
    assert!(
        (injected[0] - injected[1]).abs() >= 1.0,
        "both runs injected after {injected:?} ms"
    );
    // Where each landed in the leader's loop, from etcd's own lease: somewhere in one loop
    // (renewed every loop_wait plus the loop's own work, measured well under 1 s here), the two
    // figures adding up to the granted TTL, to the precision stated.
    for run in runs {
        let lease = &run["lease_at_inject"];
        let (left, age) = (lease["remaining_ms"].as_f64(), lease["age_ms"].as_f64());
        let (Some(left), Some(age)) = (left, age) else {
            panic!("no lease phase recorded: {run}");
        };
        assert_eq!(lease["granted_s"].as_u64(), Some(30), "{lease}");
        // (age + left = the TTL holds by construction in lease.rs, so a bound on the age is
        // the same check as one on the time left: one of them.)
        let _ = age;
        assert!((19_000.0..=30_000.0).contains(&left), "{lease}");
        assert!(lease["precision_ms"].as_f64().unwrap() < 250.0, "{lease}");
    }
}

/// A kill placed at a chosen lease time left: the leader key expires that long after the kill
/// (read from etcd's key by the timeline's own sampler, not from the lease tracker that placed
/// it). A fault at a random point would land anywhere in 20–30 s.
#[test]
#[ignore = "long fault run: `make test-long` runs it (CI runs both)"]
fn a_kill_at_a_chosen_lease_time_left_loses_the_lock_that_much_later() {
    let _lab = LabTest::begin("a_kill_at_a_chosen_lease_time_left_loses_the_lock_that_much_later");
    let (code, report, stderr) = scenario(
        "kill-leader",
        &[
            "--inject-at",
            "1s",
            "--at-lease-remaining",
            "22s",
            "--runs",
            "2",
        ],
    );
    assert!(code == 0 || code == 3, "{stderr}");
    passed_but_for_async_loss(code, &report);
    for run in report["runs"].as_array().unwrap() {
        let left = run["lease_at_inject"]["remaining_ms"].as_f64().unwrap();
        assert!((21_750.0..=22_000.0).contains(&left), "{run}");
        let injected = event_at(run, "inject kill-leader (22.00 s of lease left, as asked");
        let lost = run["lock_lost_at_us"].as_i64().unwrap();
        // etcd revokes an expired lease on its next check (every 500 ms), and the key is sampled
        // every 100 ms: the key goes 22.0–22.7 s after the kill; ±1 s.
        let after = (lost - injected) as f64 / 1e6;
        assert!(
            (21.0..=23.0).contains(&after),
            "lock lost {after} s after the kill"
        );
        // (The key's expiry and the replica taking it can fall within one sample: "none" is
        // not always seen; the first change of holder is.)
    }
    all_back();
}

/// A lease time left the loop never passes through is bad input, said in one line before any
/// run (checked against the live ttl and loop_wait).
#[test]
fn a_lease_time_left_outside_the_loop_is_refused_in_one_line() {
    let _lab = LabTest::begin("a_lease_time_left_outside_the_loop_is_refused_in_one_line");
    let out = Command::new(bin())
        .args([
            "scenario",
            "run",
            "kill-leader",
            "--at-lease-remaining",
            "35s",
        ])
        .env("POSTGRES_PASSWORD", password())
        .output()
        .expect("run patroni-lab");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("21 to 29 s left"), "{stderr}");
}

/// etcd stopped when a run starts: the scenario runner and the soak each say so in one line,
/// at once (not after waiting for a whole cluster that cannot come), and exit 1; `make up`
/// starts etcd again and the lab is whole.
#[test]
fn a_run_with_etcd_stopped_is_refused_at_once_naming_it_and_make_up_mends_it() {
    let _lab =
        LabTest::begin("a_run_with_etcd_stopped_is_refused_at_once_naming_it_and_make_up_mends_it");
    let etcd = Stopped::stop("etcd");
    for (command, args) in [
        ("scenario", vec!["run", "switchover"]),
        ("soak", vec!["--events", "1", "--seed", "1"]),
    ] {
        let started = Instant::now();
        let out = Command::new(bin())
            .arg(command)
            .args(&args)
            .env("POSTGRES_PASSWORD", password())
            .current_dir(repo_root())
            .output()
            .expect("run patroni-lab");
        let took = started.elapsed();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{command}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{command}: {stderr}");
        assert!(
            stderr.contains("etcd is exited: `make up` starts the lab's containers again"),
            "{command}: {stderr}"
        );
        // Measured: well under a second; the wait for a whole cluster it replaces is 120 s.
        assert!(took < Duration::from_secs(10), "{command} took {took:?}");
    }
    let out = run("make", &["up"]);
    assert!(
        out.status.success(),
        "make up: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    etcd.start();
    healthy_cluster();
}

/// Maintenance mode on (Patroni fails nobody over) until dropped, a panic included.
struct Paused;

impl Paused {
    fn on() -> Self {
        patch_config(r#"{"pause": true}"#);
        Self
    }
}

impl Drop for Paused {
    fn drop(&mut self) {
        patch_config(r#"{"pause": false}"#);
    }
}

/// A proven fault after which nobody takes the lead (maintenance mode: Patroni fails nobody
/// over) is the availability failure a run measures: FAIL (exit 3) with a failed `failover`
/// grade and the window it left, not ERROR.
#[test]
#[ignore = "long fault run: `make test-long` runs it (CI runs both)"]
fn a_failover_that_never_comes_is_a_fail_not_an_error() {
    let _lab = LabTest::begin("a_failover_that_never_comes_is_a_fail_not_an_error");
    let paused = Paused::on();
    let (code, report, stderr) = scenario("kill-leader", &["--whole-within", "130s"]);
    drop(paused);
    healthy_cluster();
    let run = &report["runs"][0];
    assert_eq!(code, 3, "{stderr}");
    assert_eq!(report["verdict"], "FAIL", "{report}");
    assert!(run["fault_error"].is_null(), "{run}");
    let failover = run["grades"]
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["name"] == "failover")
        .unwrap_or_else(|| panic!("no failover grade: {run}"));
    assert_eq!(failover["pass"], false, "{failover}");
    // The window it caused is measured: at least the 120 s the fault waited for a leader.
    assert!(
        run["probe"]["longest_window_ms"].as_f64().unwrap() >= 100_000.0,
        "{}",
        run["probe"]["longest_window_ms"]
    );
}
