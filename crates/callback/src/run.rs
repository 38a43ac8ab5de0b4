//! One callback run: decide from the role, confirm the leader lock, rewrite, reload.

use std::fs;
use std::io::Write;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::args::{Invocation, Role};
use crate::ini::{self, IniError, Target};
use crate::pgbouncer::{self, AdminError, AdminTarget};
use patroni_lab_common::patroni::{self, PatroniError};

/// Everything the callback needs to know, read from the environment by the binary.
#[derive(Debug, Clone)]
pub struct Config {
    /// The local Patroni REST API, e.g. `http://127.0.0.1:8008`.
    pub api_url: String,
    /// The shared `pgbouncer.ini`.
    pub ini_path: PathBuf,
    /// PgBouncer's admin console.
    pub admin: AdminTarget,
    /// How long to wait for the leader lock to show this node after a promotion.
    pub leader_wait: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{name}='{value}' is not valid: {expected}")]
    Invalid {
        name: &'static str,
        value: String,
        expected: &'static str,
    },
}

impl Config {
    /// Reads the settings from variables (`lookup` is `std::env::var` in the binary).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let text = |name: &str, default: &str| lookup(name).unwrap_or_else(|| default.to_string());
        let number = |name: &'static str, default: u64| -> Result<u64, ConfigError> {
            match lookup(name) {
                None => Ok(default),
                Some(v) => v.parse().map_err(|_| ConfigError::Invalid {
                    name,
                    value: v,
                    expected: "a whole number",
                }),
            }
        };
        let port = number("PGBOUNCER_PORT", u64::from(crate::pgbouncer::PORT))?;
        let port = u16::try_from(port).map_err(|_| ConfigError::Invalid {
            name: "PGBOUNCER_PORT",
            value: port.to_string(),
            expected: "a TCP port (1-65535)",
        })?;
        Ok(Self {
            api_url: text("PATRONI_LAB_API_URL", "http://127.0.0.1:8008"),
            ini_path: PathBuf::from(text("PGBOUNCER_INI", crate::paths::SHARED_INI)),
            admin: AdminTarget {
                host: text("PGBOUNCER_HOST", "pgbouncer"),
                port,
                user: text("PGBOUNCER_ADMIN_USER", "postgres"),
                password: lookup("PGBOUNCER_ADMIN_PASSWORD")
                    .or_else(|| lookup("POSTGRES_PASSWORD"))
                    .unwrap_or_else(|| "postgres".into()),
            },
            leader_wait: Duration::from_secs(number("CALLBACK_LEADER_WAIT", 10)?),
        })
    }
}

/// What PgBouncer said to `RELOAD`.
#[derive(Debug)]
pub enum Reload {
    Done,
    /// PgBouncer is not up; it reads the file when it starts.
    NotRunning(String),
}

/// What a run did.
#[derive(Debug)]
pub enum Outcome {
    /// The node is not primary: nothing to do.
    NotPrimary(Role),
    /// The node says primary but another member holds the lock: nothing written.
    NotLeader { leader: String },
    /// The file names the leader (it may have already), and PgBouncer was told.
    Pointed {
        from: Vec<Target>,
        to: Target,
        /// The member holding the leader lock after the reload: the one `to` names.
        leader: String,
        changed: bool,
        reload: Reload,
        /// Set when the lock moved while this run held the file lock, and the run followed it
        /// (the file names the new leader, not this node).
        followed_from: Option<String>,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(transparent)]
    Patroni(#[from] PatroniError),
    #[error(
        "this node reports primary but the REST API shows no leader lock for {member} after {secs}s; pgbouncer.ini left as it was"
    )]
    NoLeader { member: String, secs: u64 },
    #[error("the REST API at {0} does not say this member's name (GET /patroni)")]
    NoName(String),
    #[error("{path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("{path}: {source}")]
    Ini { path: String, source: IniError },
    /// The shared file the callback would rewrite cannot be read: it stays byte for byte.
    #[error(
        "{path}: {source}; the file is left as it was: mend that line, or restart PgBouncer, which writes it afresh from the image's template"
    )]
    Unreadable { path: String, source: IniError },
    #[error(transparent)]
    Admin(#[from] AdminError),
    #[error(
        "{path} does not exist: nothing to point at the leader (is the shared volume mounted?)"
    )]
    MissingIni { path: String },
    #[error(
        "the leader lock kept moving ({moves}) while pgbouncer.ini was being pointed at it; the file names {last}, which may not lead now"
    )]
    LeaderKeptMoving { moves: String, last: String },
}

pub(crate) fn file_error(path: &Path) -> impl FnOnce(std::io::Error) -> RunError + '_ {
    move |source| RunError::File {
        path: path.display().to_string(),
        source,
    }
}

const HTTP_TIMEOUT: Duration = Duration::from_secs(2);
const ADMIN_TIMEOUT: Duration = Duration::from_secs(3);

/// This node's member name, from `GET /patroni`.
fn member_name(api_url: &str) -> Result<String, RunError> {
    let (status, name) = patroni::member_name(api_url, HTTP_TIMEOUT)?;
    if status != 200 {
        return Err(PatroniError::Status {
            url: format!("{}/patroni", api_url.trim_end_matches('/')),
            status,
        }
        .into());
    }
    name.ok_or_else(|| RunError::NoName(api_url.to_string()))
}

/// Waits until the DCS names a leader; returns `Ok(Some(me))` when it is this node.
fn confirm_leader(cfg: &Config, me: &str) -> Result<Result<patroni::Member, String>, RunError> {
    let deadline = Instant::now() + cfg.leader_wait;
    loop {
        let view = patroni::cluster(&cfg.api_url, HTTP_TIMEOUT);
        match view.as_ref().ok().and_then(|v| v.leader()) {
            Some(leader) if leader.name == me => return Ok(Ok(leader.clone())),
            Some(leader) => return Ok(Err(leader.name.clone())),
            None if Instant::now() >= deadline => {
                view?;
                return Err(RunError::NoLeader {
                    member: me.to_string(),
                    secs: cfg.leader_wait.as_secs(),
                });
            }
            None => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}

/// Holds an exclusive `flock` on a file beside the ini while it lives.
pub(crate) struct FileLock {
    _held: fs::File,
}

impl FileLock {
    pub(crate) fn take(ini: &Path) -> Result<Self, RunError> {
        let path = ini.with_extension("ini.lock");
        let file = fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(file_error(&path))?;
        // SAFETY: flock on a file descriptor we own; it is released when the file closes.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) } != 0 {
            return Err(file_error(&path)(std::io::Error::last_os_error()));
        }
        Ok(Self { _held: file })
    }
}

/// Replaces `path` with `text` atomically: a temporary file in the same folder, fsync, rename.
pub(crate) fn replace_atomically(path: &Path, text: &str) -> Result<(), RunError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let write = || -> std::io::Result<()> {
        let mut file = fs::File::create(&tmp)?;
        file.set_permissions(fs::metadata(path)?.permissions())?;
        file.write_all(text.as_bytes())?;
        file.sync_all()?;
        fs::rename(&tmp, path)?;
        fs::File::open(dir)?.sync_all()
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        file_error(path)(e)
    })
}

/// Rewrites the ini under the lock; returns the previous targets and whether the text changed.
/// The caller holds the file lock.
fn point_file_at(path: &Path, target: &Target) -> Result<(Vec<Target>, bool), RunError> {
    let old = fs::read_to_string(path).map_err(file_error(path))?;
    let new = ini::retarget(&old, target).map_err(|source| RunError::Unreadable {
        path: path.display().to_string(),
        source,
    })?;
    let before = ini::targets(&old).into_iter().map(|(_, t)| t).collect();
    if new == old {
        return Ok((before, false));
    }
    replace_atomically(path, &new)?;
    Ok((before, true))
}

fn reload(admin: &AdminTarget) -> Result<Reload, RunError> {
    match pgbouncer::admin_command_blocking(admin, "RELOAD", ADMIN_TIMEOUT) {
        Ok(_) => Ok(Reload::Done),
        Err(e) if e.is_not_running() => Ok(Reload::NotRunning(e.to_string())),
        Err(e) => Err(e.into()),
    }
}

/// How many times the leader may move under one run before it gives up and says so.
const MAX_FOLLOWS: usize = 3;

fn target_of(leader: &patroni::Member) -> Target {
    Target {
        host: if leader.host.is_empty() {
            leader.name.clone()
        } else {
            leader.host.clone()
        },
        port: if leader.port == 0 { 5432 } else { leader.port },
    }
}

/// The member holding the leader lock now, waiting up to `leader_wait` while the lock is free.
fn current_leader(cfg: &Config) -> Result<patroni::Member, RunError> {
    let deadline = Instant::now() + cfg.leader_wait;
    loop {
        let view = patroni::cluster(&cfg.api_url, HTTP_TIMEOUT)?;
        if let Some(leader) = view.leader() {
            return Ok(leader.clone());
        }
        if Instant::now() >= deadline {
            return Err(RunError::NoLeader {
                member: "any member".into(),
                secs: cfg.leader_wait.as_secs(),
            });
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// Runs the callback for one invocation.
///
/// Once this node is confirmed leader, everything happens under the file lock: read the leader,
/// point the file at it, RELOAD, and read the leader again. If the lock moved meanwhile, the
/// run follows it (rewrites for the real leader and reloads again), so the last callback to
/// release the file lock leaves PgBouncer on the member that led when it last looked, never
/// silently on a node that lost the lock. Callbacks of other nodes wait on the same lock.
pub fn handle(inv: &Invocation, cfg: &Config) -> Result<Outcome, RunError> {
    if inv.role != Role::Primary {
        return Ok(Outcome::NotPrimary(inv.role));
    }
    let me = member_name(&cfg.api_url)?;
    if let Err(other) = confirm_leader(cfg, &me)? {
        return Ok(Outcome::NotLeader { leader: other });
    }
    let path = &cfg.ini_path;
    if !path.exists() {
        return Err(RunError::MissingIni {
            path: path.display().to_string(),
        });
    }
    let _lock = FileLock::take(path)?;
    let mut leader = current_leader(cfg)?;
    let mut seen = vec![leader.name.clone()];
    let mut first_from: Option<Vec<Target>> = None;
    let mut changed_any = false;
    for _ in 0..=MAX_FOLLOWS {
        let target = target_of(&leader);
        let (from, changed) = point_file_at(path, &target)?;
        first_from.get_or_insert(from);
        changed_any |= changed;
        let reload = reload(&cfg.admin)?;
        let now = current_leader(cfg)?;
        if now.name == leader.name {
            return Ok(Outcome::Pointed {
                from: first_from.unwrap_or_default(),
                to: target,
                followed_from: (leader.name != me).then(|| me.clone()),
                leader: leader.name,
                changed: changed_any,
                reload,
            });
        }
        seen.push(now.name.clone());
        leader = now;
    }
    Err(RunError::LeaderKeptMoving {
        moves: seen.join(" -> "),
        last: target_of(&leader).to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_defaults_fit_the_lab() {
        let cfg = Config::from_lookup(|_| None).unwrap();
        assert_eq!(cfg.api_url, "http://127.0.0.1:8008");
        assert_eq!(cfg.admin.host, "pgbouncer");
        assert_eq!(cfg.admin.port, 6432);
        assert_eq!(cfg.admin.password, "postgres");
        assert_eq!(cfg.leader_wait, Duration::from_secs(10));
    }

    #[test]
    fn config_rejects_a_bad_port() {
        let err =
            Config::from_lookup(|k| (k == "PGBOUNCER_PORT").then(|| "70000".into())).unwrap_err();
        assert!(err.to_string().contains("PGBOUNCER_PORT='70000'"));
    }

    #[test]
    fn file_is_rewritten_in_place_and_kept_when_unchanged() {
        let dir = std::env::temp_dir().join(format!("plab-cb-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pgbouncer.ini");
        fs::write(&path, "[databases]\n* = host=patroni1 port=5432\n").unwrap();
        let to = Target {
            host: "patroni2".into(),
            port: 5432,
        };
        let (from, changed) = point_file_at(&path, &to).unwrap();
        assert!(changed);
        assert_eq!(from[0].host, "patroni1");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "[databases]\n* = host=patroni2 port=5432\n"
        );
        let (_, changed) = point_file_at(&path, &to).unwrap();
        assert!(!changed);
        let leftovers: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().contains(".tmp."))
            .collect();
        assert!(leftovers.is_empty());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn non_primary_roles_do_nothing() {
        let cfg = Config::from_lookup(|k| {
            (k == "PATRONI_LAB_API_URL").then(|| "http://127.0.0.1:1".into())
        })
        .unwrap();
        for role in ["replica", "demoted", "standby_leader"] {
            let inv = Invocation::parse(&["on_role_change", role, "c"]).unwrap();
            assert!(matches!(handle(&inv, &cfg), Ok(Outcome::NotPrimary(_))));
        }
    }

    /// A stand-in for one node's Patroni REST API, only to force interleavings the real
    /// cluster cannot be made to show on demand: `GET /patroni` names `me`, and each
    /// `GET /cluster` names the next leader of `script` (the last one repeats), or
    /// `shared_leader` once the script is used up.
    struct RestStub {
        url: String,
        leader: std::sync::Arc<std::sync::Mutex<String>>,
    }

    impl RestStub {
        fn start(me: &str, script: &[&str]) -> Self {
            use std::io::{BufRead, BufReader};
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://{}", listener.local_addr().unwrap());
            let leader = std::sync::Arc::new(std::sync::Mutex::new(
                script.last().copied().unwrap_or(me).to_string(),
            ));
            let shared = leader.clone();
            let me = me.to_string();
            let mut script: std::collections::VecDeque<String> =
                script.iter().map(|s| s.to_string()).collect();
            std::thread::spawn(move || {
                for stream in listener.incoming() {
                    let Ok(mut stream) = stream else { return };
                    let mut line = String::new();
                    let _ = BufReader::new(&stream).read_line(&mut line);
                    let body = if line.contains("/patroni") {
                        format!(r#"{{"patroni": {{"name": "{me}"}}}}"#)
                    } else {
                        let leader = match script.pop_front() {
                            Some(next) => {
                                *shared.lock().unwrap() = next.clone();
                                next
                            }
                            None => shared.lock().unwrap().clone(),
                        };
                        format!(
                            r#"{{"members": [{{"name": "{leader}", "role": "leader", "host": "{leader}", "port": 5432}}]}}"#
                        )
                    };
                    let _ = write!(
                        stream,
                        "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n{body}"
                    );
                }
            });
            Self { url, leader }
        }
    }

    fn temp_ini(name: &str, host: &str) -> (PathBuf, Config) {
        let dir = std::env::temp_dir().join(format!("plab-cb-{name}-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("pgbouncer.ini");
        fs::write(&path, format!("[databases]\n* = host={host} port=5432\n")).unwrap();
        let mut cfg = Config::from_lookup(|k| match k {
            // Nothing listens on port 1: PgBouncer "not running".
            "PGBOUNCER_HOST" => Some("127.0.0.1".into()),
            "PGBOUNCER_PORT" => Some("1".into()),
            _ => None,
        })
        .unwrap();
        cfg.ini_path = path.clone();
        cfg.leader_wait = Duration::from_secs(2);
        (path, cfg)
    }

    fn hosts(path: &Path) -> Vec<String> {
        ini::targets(&fs::read_to_string(path).unwrap())
            .into_iter()
            .map(|(_, t)| t.host)
            .collect()
    }

    #[test]
    fn lock_moving_after_the_write_is_followed_not_left_behind() {
        // Confirmed leader, leader under the file lock, then the lock moves after the write.
        let stub = RestStub::start("patroni1", &["patroni1", "patroni1", "patroni2"]);
        let (path, mut cfg) = temp_ini("follow", "patroni1");
        cfg.api_url = stub.url.clone();
        let inv = Invocation::parse(&["on_role_change", "primary", "c"]).unwrap();
        let outcome = handle(&inv, &cfg).unwrap();
        assert_eq!(hosts(&path), vec!["patroni2"]);
        match outcome {
            Outcome::Pointed {
                leader,
                followed_from,
                reload,
                ..
            } => {
                assert_eq!(leader, "patroni2");
                assert_eq!(followed_from.as_deref(), Some("patroni1"));
                assert!(matches!(reload, Reload::NotRunning(_)));
            }
            other => panic!("{other:?}"),
        }
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn waiting_callback_rereads_the_leader_under_the_file_lock() {
        // patroni1's callback confirmed its lock, then waits for the file lock held by
        // patroni2's callback; meanwhile patroni2 took the lead and pointed the file at itself.
        let stub = RestStub::start("patroni1", &["patroni1"]);
        let (path, mut cfg) = temp_ini("contend", "patroni1");
        cfg.api_url = stub.url.clone();
        let held = FileLock::take(&path).unwrap();
        let runner = {
            let cfg = cfg.clone();
            std::thread::spawn(move || {
                let inv = Invocation::parse(&["on_role_change", "primary", "c"]).unwrap();
                handle(&inv, &cfg)
            })
        };
        // Let the waiting callback get past its leader check and block on the file lock.
        std::thread::sleep(Duration::from_millis(300));
        assert!(!runner.is_finished(), "it must wait for the file lock");
        *stub.leader.lock().unwrap() = "patroni2".into();
        point_file_at(
            &path,
            &Target {
                host: "patroni2".into(),
                port: 5432,
            },
        )
        .unwrap();
        drop(held);
        let outcome = runner.join().unwrap().unwrap();
        assert_eq!(hosts(&path), vec!["patroni2"], "{outcome:?}");
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_lock_that_keeps_moving_is_an_error_naming_the_moves() {
        let script = [
            "patroni1", "patroni1", "patroni2", "patroni1", "patroni2", "patroni1", "patroni2",
        ];
        let stub = RestStub::start("patroni1", &script);
        let (path, mut cfg) = temp_ini("moving", "patroni1");
        cfg.api_url = stub.url.clone();
        let inv = Invocation::parse(&["on_role_change", "primary", "c"]).unwrap();
        let err = handle(&inv, &cfg).unwrap_err().to_string();
        assert!(err.contains("kept moving"), "{err}");
        assert!(err.contains("patroni1 -> patroni2 -> patroni1"), "{err}");
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_malformed_entry_is_an_error_naming_the_line_and_the_file_stays_byte_for_byte() {
        let stub = RestStub::start("patroni1", &["patroni1"]);
        let (path, mut cfg) = temp_ini("malformed", "patroni2");
        cfg.api_url = stub.url.clone();
        let broken = "[databases]\n* = host=patroni2 port=5432\nnot an entry\n";
        fs::write(&path, broken).unwrap();
        let inv = Invocation::parse(&["on_role_change", "primary", "c"]).unwrap();
        let err = handle(&inv, &cfg).unwrap_err();
        assert!(matches!(err, RunError::Unreadable { .. }), "{err}");
        let text = err.to_string();
        assert!(text.contains("line 3:"), "{text}");
        assert!(text.contains("'not an entry'"), "{text}");
        assert!(text.contains("left as it was"), "{text}");
        assert_eq!(text.lines().count(), 1, "{text}");
        assert_eq!(fs::read_to_string(&path).unwrap(), broken);
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }

    #[test]
    fn a_missing_ini_is_an_error_and_no_lock_file_is_made() {
        let stub = RestStub::start("patroni1", &["patroni1"]);
        let (path, mut cfg) = temp_ini("missing", "patroni1");
        cfg.api_url = stub.url.clone();
        fs::remove_file(&path).unwrap();
        let inv = Invocation::parse(&["on_role_change", "primary", "c"]).unwrap();
        let err = handle(&inv, &cfg).unwrap_err();
        assert!(matches!(err, RunError::MissingIni { .. }), "{err}");
        assert!(!path.with_extension("ini.lock").exists());
        fs::remove_dir_all(path.parent().unwrap()).unwrap();
    }
}
