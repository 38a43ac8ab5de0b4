//! `pgbouncer-restart` and `haproxy-restart`: short windows, nothing left.

use super::*;

#[test]
#[ignore = "long fault run: `make test-long` runs it (CI runs both)"]
fn pgbouncer_and_haproxy_restarts_are_short_windows() {
    let _lab = LabTest::begin("pgbouncer_and_haproxy_restarts_are_short_windows");
    for name in ["pgbouncer-restart", "haproxy-restart"] {
        let (code, report, _) = scenario(name, &[]);
        assert_eq!(code, 0, "{name}");
        grades_all_pass(&report);
        let service = name.trim_end_matches("-restart");
        assert!(
            has_event(&report["runs"][0], &format!("{service} restarted")),
            "{name}"
        );
        all_back();
    }
}
