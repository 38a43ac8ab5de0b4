//! Tests of the `patroni-lab` binary itself (no lab needed): bad input gets one clear line
//! and a non-zero exit, never a panic.

use std::process::Command;

/// Runs `patroni-lab <subcommand> <args>`; returns the exit code and stderr. The callback's
/// REST API points at a closed port, so nothing here can reach a real cluster.
fn patroni_lab(subcommand: &str, args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_patroni-lab"))
        .arg(subcommand)
        .args(args)
        .env("PATRONI_LAB_API_URL", "http://127.0.0.1:1")
        .env(
            "PATRONI_LAB_PROFILES",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../../profiles"),
        )
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn callback(args: &[&str]) -> (i32, String) {
    patroni_lab("callback", args)
}

#[test]
fn unknown_role_is_one_clear_line() {
    let (code, stderr) = callback(&["on_role_change", "leader", "postgres-cluster"]);
    assert_eq!(code, 2);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("unknown role 'leader'"), "{stderr}");
    assert!(!stderr.contains("panicked"));
}

#[test]
fn missing_arguments_say_how_patroni_calls_it() {
    let (code, stderr) = callback(&["on_start"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("expected 3 arguments"), "{stderr}");
}

#[test]
fn replica_role_is_a_quiet_no_op() {
    let (code, stderr) = callback(&["on_role_change", "replica", "postgres-cluster"]);
    assert_eq!(code, 0);
    assert!(
        stderr.contains("role is replica, pgbouncer.ini left alone"),
        "{stderr}"
    );
}

#[test]
fn primary_without_a_reachable_api_fails_cleanly() {
    let (code, stderr) = callback(&["on_role_change", "primary", "postgres-cluster"]);
    assert_eq!(code, 1);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot reach the Patroni REST API"),
        "{stderr}"
    );
}

fn probe(args: &[&str]) -> (i32, String) {
    patroni_lab("probe", args)
}

#[test]
fn probe_against_nothing_is_one_clear_line() {
    let (code, stderr) = probe(&[
        "--url",
        "postgres://postgres:x@127.0.0.1:1/postgres",
        "-T",
        "1s",
        "-q",
    ]);
    assert_eq!(code, 1);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot reach 127.0.0.1:1/postgres"),
        "{stderr}"
    );
    assert!(stderr.contains("make up"), "{stderr}");
    assert!(!stderr.contains("x@"), "no password in messages: {stderr}");
}

/// Bad input: exit 2 and one line naming the flag and what is allowed, before connecting to
/// anything (the URL points at a closed port, so a connect would say "cannot reach").
#[test]
fn probe_bad_input_is_one_line_exit_2_before_connecting() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--clients", "0"],
            "--clients 0 is out of range: allowed 1 to 10000",
        ),
        (&["--clients", "-1"], "--clients -1 is out of range"),
        (&["--rate", "1e-19"], "--rate"),
        (&["--rate", "-3"], "--rate -3 is out of range"),
        (
            &["--read-ratio", "2"],
            "--read-ratio 2 is out of range: allowed 0 to 1",
        ),
        (
            &["--verify-timeout", "0"],
            "--verify-timeout 0ms is out of range",
        ),
        (&["--backoff-max", "0"], "--backoff-max 0ms is out of range"),
        (
            &["--json", "/nonexistent-dir/r.json"],
            "cannot write the JSON report to /nonexistent-dir/r.json",
        ),
        (
            &["--html", "/nonexistent-dir/r.html"],
            "cannot write the HTML report",
        ),
        (
            &["--history", "/nonexistent-dir/h.jsonl"],
            "cannot write the history to /nonexistent-dir",
        ),
        (
            &["--url", "postgres://x:y@z:notaport/db"],
            "--url cannot be read",
        ),
    ];
    for (args, wanted) in cases {
        let mut all = vec!["-q"];
        if !args.contains(&"--url") {
            all.extend(["--url", "postgres://postgres:x@127.0.0.1:1/postgres"]);
        }
        all.extend_from_slice(args);
        let (code, stderr) = probe(&all);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(wanted), "{args:?}: {stderr}");
        assert!(
            !stderr.contains("cannot reach"),
            "{args:?} connected first: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

/// Values clap refuses (durations it cannot read): exit 2, the flag named, never a panic.
#[test]
fn probe_unreadable_durations_exit_2_naming_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (&["-T", "5 days"], "unknown unit"),
        (&["-T", "-5s"], "negative"),
        (&["-T", "99999999999999999999s"], "too long"),
        (&["-T", "9999999999999999h"], "too long"),
        (&["-T", "0.0000000001"], "rounds to zero"),
        (&["--stall", "-1s"], "--stall"),
    ];
    for (args, wanted) in cases {
        let (code, stderr) = probe(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(wanted), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{args:?}: {stderr}");
    }
}

#[test]
fn probe_history_error_does_not_repeat_its_cause() {
    let (_, stderr) = probe(&["--history", "/proc/no-such-dir/h.jsonl", "-q"]);
    let cause = "No such file or directory";
    assert_eq!(stderr.matches(cause).count(), 1, "{stderr}");
}

#[test]
fn scenario_list_names_every_fault_with_its_expectations() {
    let out = Command::new(env!("CARGO_BIN_EXE_patroni-lab"))
        .args(["scenario", "list"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let out = String::from_utf8_lossy(&out.stdout);
    let faults = patroni_lab_faults::faults::all();
    for f in &faults {
        assert!(
            out.lines().any(|l| l.starts_with(f.name())),
            "{} missing: {out}",
            f.name()
        );
    }
    assert_eq!(out.matches("expects:").count(), faults.len(), "{out}");
    // The registry names the faults this lab has always had (a fault gone missing fails here).
    for name in [
        "switchover",
        "switchover-paused",
        "restart-leader",
        "stop-leader",
        "kill-leader",
        "crash-postgres",
        "freeze-leader",
        "partition-leader",
        "etcd-loss",
        "replica-loss",
        "pgbouncer-restart",
        "haproxy-restart",
    ] {
        assert!(faults.iter().any(|f| f.name() == name), "{name} missing");
    }
}

/// The current headline figures are said once: README, SCENARIOS.md and PROFILES.md each hold
/// the table `bench figures` makes from the dated measurement files, and no other.
#[test]
fn the_docs_hold_the_figures_the_dated_measurements_give() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO_BIN_EXE_patroni-lab"))
        .args(["bench", "figures"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let generated = String::from_utf8_lossy(&out.stdout);
    assert!(
        generated.lines().count() > 2,
        "no figure in docs/measurements: {generated}"
    );
    for doc in ["README.md", "SCENARIOS.md", "PROFILES.md"] {
        let text = std::fs::read_to_string(root.join(doc)).unwrap();
        let start = "<!-- generated: patroni-lab bench figures -->\n";
        assert_eq!(
            text.matches(start).count(),
            1,
            "{doc}: one copy of the figures"
        );
        let copy = text
            .split_once(start)
            .and_then(|(_, rest)| rest.split_once("<!-- end generated -->"))
            .map(|(table, _)| table)
            .unwrap_or_else(|| panic!("{doc} has the figures' markers"));
        assert_eq!(
            copy, generated,
            "{doc}'s figures drifted: paste `patroni-lab bench figures` between the markers"
        );
    }
}

/// Each fault declares what it can leave behind in the doctor's words: a code the doctor's
/// leftover check reports, and none twice; names are unique.
#[test]
fn every_faults_leftovers_are_ones_the_doctor_names() {
    use patroni_lab_cluster::findings::leftover;
    let faults = patroni_lab_faults::faults::all();
    let mut names = std::collections::BTreeSet::new();
    for f in &faults {
        let d = f.declared();
        assert!(names.insert(d.name), "{} twice in the registry", d.name);
        for l in d.leftovers {
            assert!(
                leftover::ALL.contains(l),
                "{}: {l} is not a leftover the doctor checks",
                d.name
            );
        }
        let unique: std::collections::BTreeSet<_> = d.leftovers.iter().collect();
        assert_eq!(
            unique.len(),
            d.leftovers.len(),
            "{}: a leftover twice",
            d.name
        );
    }
    // The faults that act on hosts can each leave something; a fault of the REST API alone
    // leaves nothing a host holds.
    for f in &faults {
        let d = f.declared();
        if d.needs == patroni_lab_faults::fault::Needs::Rest {
            assert!(d.leftovers.is_empty(), "{}", d.name);
        }
    }
}

#[test]
fn scenarios_md_holds_the_table_the_registry_generates() {
    let out = Command::new(env!("CARGO_BIN_EXE_patroni-lab"))
        .args(["scenario", "list", "--markdown"])
        .output()
        .unwrap();
    assert!(out.status.success());
    let generated = String::from_utf8_lossy(&out.stdout);
    let doc = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../SCENARIOS.md"),
    )
    .unwrap();
    let start = "<!-- generated: patroni-lab scenario list --markdown -->\n";
    let copy = doc
        .split_once(start)
        .and_then(|(_, rest)| rest.split_once("<!-- end generated -->"))
        .map(|(table, _)| table)
        .expect("SCENARIOS.md has the generated table's markers");
    assert_eq!(
        copy, generated,
        "SCENARIOS.md's table drifted: paste `patroni-lab scenario list --markdown` between the markers"
    );
    // The --secs help is generated too: every fault that lasts is named with its default.
    let help = Command::new(env!("CARGO_BIN_EXE_patroni-lab"))
        .args(["scenario", "run", "--help"])
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&help.stdout);
    for f in patroni_lab_faults::faults::all() {
        if let Some(secs) = f.secs() {
            assert!(
                help.contains(&format!("{} {secs} s", f.name())),
                "--secs help misses {}: {help}",
                f.name()
            );
        }
    }
}

#[test]
fn scenario_bad_input_is_one_line_exit_2_before_touching_the_lab() {
    let cases: &[(&[&str], &str)] = &[
        (&["run", "nope"], "unknown scenario 'nope'"),
        (
            &["run", "switchover", "--secs", "3"],
            "switchover does not last",
        ),
        (
            &["run", "freeze-leader", "--secs", "0"],
            "--secs 0: freeze-leader held 0 s is out of range",
        ),
        (
            &["run", "switchover,+1s,freeze-leader:0"],
            "freeze-leader held 0 s is out of range: allowed 1 to 600 s",
        ),
        (
            &["run", "switchover:30,+1s,stop-leader"],
            "switchover does not last; it takes no seconds",
        ),
        (
            &["run", "freeze-leader:20", "--secs", "5"],
            "the seconds are given twice",
        ),
        (
            &["run", "partition-leader:30%"],
            "partition-leader takes no '30%'; it takes from (all|etcd|replicas), way",
        ),
        (
            &["run", "switchover", "--runs", "0"],
            "--runs 0 is out of range",
        ),
        (
            &["run", "kill-leader", "--patroni", "http://127.0.0.1:1"],
            "kill-leader needs the lab's containers",
        ),
        (
            &["run", "switchover", "--mode", "x"],
            "invalid value 'x' for '--mode <MODE>' [possible values: per-tx, persistent]",
        ),
        (
            &[
                "run",
                "switchover-paused",
                "--patroni",
                "http://127.0.0.1:1",
            ],
            "needs --pgbouncer",
        ),
        (
            &["run", "switchover", "--json", "/nonexistent-dir/s.json"],
            "cannot write the JSON report",
        ),
        (
            &["run", "kill-leader", "--inject-jitter", "often"],
            "(or `loop`: up to the cluster's loop_wait)",
        ),
        (
            &["run", "kill-leader", "--inject-jitter", "10m"],
            "10m is more than 120 s",
        ),
        (
            &[
                "run",
                "kill-leader",
                "--inject-jitter",
                "0s",
                "--at-lease-remaining",
                "22s",
            ],
            "cannot be used with",
        ),
        (
            &["run", "kill-leader", "--at-lease-remaining", "soon"],
            "--at-lease-remaining",
        ),
    ];
    for (args, wanted) in cases {
        let (code, stderr) = patroni_lab("scenario", args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(stderr.contains(wanted), "{args:?}: {stderr}");
    }
}

#[test]
fn matrix_soak_and_profile_bad_input_is_one_line_exit_2_before_touching_the_lab() {
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "matrix",
            &["--profiles", "nope", "--scenarios", "switchover"],
            "unknown profile 'nope': known are default,",
        ),
        (
            "matrix",
            &["--profiles", "default", "--scenarios", "nope"],
            "unknown scenario 'nope'",
        ),
        (
            "matrix",
            &[
                "--profiles",
                "default",
                "--scenarios",
                "switchover",
                "--runs",
                "0",
            ],
            "--runs 0 is out of range",
        ),
        (
            "matrix",
            &["--profiles", "default", "--scenarios", "switchover:4"],
            "switchover:4: switchover does not last; it takes no seconds",
        ),
        (
            "matrix",
            &["--profiles", "default", "--scenarios", "freeze-leader:0"],
            "freeze-leader:0: freeze-leader held 0 s is out of range: allowed 1 to 600 s",
        ),
        ("profile", &["apply", "nope"], "unknown profile 'nope'"),
        ("profile", &["describe", "nope"], "unknown profile 'nope'"),
        ("soak", &["--events", "0"], "--events 0 is out of range"),
        ("soak", &["--profile", "nope"], "unknown profile 'nope'"),
        (
            "soak",
            &["--faults", "kill-leader,nope"],
            "unknown scenario 'nope'",
        ),
        (
            "soak",
            &["--faults", "haproxy-restart:5"],
            "haproxy-restart does not last",
        ),
        (
            "soak",
            &["--json", "/nonexistent-dir/s.json"],
            "cannot write the JSON report",
        ),
        (
            "soak",
            &["--seed", "many"],
            "invalid value 'many' for '--seed",
        ),
    ];
    for (sub, args, wanted) in cases {
        let (code, stderr) = patroni_lab(sub, args);
        assert_eq!(code, 2, "{sub} {args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{sub} {args:?}: {stderr}");
        assert!(stderr.contains(wanted), "{sub} {args:?}: {stderr}");
    }
}

/// `make <args> <vars>` in the repository root: exit code, stderr, stdout.
fn make(args: &[&str], vars: &[&str]) -> (i32, String, String) {
    let out = Command::new("make")
        .args(args)
        .args(vars)
        .current_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../.."))
        .output()
        .expect("run make");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

#[test]
fn make_up_refuses_default_passwords_beyond_loopback_in_one_line() {
    let check = |vars: &[&str]| {
        let (code, stderr, _) = make(&["-s", "check-safe"], vars);
        (code, stderr)
    };
    let changed = [
        "POSTGRES_PASSWORD=a1",
        "REPLICATION_PASSWORD=b2",
        "PATRONI_API_PASSWORD=c3",
    ];
    let (code, stderr) = check(&[
        "LAB_BIND_ADDRESS=0.0.0.0",
        "POSTGRES_PASSWORD=postgres",
        "REPLICATION_PASSWORD=replicator",
        "PATRONI_API_PASSWORD=patroni",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains(
            "refusing to publish the lab on LAB_BIND_ADDRESS=0.0.0.0 with the default POSTGRES_PASSWORD REPLICATION_PASSWORD PATRONI_API_PASSWORD: set new values in .env"
        ),
        "{stderr}"
    );
    // One default left is enough to refuse, and it is named.
    let (code, stderr) = check(&[
        "LAB_BIND_ADDRESS=192.0.2.7",
        changed[0],
        changed[1],
        "PATRONI_API_PASSWORD=patroni",
    ]);
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("with the default PATRONI_API_PASSWORD:"),
        "{stderr}"
    );
    // Loopback with the defaults, or any address with every password changed: allowed.
    for vars in [
        vec!["LAB_BIND_ADDRESS=127.0.0.1"],
        vec![
            "LAB_BIND_ADDRESS=0.0.0.0",
            changed[0],
            changed[1],
            changed[2],
        ],
    ] {
        let (code, stderr) = check(&vars);
        assert_eq!(code, 0, "{vars:?}: {stderr}");
    }
}

#[test]
fn make_up_without_docker_is_one_line_before_building_anything() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    // -n: make prints what it would run and runs nothing, but the check is in the recipe's
    // expansion, so it still stops make before the build's first line.
    let out = Command::new("make")
        .args(["-n", "up"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .current_dir(&root)
        .output()
        .expect("run make");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("Docker is not reachable (docker info failed): start the Docker daemon"),
        "{stderr}"
    );
    assert!(
        !stdout.contains("base-image"),
        "it would have built: {stdout}"
    );
}

#[test]
fn make_up_on_a_port_another_program_holds_is_one_line_naming_port_and_variable() {
    // -n: nothing runs; the check is in the recipe's expansion and stops make before the build.
    let make_up = |vars: &[&str]| make(&["-n", "up"], vars);
    // Other loopback addresses than the lab's, so a running lab does not matter.
    let cases = [
        ("127.0.0.3", 6432, "LAB_BIND_ADDRESS", "pgbouncer's"),
        ("127.0.0.5", 2379, "ETCD_BIND_ADDRESS", "etcd's"),
    ];
    for (address, port, variable, service) in cases {
        let held = std::net::TcpListener::bind((address, port))
            .unwrap_or_else(|e| panic!("hold {address}:{port} for the test: {e}"));
        let (code, stderr, stdout) = make_up(&[&format!("{variable}={address}")]);
        drop(held);
        assert_eq!(code, 2, "{stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains(&format!(
                "port {port} on {address} ({service}) is already in use by another program: stop it, or set {variable} in .env"
            )),
            "{stderr}"
        );
        assert!(
            !stdout.contains("base-image"),
            "it would have built: {stdout}"
        );
        // The same address with the port free: no complaint.
        let (code, stderr, _) = make_up(&[&format!("{variable}={address}")]);
        assert_eq!(code, 0, "{stderr}");
    }
}

/// A storm's schedule: pairs, the second 0–2 s after the first and marked as not waiting for a
/// whole cluster; the same seed gives the same storm; the plain schedule has no storm.
#[test]
fn a_storm_comes_in_pairs_without_a_wait_for_a_whole_cluster() {
    let dry = |storm: bool| {
        let mut args = vec!["soak", "--events", "6", "--seed", "3", "--dry-run"];
        if storm {
            args.push("--storm");
        }
        let out = Command::new(env!("CARGO_BIN_EXE_patroni-lab"))
            .args(&args)
            .env(
                "PATRONI_LAB_PROFILES",
                concat!(env!("CARGO_MANIFEST_DIR"), "/../../profiles"),
            )
            .output()
            .unwrap();
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let storm = dry(true);
    assert_eq!(storm, dry(true));
    let events: Vec<&str> = storm.lines().skip(1).collect();
    assert_eq!(events.len(), 6, "{storm}");
    for (i, line) in events.iter().enumerate() {
        assert_eq!(line.contains("(storm: no wait"), i % 2 == 1, "{line}");
        if i % 2 == 1 {
            let gap: f64 = line
                .split("after")
                .nth(1)
                .and_then(|r| r.trim().split(' ').next())
                .and_then(|g| g.parse().ok())
                .unwrap();
            assert!(gap < 2.0, "{line}");
        }
    }
    assert!(!dry(false).contains("storm"));
}
