//! Where a fault acts: the [`Host`] seam. A host is one place where a service of the cluster
//! runs (a Patroni member with its PostgreSQL, etcd, PgBouncer, HAProxy); every step that
//! touches a machine — run a command there, signal a process, add or remove a packet filter,
//! stop, start, pause, kill or restart the service, read a file, copy a directory out — goes
//! through it. Today one implementation: the lab's containers through the Docker CLI
//! ([`Docker`]); the only place in the crate that knows `docker`'s verbs. Real hosts over SSH
//! plug in behind the same trait.
//!
//! Each call can fail the way a network can: the host unreachable, the command failed, no
//! answer in time ([`HostError`], naming the host and the command). Each state-changing
//! [`Action`] has a recorded inverse ([`Action::inverse`]), so an undo is built from the action
//! itself ([`undo`]). Owns nothing else: what a fault does with a host is the fault's.

use std::process::Command;
use std::time::Duration;

use crate::guard::Undo;

/// What a host's call can fail with.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HostError {
    /// The host could not be reached (no such container, no connection).
    #[error("{host}: not reachable: {detail}")]
    Unreachable { host: String, detail: String },
    /// The command ran and failed.
    #[error("{host}: {command}: {detail}")]
    Failed {
        host: String,
        command: String,
        detail: String,
    },
    /// No answer within the limit.
    #[error("{host}: {command}: no answer within {after:?}")]
    TimedOut {
        host: String,
        command: String,
        after: Duration,
    },
}

/// A signal, by name (no host-specific numbers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    Stop,
    Cont,
    Kill,
    Term,
    Usr2,
}

impl Signal {
    /// Its name without `SIG` (`STOP`), as `kill -STOP` takes it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Stop => "STOP",
            Self::Cont => "CONT",
            Self::Kill => "KILL",
            Self::Term => "TERM",
            Self::Usr2 => "USR2",
        }
    }
}

/// A service's state, as the host has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    Running,
    /// Every process frozen ([`Service::Pause`]).
    Paused,
    /// Not running, in the host's own words (`exited`, `created`, `inactive`, ...).
    Down(String),
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Running => f.write_str("running"),
            Self::Paused => f.write_str("paused"),
            Self::Down(s) => f.write_str(s),
        }
    }
}

/// What can be done to a host's service as a whole.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    Stop,
    Start,
    /// Freeze every process at one instant (Docker: the cgroup freezer).
    Pause,
    Resume,
    /// SIGKILL every process of the service at once.
    Kill,
    Restart,
    /// A signal to the service's main process (a reload, say).
    Signal(Signal),
}

impl Service {
    fn verb(self) -> String {
        match self {
            Self::Stop => "stop".into(),
            Self::Start => "start".into(),
            Self::Pause => "pause".into(),
            Self::Resume => "unpause".into(),
            Self::Kill => "kill -s KILL".into(),
            Self::Restart => "restart".into(),
            Self::Signal(s) => format!("kill -s {}", s.name()),
        }
    }
}

/// A state-changing step on a host, with its inverse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Service(Service),
    /// A signal to one process by pid.
    Signal {
        pid: String,
        signal: Signal,
    },
    /// Our own packet-filter table (nftables family and name), made with `rules` (nft commands
    /// that add chains and rules to it); never anyone else's table.
    AddFilter {
        family: &'static str,
        table: &'static str,
        rules: String,
    },
    RemoveFilter {
        family: &'static str,
        table: &'static str,
    },
    /// Our bandwidth cap as `device`'s root qdisc (`script`: `tc -batch` lines,
    /// [`crate::shaping::cap_script`]), replacing `saved` (`None`: the kernel's default).
    Shape {
        device: String,
        script: String,
        saved: Option<crate::shaping::RootQdisc>,
    },
    /// Our cap taken off `device` and `saved` put back, only while the root is ours
    /// ([`crate::shaping::restore_script`]).
    Unshape {
        device: String,
        saved: Option<crate::shaping::RootQdisc>,
    },
}

impl Action {
    /// What puts it back (`None`: nothing to put back, or nothing can).
    pub fn inverse(&self) -> Option<Action> {
        Some(match self {
            Self::Service(Service::Pause) => Self::Service(Service::Resume),
            Self::Service(Service::Stop | Service::Kill) => Self::Service(Service::Start),
            Self::Signal {
                pid,
                signal: Signal::Stop,
            } => Self::Signal {
                pid: pid.clone(),
                signal: Signal::Cont,
            },
            Self::AddFilter { family, table, .. } => Self::RemoveFilter { family, table },
            Self::Shape { device, saved, .. } => Self::Unshape {
                device: device.clone(),
                saved: saved.clone(),
            },
            _ => return None,
        })
    }

    /// How it reads on the timeline (`docker pause patroni1` on the lab).
    pub fn describe(&self, host: &dyn Host) -> String {
        host.describe(self)
    }
}

/// One place where a service of the cluster runs.
pub trait Host: Send + Sync {
    /// Its name (the member's, or the service's).
    fn name(&self) -> &str;
    /// Runs `argv` there as the service's own account; its standard output, trimmed.
    fn run(&self, argv: &[&str]) -> Result<String, HostError>;
    /// Runs `argv` there as root.
    fn run_root(&self, argv: &[&str]) -> Result<String, HostError>;
    /// Runs `argv` there with `input` on its standard input.
    fn run_with_input(&self, argv: &[&str], input: &str) -> Result<String, HostError>;
    /// Starts `argv` there and returns at once (it goes on by itself).
    fn spawn(&self, argv: &[&str]) -> Result<(), HostError>;
    /// Does `action`.
    fn act(&self, action: &Action) -> Result<(), HostError>;
    /// How `action` reads on the timeline.
    fn describe(&self, action: &Action) -> String;
    /// How a person runs `argv` there, for a repair hint (`docker exec patroni1 ...`).
    fn how_to_run(&self, argv: &str) -> String;
    /// How a person reads the service's own log, for a hint (`docker logs patroni1`).
    fn how_to_read_log(&self) -> String;
    /// The service's state (`running`, `paused`, `exited`, ...).
    fn state(&self) -> Result<State, HostError>;
    /// Where [`Host::state`] comes from, for a proof's line (`docker inspect`).
    fn state_source(&self) -> &'static str;
    /// When the service last started (as the host says it).
    fn started_at(&self) -> Result<String, HostError>;
    /// Its address on the cluster's network.
    fn address(&self) -> Result<String, HostError>;
    /// Copies directory `from` on the host to `to` here, keeping modes and owners.
    fn copy_out(&self, from: &str, to: &std::path::Path) -> Result<(), HostError>;
    /// The service's own log (its output, PostgreSQL's lines in it) from `since_unix_s` on.
    fn log_since(&self, since_unix_s: u64) -> Result<String, HostError>;

    /// A shell script run there.
    fn sh(&self, script: &str) -> Result<String, HostError> {
        self.run(&["sh", "-c", script])
    }
    /// A file's text.
    fn read_file(&self, path: &str) -> Result<String, HostError> {
        self.run(&["cat", path])
    }
}

/// An undo that does `action`'s inverse on `host` (`None`: the action has none).
pub fn undo(host: std::sync::Arc<dyn Host>, action: &Action) -> Option<Undo> {
    let inverse = action.inverse()?;
    Some(Undo::new(host.describe(&inverse), move || {
        host.act(&inverse).map_err(|e| e.to_string())
    }))
}

/// The lab's containers: each service is one container, reached with the Docker CLI.
#[derive(Debug, Clone)]
pub struct Docker {
    container: String,
}

impl Docker {
    pub fn new(container: impl Into<String>) -> Self {
        Self {
            container: container.into(),
        }
    }

    fn docker(&self, args: &[&str], input: Option<&str>) -> Result<String, HostError> {
        docker(&self.container, args, input)
    }

    fn exec(
        &self,
        user: Option<&str>,
        argv: &[&str],
        input: Option<&str>,
    ) -> Result<String, HostError> {
        let mut args = vec!["exec"];
        if input.is_some() {
            args.push("-i");
        }
        if let Some(u) = user {
            args.extend(["--user", u]);
        }
        args.push(&self.container);
        args.extend_from_slice(argv);
        self.docker(&args, input)
    }
}

/// How long one docker call may take before it is given up (`TimedOut`): a stop waits out the
/// service's own grace period, so well above it.
const DOCKER_CALL_LIMIT: Duration = Duration::from_secs(120);
/// How long a copy out of a container may take (a data directory, for the doctor's keep).
const COPY_LIMIT: Duration = Duration::from_secs(900);

/// What a command printed, once it ended within its limit.
struct Ended {
    success: bool,
    stdout: String,
    stderr: String,
}

/// Runs `program args` with `input` on its stdin; gives up after `limit` (the process killed),
/// as a call over a network may need to.
fn run_limited(
    host: &str,
    program: &str,
    args: &[&str],
    input: Option<&str>,
    limit: Duration,
) -> Result<Ended, HostError> {
    use std::io::{Read, Write};
    let command = format!("{program} {}", args.join(" "));
    let unreachable = |e: std::io::Error| HostError::Unreachable {
        host: host.to_string(),
        detail: format!("{command}: {e}"),
    };
    let mut child = Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .stdin(if input.is_some() {
            std::process::Stdio::piped()
        } else {
            std::process::Stdio::null()
        })
        .spawn()
        .map_err(unreachable)?;
    // Both pipes drained as the process runs (a full pipe would stall it), and its input
    // written, each on a thread, so the limit below holds whatever the process does.
    fn drain(pipe: Option<impl Read + Send + 'static>) -> std::thread::JoinHandle<String> {
        std::thread::spawn(move || {
            let mut text = Vec::new();
            if let Some(mut p) = pipe {
                let _ = p.read_to_end(&mut text);
            }
            String::from_utf8_lossy(&text).into_owned()
        })
    }
    let out = drain(child.stdout.take());
    let err = drain(child.stderr.take());
    let text = input.map(str::to_owned);
    let stdin = child.stdin.take();
    let written = std::thread::spawn(move || match (text, stdin) {
        (Some(text), Some(mut stdin)) => stdin.write_all(text.as_bytes()),
        _ => Ok(()),
    });
    let deadline = std::time::Instant::now() + limit;
    let status = loop {
        match child.try_wait().map_err(unreachable)? {
            Some(status) => break status,
            None if std::time::Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(HostError::TimedOut {
                    host: host.to_string(),
                    command,
                    after: limit,
                });
            }
            None => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    if let Ok(Err(e)) = written.join() {
        return Err(HostError::Failed {
            host: host.to_string(),
            command,
            detail: format!("its input could not be written: {e}"),
        });
    }
    Ok(Ended {
        success: status.success(),
        stdout: out.join().unwrap_or_default(),
        stderr: err.join().unwrap_or_default(),
    })
}

/// Runs `docker <args>` (about `host`) and returns its stdout; a failure carries docker's own
/// message.
fn docker(host: &str, args: &[&str], input: Option<&str>) -> Result<String, HostError> {
    let limit = if args.first() == Some(&"cp") {
        COPY_LIMIT
    } else {
        DOCKER_CALL_LIMIT
    };
    let out = run_limited(host, "docker", args, input, limit)?;
    if out.success {
        return Ok(out.stdout.trim().to_string());
    }
    let command = format!("docker {}", args.join(" "));
    let detail = out.stderr.trim().to_string();
    Err(
        if detail.contains("No such container") || detail.contains("is not running") {
            HostError::Unreachable {
                host: host.to_string(),
                detail: format!("{command}: {detail}"),
            }
        } else {
            HostError::Failed {
                host: host.to_string(),
                command,
                detail,
            }
        },
    )
}

impl Host for Docker {
    fn name(&self) -> &str {
        &self.container
    }

    fn run(&self, argv: &[&str]) -> Result<String, HostError> {
        self.exec(None, argv, None)
    }

    fn run_root(&self, argv: &[&str]) -> Result<String, HostError> {
        self.exec(Some("root"), argv, None)
    }

    fn run_with_input(&self, argv: &[&str], input: &str) -> Result<String, HostError> {
        self.exec(None, argv, Some(input))
    }

    fn spawn(&self, argv: &[&str]) -> Result<(), HostError> {
        let mut args = vec!["exec", "-d", &self.container];
        args.extend_from_slice(argv);
        self.docker(&args, None).map(|_| ())
    }

    fn act(&self, action: &Action) -> Result<(), HostError> {
        let c = self.container.as_str();
        match action {
            Action::Service(s) => match s {
                Service::Kill => self.docker(&["kill", "--signal", "KILL", c], None),
                Service::Signal(sig) => self.docker(&["kill", "-s", sig.name(), c], None),
                other => self.docker(&[&other.verb(), c], None),
            }
            .map(|_| ()),
            // As the service's own account: its processes are that account's.
            Action::Signal { pid, signal } => self
                .run(&["kill", &format!("-{}", signal.name()), pid])
                .map(|_| ()),
            Action::AddFilter {
                family,
                table,
                rules,
            } => {
                // `create`, not `add`: a table of ours already there (a fault's leftover) is an
                // error, never merged into (its rules and counters would count as this fault's).
                let script = format!("create table {family} {table}\n{rules}");
                self.exec(Some("root"), &["nft", "-f", "-"], Some(&script))
                    .map(|_| ())
            }
            Action::RemoveFilter { family, table } => self
                .run_root(&["nft", "delete", "table", family, table])
                .map(|_| ()),
            Action::Shape { script, .. } => self
                .exec(Some("root"), &["tc", "-batch", "-"], Some(script))
                .map(|_| ()),
            Action::Unshape { device, saved } => {
                let script = crate::shaping::restore_script(device, saved.as_ref());
                self.run_root(&["sh", "-c", &script]).map(|_| ())
            }
        }
    }

    fn how_to_run(&self, argv: &str) -> String {
        format!("docker exec {} {argv}", self.container)
    }

    fn how_to_read_log(&self) -> String {
        format!("docker logs {}", self.container)
    }

    fn describe(&self, action: &Action) -> String {
        let c = &self.container;
        match action {
            Action::Service(s) => format!("docker {} {c}", s.verb()),
            Action::Signal { pid, signal } => {
                format!("docker exec {c} kill -{} {pid}", signal.name())
            }
            Action::AddFilter { family, table, .. } => {
                format!("nft add table {family} {table} in {c}")
            }
            Action::RemoveFilter { family, table } => {
                format!("nft delete table {family} {table} in {c}")
            }
            Action::Shape { device, .. } => format!(
                "docker exec {c} tc qdisc replace dev {device} root handle {} htb (ours)",
                crate::shaping::HANDLE
            ),
            Action::Unshape { device, saved } => format!(
                "docker exec {c} {}",
                crate::shaping::restore_argv(device, saved.as_ref()).join(" ")
            ),
        }
    }

    fn state_source(&self) -> &'static str {
        "docker inspect"
    }

    fn state(&self) -> Result<State, HostError> {
        let s = self.docker(
            &["inspect", "-f", "{{.State.Status}}", &self.container],
            None,
        )?;
        Ok(match s.as_str() {
            "running" => State::Running,
            "paused" => State::Paused,
            _ => State::Down(s),
        })
    }

    fn started_at(&self) -> Result<String, HostError> {
        self.docker(
            &["inspect", "-f", "{{.State.StartedAt}}", &self.container],
            None,
        )
    }

    fn address(&self) -> Result<String, HostError> {
        let ip = self.docker(
            &[
                "inspect",
                "-f",
                "{{range .NetworkSettings.Networks}}{{.IPAddress}} {{end}}",
                &self.container,
            ],
            None,
        )?;
        // The first network's (the lab has one).
        let ip = ip.split_whitespace().next().unwrap_or_default().to_string();
        if ip.is_empty() {
            Err(HostError::Unreachable {
                host: self.container.clone(),
                detail: "no address (is it running?)".into(),
            })
        } else {
            Ok(ip)
        }
    }

    fn log_since(&self, since_unix_s: u64) -> Result<String, HostError> {
        // A container's log is its standard output and error: both, in one text.
        let since = since_unix_s.to_string();
        let args = ["logs", "--since", &since, &self.container];
        let out = run_limited(&self.container, "docker", &args, None, DOCKER_CALL_LIMIT)?;
        if !out.success {
            return Err(HostError::Failed {
                host: self.container.clone(),
                command: format!("docker {}", args.join(" ")),
                detail: out.stderr.trim().to_string(),
            });
        }
        Ok(format!("{}{}", out.stdout, out.stderr))
    }

    fn copy_out(&self, from: &str, to: &std::path::Path) -> Result<(), HostError> {
        let from = format!("{}:{from}", self.container);
        let to = to.display().to_string();
        self.docker(&["cp", "-a", &from, &to], None).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_call_that_does_not_end_in_time_is_given_up_and_killed() {
        let started = std::time::Instant::now();
        let e = run_limited("here", "sleep", &["5"], None, Duration::from_millis(200));
        assert!(
            matches!(&e, Err(HostError::TimedOut { after, .. }) if *after == Duration::from_millis(200)),
            "{:?}",
            e.err()
        );
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
        let ended = run_limited(
            "here",
            "sh",
            &["-c", "cat; echo err >&2"],
            Some("in"),
            Duration::from_secs(5),
        )
        .unwrap();
        assert!(ended.success);
        assert_eq!(
            (ended.stdout.as_str(), ended.stderr.as_str()),
            ("in", "err\n")
        );
    }

    #[test]
    fn each_state_change_has_its_inverse_and_the_rest_none() {
        assert_eq!(
            Action::Service(Service::Pause).inverse(),
            Some(Action::Service(Service::Resume))
        );
        assert_eq!(
            Action::Service(Service::Kill).inverse(),
            Some(Action::Service(Service::Start))
        );
        let stop = Action::Signal {
            pid: "42".into(),
            signal: Signal::Stop,
        };
        assert_eq!(
            stop.inverse(),
            Some(Action::Signal {
                pid: "42".into(),
                signal: Signal::Cont
            })
        );
        let kill = Action::Signal {
            pid: "42".into(),
            signal: Signal::Kill,
        };
        assert_eq!(kill.inverse(), None, "a killed process has no undo");
        let filter = Action::AddFilter {
            family: "inet",
            table: "plab",
            rules: String::new(),
        };
        assert_eq!(
            filter.inverse(),
            Some(Action::RemoveFilter {
                family: "inet",
                table: "plab"
            })
        );
        assert_eq!(Action::Service(Service::Restart).inverse(), None);
    }

    #[test]
    fn the_labs_steps_read_as_the_docker_commands_they_are() {
        let h = Docker::new("patroni1");
        assert_eq!(
            h.describe(&Action::Service(Service::Kill)),
            "docker kill -s KILL patroni1"
        );
        assert_eq!(
            h.describe(&Action::Service(Service::Resume)),
            "docker unpause patroni1"
        );
        assert_eq!(
            h.describe(&Action::Signal {
                pid: "7".into(),
                signal: Signal::Cont
            }),
            "docker exec patroni1 kill -CONT 7"
        );
        assert_eq!(
            h.describe(&Action::RemoveFilter {
                family: "inet",
                table: "plab"
            }),
            "nft delete table inet plab in patroni1"
        );
    }
}
