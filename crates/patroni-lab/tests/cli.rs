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

#[test]
fn probe_bad_settings_name_the_flag() {
    let (code, stderr) = probe(&["--clients", "0"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("--clients must be at least 1"), "{stderr}");
    let (code, stderr) = probe(&["-T", "5 days"]);
    assert_eq!(code, 2);
    assert!(stderr.contains("unknown unit"), "{stderr}");
}
