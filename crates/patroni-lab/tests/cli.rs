//! Tests of the `patroni-lab` binary itself (no lab needed): bad input gets one clear line
//! and a non-zero exit, never a panic.

use std::process::Command;

fn callback(args: &[&str]) -> (i32, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_patroni-lab"))
        .arg("callback")
        .args(args)
        .env("PATRONI_LAB_API_URL", "http://127.0.0.1:1")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
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
