//! Tests against the running lab (`make up`): real etcd, Patroni, PostgreSQL, PgBouncer and
//! HAProxy in containers. Each test waits for a whole cluster first, undoes its faults with a
//! guard, and keeps the containers' logs in lab-logs/ when it fails.

use std::time::{Duration, Instant};

use patroni_lab_testkit::*;

/// How long writes through 5432 may fail after a planned switchover.
const SWITCHOVER_BOUND: Duration = Duration::from_secs(30);
/// After `docker compose stop` of the leader: Patroni releases the lock on a clean shutdown,
/// so this is far below ttl, but the stop itself may take a few seconds.
const STOP_LEADER_BOUND: Duration = Duration::from_secs(45);

#[test]
fn writes_through_haproxy_and_pgbouncer_reach_the_leader() {
    let lab = LabTest::begin("writes_through_haproxy_and_pgbouncer_reach_the_leader");
    let leader = lab.leader.clone();
    let leader_ip = container_ip(&leader);
    for port in [CLIENT_PORT, PGBOUNCER_PORT] {
        let w = write_through(port).unwrap_or_else(|e| panic!("write through {port}: {e}"));
        assert!(!w.in_recovery, "write through {port} reached a replica");
        assert_eq!(
            w.server_addr, leader_ip,
            "write through {port} not on the leader {leader}"
        );
    }
    // The direct ports reach each node: the leader takes writes, the replica is in recovery.
    let replica_port = pg_port(other(&leader));
    let rows = sql(replica_port, "postgres", "select pg_is_in_recovery()::text").unwrap();
    assert_eq!(rows[0][0].as_deref(), Some("true"));
}

#[test]
fn pgbouncer_admin_console_answers() {
    let lab = LabTest::begin("pgbouncer_admin_console_answers");
    let leader = lab.leader.clone();
    write_through(PGBOUNCER_PORT).unwrap();
    let pools = sql(PGBOUNCER_PORT, "pgbouncer", "SHOW POOLS").expect("SHOW POOLS");
    assert!(
        pools.iter().any(|r| r[0].as_deref() == Some("postgres")),
        "SHOW POOLS has no pool for database postgres: {pools:?}"
    );
    let databases = sql(PGBOUNCER_PORT, "pgbouncer", "SHOW DATABASES").expect("SHOW DATABASES");
    let postgres = databases
        .iter()
        .find(|r| r[0].as_deref() == Some("postgres"))
        .unwrap_or_else(|| panic!("SHOW DATABASES lacks postgres: {databases:?}"));
    assert_eq!(
        postgres[1].as_deref(),
        Some(leader.as_str()),
        "PgBouncer's host for postgres"
    );
    let stats = sql(PGBOUNCER_PORT, "pgbouncer", "SHOW STATS").expect("SHOW STATS");
    let postgres = stats
        .iter()
        .find(|r| r[0].as_deref() == Some("postgres"))
        .unwrap_or_else(|| panic!("SHOW STATS lacks postgres: {stats:?}"));
    let transactions: u64 = postgres[1].as_deref().unwrap_or("0").parse().unwrap();
    assert!(
        transactions >= 1,
        "the write above was counted: {postgres:?}"
    );
}

/// PgBouncer's host for database `postgres`, as it runs now (not as the file says).
fn pgbouncer_serves_from() -> String {
    // `* = host=...` databases exist once a client has used them (and again after a RELOAD).
    wait_for(
        "postgres in SHOW DATABASES",
        Duration::from_secs(10),
        || {
            let _ = sql(PGBOUNCER_PORT, "postgres", "SELECT 1");
            let databases = sql(PGBOUNCER_PORT, "pgbouncer", "SHOW DATABASES")?;
            databases
                .iter()
                .find(|r| r[0].as_deref() == Some("postgres"))
                .and_then(|r| r[1].clone())
                .ok_or_else(|| format!("SHOW DATABASES lacks postgres: {databases:?}"))
        },
    )
    .0
}

#[test]
fn callback_reloads_a_running_pgbouncer_onto_the_leader() {
    let lab = LabTest::begin("callback_reloads_a_running_pgbouncer_onto_the_leader");
    let (leader, replica) = (lab.leader.clone(), other(&lab.leader));
    // PgBouncer really serving from the replica: the file repointed by hand and reloaded.
    let _restore = RepointedByHand::to(&leader, replica);
    assert_eq!(pgbouncer_serves_from(), replica);
    let (ok, stderr) = run_callback(&leader, "primary");
    assert!(ok, "{stderr}");
    assert!(stderr.contains("RELOAD sent"), "{stderr}");
    // No manual reload: only the callback's RELOAD can have changed what PgBouncer serves.
    assert_eq!(pgbouncer_serves_from(), leader);
    assert_eq!(pgbouncer_targets(), vec![leader.clone()]);
}

#[test]
fn make_switchover_moves_the_leader_and_pgbouncer_follows() {
    let lab = LabTest::begin("make_switchover_moves_the_leader_and_pgbouncer_follows");
    let (old, new) = (lab.leader.as_str(), other(&lab.leader));
    // `make switchover` returns once the cluster is whole (the old leader streams from the
    // new one) and says after how long; the first call may build patroni-lab first, so the
    // bound runs from its return.
    let out = run_ok("make", &["--no-print-directory", "switchover"]);
    assert!(out.contains("whole after"), "{out}");
    let start = Instant::now();
    wait_leader_is(new, SWITCHOVER_BOUND);
    wait_write_on(new, SWITCHOVER_BOUND.saturating_sub(start.elapsed()));
    eprintln!(
        "switchover {old} -> {new}: write through 5432 on {new} {:.1}s after `make switchover` returned",
        start.elapsed().as_secs_f64()
    );
    // Whole means the old leader streams from the new one when it returns.
    let rows = sql(
        pg_port(new),
        "postgres",
        "SELECT application_name, state FROM pg_stat_replication",
    )
    .unwrap();
    assert!(
        rows.iter()
            .any(|r| r[0].as_deref() == Some(old) && r[1].as_deref() == Some("streaming")),
        "{rows:?}"
    );
    assert_eq!(
        pgbouncer_targets(),
        vec![new.to_string()],
        "pgbouncer.ini after the switchover"
    );
}

#[test]
fn stopping_the_leader_fails_over_and_the_old_leader_rejoins() {
    let lab = LabTest::begin("stopping_the_leader_fails_over_and_the_old_leader_rejoins");
    let (old, new) = (lab.leader.as_str(), other(&lab.leader));
    let start = Instant::now();
    let stopped = Stopped::stop(old);
    wait_write_on(new, STOP_LEADER_BOUND);
    eprintln!(
        "stop {old}: write through 5432 on {new} {:.1}s after `compose stop` began",
        start.elapsed().as_secs_f64()
    );
    assert_eq!(leader().unwrap(), new);
    assert_eq!(
        pgbouncer_targets(),
        vec![new.to_string()],
        "pgbouncer.ini after the failover"
    );
    stopped.start();
    wait_for(
        &format!("{old} to rejoin as a streaming replica"),
        Duration::from_secs(120),
        || {
            let view = cluster()?;
            let m = view
                .members
                .iter()
                .find(|m| m.name == old)
                .ok_or("not a member")?;
            if m.role == "replica" && m.state == "streaming" {
                Ok(())
            } else {
                Err(format!("{m:?}"))
            }
        },
    );
    assert_eq!(
        leader().unwrap(),
        new,
        "the rejoining node must not take the lead back"
    );
}

#[test]
fn both_nodes_callbacks_at_once_leave_pgbouncer_on_the_leader() {
    let lab = LabTest::begin("both_nodes_callbacks_at_once_leave_pgbouncer_on_the_leader");
    let (leader, replica) = (lab.leader.clone(), other(&lab.leader));
    // Start from a wrong file: it names the replica (PgBouncer has not reloaded it yet).
    repoint_file_by_hand("pgbouncer", &leader, replica);
    assert_eq!(pgbouncer_targets(), vec![replica.to_string()]);
    // Both nodes claim primary at the same moment, as after a contested event, several times.
    for round in 0..3 {
        let runs: Vec<_> = [leader.clone(), replica.to_string()]
            .into_iter()
            .map(|node| std::thread::spawn(move || (run_callback(&node, "primary"), node)))
            .collect();
        for handle in runs {
            let ((ok, stderr), node) = handle.join().unwrap();
            assert!(ok, "round {round}: callback on {node} failed: {stderr}");
            if node == replica {
                assert!(
                    stderr.contains(&format!("{leader} holds the leader lock")),
                    "round {round}: {node} said: {stderr}"
                );
            }
        }
        assert_eq!(
            pgbouncer_targets(),
            vec![leader.clone()],
            "round {round}: pgbouncer.ini"
        );
    }
    let w = write_through(PGBOUNCER_PORT).unwrap();
    assert_eq!(w.server_addr, container_ip(&leader));
}

#[test]
fn callback_with_pgbouncer_down_still_writes_the_file() {
    let lab = LabTest::begin("callback_with_pgbouncer_down_still_writes_the_file");
    let (leader, replica) = (lab.leader.clone(), other(&lab.leader));
    let stopped = Stopped::stop("pgbouncer");
    repoint_file_by_hand(&leader, &leader, replica);
    let (ok, stderr) = run_callback(&leader, "primary");
    assert!(ok, "callback failed with PgBouncer down: {stderr}");
    assert!(stderr.contains("PgBouncer not reachable"), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one log line: {stderr}");
    let ini = run_ok(
        "docker",
        &[
            "exec",
            &leader,
            "cat",
            "/etc/pgbouncer/shared/pgbouncer.ini",
        ],
    );
    let hosts: Vec<_> = patroni_lab_callback::ini::targets(&ini)
        .into_iter()
        .map(|(_, t)| t.host)
        .collect();
    assert_eq!(hosts, vec![leader.clone()]);
    stopped.start();
    // PgBouncer read the file at start: writes through it reach the leader.
    let (w, _) = wait_for("a write through 6432", Duration::from_secs(30), || {
        write_through(PGBOUNCER_PORT)
    });
    assert_eq!(w.server_addr, container_ip(&leader));
}

#[test]
fn haproxy_refuses_clients_while_no_node_is_primary() {
    let lab = LabTest::begin("haproxy_refuses_clients_while_no_node_is_primary");
    let replica = other(&lab.leader).to_string();
    // Stop the replica first so that the leader's stop leaves no one to take over.
    let second = Stopped::stop(&replica);
    let first = Stopped::stop(&lab.leader);
    let (backend, _) = wait_for(
        "HAProxy to mark the writer backend down",
        Duration::from_secs(10),
        || {
            // HAProxy's stats page (no curl: the tools image has none).
            let (_, csv) = patroni_lab_common::patroni::get(
                "http://127.0.0.1:7001",
                "/;csv",
                Duration::from_secs(2),
            )
            .map_err(|e| e.to_string())?;
            let line = csv
                .lines()
                .find(|l| l.starts_with("postgres_primary,BACKEND,"))
                .ok_or("no postgres_primary backend in the stats")?
                .to_string();
            if line.contains(",DOWN,") {
                Ok(line)
            } else {
                Err(line)
            }
        },
    );
    let started = Instant::now();
    let refused = write_through(CLIENT_PORT).expect_err("a write through 5432 with no primary");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "refused at once, not after a time-out: {refused}"
    );
    // PgBouncer itself still takes the client (it has nowhere to send it): HAProxy is what refuses.
    assert!(
        sql(PGBOUNCER_PORT, "pgbouncer", "SHOW VERSION").is_ok(),
        "PgBouncer is up: {backend}"
    );
    first.start();
    second.start();
    // Either node may lead now; the cluster must be whole and writable again.
    healthy_cluster();
}

#[test]
fn make_up_wait_times_out_with_the_failing_service_log() {
    let _lab = LabTest::begin("make_up_wait_times_out_with_the_failing_service_log");
    let stopped = Stopped::stop("haproxy");
    let mut args = vec!["scripts/wait-ready.sh".to_string()];
    args.extend(compose_command());
    let out = std::process::Command::new("bash")
        .args(&args)
        .env("LAB_UP_TIMEOUT", "3")
        .current_dir(repo_root())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "it must fail while HAProxy is down: {stderr}"
    );
    assert!(
        stderr.contains("lab did not accept a write through 127.0.0.1:5432 within 3s"),
        "{stderr}"
    );
    assert!(
        stderr.contains("---- haproxy: exited"),
        "the failing service is named: {stderr}"
    );
    assert!(
        !stderr.contains("---- patroni1:"),
        "healthy services are not dumped: {stderr}"
    );
    stopped.start();
}

#[test]
fn ports_are_published_on_loopback_only() {
    let _serial = serial();
    require_lab();
    let mut published = Vec::new();
    for svc in SERVICES {
        let json = run_ok(
            "docker",
            &["inspect", "-f", "{{json .HostConfig.PortBindings}}", svc],
        );
        let bindings: serde_json::Value = serde_json::from_str(json.trim()).unwrap();
        for (_, list) in bindings.as_object().unwrap() {
            for b in list.as_array().unwrap() {
                let ip = b["HostIp"].as_str().unwrap_or("");
                let port: u16 = b["HostPort"].as_str().unwrap().parse().unwrap();
                assert_eq!(ip, "127.0.0.1", "{svc} publishes {port} on '{ip}'");
                published.push(port);
            }
        }
    }
    published.sort();
    assert_eq!(
        published,
        vec![2379, 5432, 5433, 6432, 7001, 8008, 8009, 15432, 15433],
        "the seed's port table"
    );
}

#[test]
fn callback_refused_by_a_running_pgbouncer_is_an_error() {
    let lab = LabTest::begin("callback_refused_by_a_running_pgbouncer_is_an_error");
    // A running PgBouncer that refuses the callback's login is not "not running": it was not
    // told, so the callback must fail loudly (exit 1, one line in Patroni's log).
    let out = run(
        "docker",
        &[
            "exec",
            "-e",
            "PGBOUNCER_ADMIN_PASSWORD=not-the-password",
            &lab.leader,
            "patroni-lab",
            "callback",
            "on_role_change",
            "primary",
            "postgres-cluster",
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("PgBouncer admin console"), "{stderr}");
    assert!(!stderr.contains("not reachable"), "{stderr}");
}

#[test]
fn patroni_refuses_anonymous_unsafe_calls_and_answers_anonymous_health_checks() {
    use patroni_lab_common::patroni::{self, Auth};
    let lab = LabTest::begin(
        "patroni_refuses_anonymous_unsafe_calls_and_answers_anonymous_health_checks",
    );
    let api = format!("http://127.0.0.1:{}", api_port(&lab.leader));
    let timeout = Duration::from_secs(5);
    let replica = other(&lab.leader);
    let switchover = format!(
        r#"{{"leader": "{}", "candidate": "{replica}"}}"#,
        lab.leader
    );
    let wrong = Auth {
        user: "patroni".into(),
        password: "not-the-password".into(),
    };
    for auth in [None, Some(&wrong)] {
        let (status, body) =
            patroni::send_json(&api, "POST", "/switchover", &switchover, auth, timeout).unwrap();
        assert_eq!(status, 401, "POST /switchover with {auth:?}: {body}");
        let (status, body) =
            patroni::send_json(&api, "PATCH", "/config", r#"{"ttl": 21}"#, auth, timeout).unwrap();
        assert_eq!(status, 401, "PATCH /config with {auth:?}: {body}");
        let (status, body) =
            patroni::send_json(&api, "POST", "/restart", "{}", auth, timeout).unwrap();
        assert_eq!(status, 401, "POST /restart with {auth:?}: {body}");
    }
    // Nothing moved and nothing changed.
    assert_eq!(leader().unwrap(), lab.leader);
    let (status, config) = patroni::get(&api, "/config", timeout).unwrap();
    assert_eq!(status, 200, "{config}");
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_ne!(config["ttl"], serde_json::json!(21));
    // Health checks (HAProxy's, Docker's) stay anonymous.
    for path in ["/primary", "/health", "/patroni"] {
        let (status, body) = patroni::get(&api, path, timeout).unwrap();
        assert_eq!(status, 200, "GET {path}: {body}");
    }
}

#[test]
fn pgbouncer_keeps_the_servers_scram_secret_not_the_password() {
    let _lab = LabTest::begin("pgbouncer_keeps_the_servers_scram_secret_not_the_password");
    let userlist = run_ok(
        "docker",
        &["exec", "pgbouncer", "cat", "/etc/pgbouncer/userlist.txt"],
    );
    let mode = run_ok(
        "docker",
        &[
            "exec",
            "pgbouncer",
            "stat",
            "-c",
            "%a",
            "/etc/pgbouncer/userlist.txt",
        ],
    );
    assert_eq!(mode.trim(), "600");
    let user = std::env::var("POSTGRES_USER").unwrap_or_else(|_| "postgres".into());
    let stored = sql(
        pg_port(NODES[0]),
        "postgres",
        &format!("SELECT rolpassword FROM pg_authid WHERE rolname = '{user}'"),
    )
    .expect("read pg_authid")[0][0]
        .clone()
        .unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "{stored}");
    // The very secret the server has (SCRAM pass-through needs it), and nothing else.
    assert_eq!(userlist, format!("\"{user}\" \"{stored}\"\n"));
    // Logins through PgBouncer work with it: a client's, and the admin console's.
    write_through(PGBOUNCER_PORT).expect("a write through PgBouncer");
    sql(PGBOUNCER_PORT, "pgbouncer", "SHOW VERSION").expect("the admin console");
}

/// What a password in plain text looks like in a file: a `password = ...` / `password: ...`
/// setting (conninfo, YAML, ini) with a value, or a PgBouncer userlist line whose secret is not
/// a SCRAM secret.
const PLAIN_PASSWORD: &str =
    r#"[Pp][Aa][Ss][Ss][Ww][Oo][Rr][Dd] *[=:] *[^ ]|^"[^"]*" "([^S]|S[^C])"#;

/// Text files under `path` in `volume` (read-only, in a throwaway container) that match
/// [`PLAIN_PASSWORD`], as `file:line:text`.
fn scan_volume(volume: &str) -> String {
    let mount = format!("{volume}:/v:ro");
    let out = run(
        "docker",
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            &mount,
            "--entrypoint",
            "grep",
            "patroni-lab/patroni:latest",
            "-rIn",
            "-E",
            PLAIN_PASSWORD,
            "/v",
        ],
    );
    // grep: 0 = found, 1 = nothing found, 2 = trouble.
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "scanning {volume}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn no_password_in_plain_text_in_any_volume_or_image_layer() {
    let _lab = LabTest::begin("no_password_in_plain_text_in_any_volume_or_image_layer");
    let volumes = run_ok(
        "docker",
        &[
            "volume",
            "ls",
            "--filter",
            "label=com.docker.compose.project=patroni-lab",
            "--format",
            "{{.Name}}",
        ],
    );
    let volumes: Vec<&str> = volumes.lines().collect();
    assert!(volumes.len() >= 5, "the lab's volumes: {volumes:?}");
    for volume in &volumes {
        let hits = scan_volume(volume);
        assert!(
            hits.is_empty(),
            "{volume} holds a password in plain text:\n{hits}"
        );
    }
    for image in ["etcd", "patroni", "pgbouncer", "haproxy"] {
        let layers = run_ok(
            "docker",
            &[
                "history",
                "--no-trunc",
                "--format",
                "{{.CreatedBy}}",
                &format!("patroni-lab/{image}:latest"),
            ],
        );
        let hits: Vec<&str> = layers
            .lines()
            .filter(|l| l.to_ascii_lowercase().contains("password"))
            .collect();
        assert!(
            hits.is_empty(),
            "an image layer of {image} names a password: {hits:?}"
        );
    }
    // The scan finds what it looks for: Patroni's own config, in the container and on no
    // volume, holds the passwords (its REST API and PostgreSQL need them).
    let found = run_ok(
        "docker",
        &[
            "exec",
            "patroni1",
            "grep",
            "-c",
            "-E",
            PLAIN_PASSWORD,
            "/etc/patroni/patroni.yml",
        ],
    );
    assert!(found.trim().parse::<u32>().unwrap() >= 3, "{found}");
    // And it tells a userlist with a password from one with a SCRAM secret.
    let userlist_lines = run_ok(
        "docker",
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "sh",
            "patroni-lab/patroni:latest",
            "-c",
            &format!(
                "printf '%s\\n' '\"postgres\" \"hunter2\"' '\"postgres\" \"SCRAM-SHA-256$4096:c2FsdA==$a:b\"' | grep -E '{PLAIN_PASSWORD}' || true"
            ),
        ],
    );
    assert_eq!(userlist_lines.trim(), "\"postgres\" \"hunter2\"");
}

/// The shared pgbouncer.ini as the test found it: written back (and PgBouncer reloaded) on drop.
struct SharedIniRestored(String);

fn write_shared_ini(text: &str) {
    patroni_lab_cluster::lab::container("pgbouncer")
        .run_with_input(
            &[
                "sh",
                "-c",
                &format!("cat > {}", patroni_lab_cluster::lab::PGBOUNCER_INI),
            ],
            text,
        )
        .unwrap_or_else(|e| panic!("write the shared pgbouncer.ini: {e}"));
}

impl Drop for SharedIniRestored {
    fn drop(&mut self) {
        write_shared_ini(&self.0);
        let _ = sql(PGBOUNCER_PORT, "pgbouncer", "RELOAD");
    }
}

#[test]
fn callback_refuses_a_malformed_shared_pgbouncer_ini_in_one_line_and_leaves_it_as_it_was() {
    let lab = LabTest::begin(
        "callback_refuses_a_malformed_shared_pgbouncer_ini_in_one_line_and_leaves_it_as_it_was",
    );
    let before = pgbouncer_ini();
    let _restore = SharedIniRestored(before.clone());
    let bad = "postgres host=patroni1 this is not an entry";
    let broken = before.replacen("[databases]\n", &format!("[databases]\n{bad}\n"), 1);
    assert_ne!(
        broken, before,
        "the file has a [databases] section: {before}"
    );
    let line = broken.lines().position(|l| l == bad).unwrap() + 1;
    write_shared_ini(&broken);

    // The callback Patroni runs on the leader after a promotion, with the file broken.
    let (ok, stderr) = run_callback(&lab.leader, "primary");
    assert!(!ok, "the callback must fail: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    for part in [
        patroni_lab_cluster::lab::PGBOUNCER_INI,
        &format!("line {line}:"),
        &format!("'{bad}'"),
        "left as it was",
        "restart PgBouncer, which writes it afresh",
    ] {
        assert!(stderr.contains(part), "'{part}' missing: {stderr}");
    }
    assert_eq!(
        pgbouncer_ini(),
        broken,
        "the callback must not rewrite a file it cannot read"
    );
    // Nothing reloaded: PgBouncer still serves writes from the leader.
    let w = write_through(PGBOUNCER_PORT).expect("write through 6432");
    assert!(!w.in_recovery, "6432 reaches a replica");
}

/// A node removed by a test: on drop, when its container is not running (the test failed
/// before `make up` made it again), `make up` makes it and the test waits until both members
/// run. `make up`, not Compose directly, so the Compose that made the lab makes the container.
struct NodeRecreated(&'static str);

impl Drop for NodeRecreated {
    fn drop(&mut self) {
        let state = run("docker", &["inspect", "-f", "{{.State.Status}}", self.0]);
        if String::from_utf8_lossy(&state.stdout).trim() == "running" {
            return;
        }
        let _ = run("make", &["up"]);
        let whole = try_wait_for(
            "both members running again",
            Duration::from_secs(180),
            || {
                let view = cluster()?;
                let running = view
                    .members
                    .iter()
                    .filter(|m| m.state == "running" || m.state == "streaming")
                    .count();
                if running == NODES.len() {
                    Ok(())
                } else {
                    Err(format!("{:?}", view.members))
                }
            },
        );
        if let Err(e) = whole {
            eprintln!("fault guard: {e}");
        }
    }
}

#[test]
fn a_replicas_data_volume_deleted_while_the_leader_runs_is_cloned_again_by_make_up() {
    let lab = LabTest::begin(
        "a_replicas_data_volume_deleted_while_the_leader_runs_is_cloned_again_by_make_up",
    );
    let replica = other(&lab.leader);
    let tag = format!("volume-test-{}", std::process::id());
    sql(
        CLIENT_PORT,
        "postgres",
        &format!(
            "CREATE TABLE IF NOT EXISTS lab_volume_test(tag text); INSERT INTO lab_volume_test VALUES ('{tag}')"
        ),
    )
    .expect("a row written before");
    let system = |port: u16| {
        sql(
            port,
            "postgres",
            "SELECT system_identifier::text FROM pg_control_system()",
        )
        .map(|rows| rows[0][0].clone().unwrap_or_default())
    };
    let system_before = system(CLIENT_PORT).unwrap();
    let project = std::env::var("COMPOSE_PROJECT_NAME").unwrap_or_else(|_| "patroni-lab".into());
    let volume = format!("{project}_{replica}-data");

    let _recreate = NodeRecreated(replica);
    run_ok("docker", &["rm", "-f", "-v", replica]);
    run_ok("docker", &["volume", "rm", &volume]);
    assert!(
        !run("docker", &["volume", "inspect", &volume])
            .status
            .success(),
        "{volume} is gone"
    );

    let out = run("make", &["up"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "make up: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("lab is up"), "{stdout}");
    // Patroni clones the replica from the leader: streaming again, same system, the row there.
    let leader = healthy_cluster();
    assert_eq!(leader, lab.leader, "the leader kept its role");
    let replica_port = pg_port(replica);
    let (rows, _) = wait_for(
        "the row written before the volume was deleted, on the new replica",
        Duration::from_secs(60),
        || {
            sql(
                replica_port,
                "postgres",
                &format!("SELECT count(*)::text FROM lab_volume_test WHERE tag = '{tag}'"),
            )
            .and_then(|rows| match rows[0][0].as_deref() {
                Some("1") => Ok(rows),
                other => Err(format!("count {other:?}")),
            })
        },
    );
    assert_eq!(rows.len(), 1);
    assert_eq!(system(replica_port).unwrap(), system_before, "same cluster");
    assert!(
        run("docker", &["volume", "inspect", &volume])
            .status
            .success(),
        "make up made {volume} again"
    );
}

/// Which node a read through `port` ran on (its address on the lab network) and whether it was
/// in recovery.
fn read_on(port: u16) -> Result<(String, bool), String> {
    let rows = sql(
        port,
        "postgres",
        "SELECT host(inet_server_addr()), pg_is_in_recovery()::text",
    )?;
    let row = rows.first().ok_or("no row")?;
    Ok((
        row[0].clone().unwrap_or_default(),
        row[1].as_deref() == Some("true"),
    ))
}

/// Waits until reads through 5433 run on `ip`, in recovery or not; returns the wait.
fn wait_reads_on(ip: &str, in_recovery: bool, limit: Duration) -> Duration {
    let what = format!("reads through 5433 on {ip} (in recovery: {in_recovery})");
    wait_for(&what, limit, || match read_on(READER_PORT)? {
        (on, r) if on == ip && r == in_recovery => Ok(()),
        other => Err(format!("read on {other:?}")),
    })
    .1
}

/// The reader endpoint (5433) reaches the replica; with the replica stopped, the leader
/// (readers stay served, fresh); with the replica back, the replica again.
#[test]
fn readers_reach_the_replica_and_the_leader_when_no_replica_is_left() {
    let lab = LabTest::begin("readers_reach_the_replica_and_the_leader_when_no_replica_is_left");
    let replica = other(&lab.leader);
    let (replica_ip, leader_ip) = (container_ip(replica), container_ip(&lab.leader));
    let (on, in_recovery) = read_on(READER_PORT).expect("a read through 5433");
    assert_eq!((on.as_str(), in_recovery), (replica_ip.as_str(), true));
    let stopped = Stopped::stop(replica);
    // The replica's line goes down after fall (2) failed checks 1 s apart, after Patroni's
    // shutdown; the leader's line is then the only one. Measured 5.3 s here; bound 15 s.
    let took = wait_reads_on(&leader_ip, false, Duration::from_secs(15));
    eprintln!(
        "readers on the leader {:.1} s after the replica stopped",
        took.as_secs_f64()
    );
    stopped.start();
    let took = wait_reads_on(&replica_ip, true, Duration::from_secs(60));
    eprintln!(
        "readers back on the replica {:.1} s after it was started",
        took.as_secs_f64()
    );
}
