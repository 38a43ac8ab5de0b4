//! The fault vocabulary: each fault is a typed value that knows how to inject itself, how to
//! undo itself (a [`Guard`], so the undo also runs on failure, panic and signals), what it
//! expects clients to see, and whether it needs the lab's containers. Adding a fault means a
//! variant here, its arms in the `match`es below, and its test.

use std::time::{Duration, Instant};

use patroni_lab_common::patroni;
use serde::Serialize;

use crate::cluster;
use crate::grade::Expectations;
use crate::guard::{Guard, Undo};
use crate::lab::{self, Lab, docker};
use crate::timeline::{Source, Timeline};

/// One fault.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case", tag = "fault")]
pub enum Fault {
    /// A planned switchover through Patroni's REST API.
    Switchover,
    /// A planned switchover inside a PgBouncer PAUSE/RESUME, HAProxy holding clients for it.
    SwitchoverPaused,
    /// PostgreSQL on the leader restarted by Patroni (`POST /restart`); no failover.
    RestartLeader,
    /// The leader's container stopped gracefully (SIGTERM), started again once another leads.
    StopLeader,
    /// The leader's container killed (SIGKILL), started again once another leads.
    KillLeader,
    /// The leader's postmaster killed (SIGKILL); Patroni and the container stay up.
    CrashPostgres,
    /// The leader's container frozen (`docker pause`) for `secs`, then thawed.
    FreezeLeader { secs: u64 },
    /// The leader cut off from etcd and the replica (packets dropped inside its container) for
    /// `secs`; PgBouncer still reaches it.
    PartitionLeader { secs: u64 },
    /// etcd stopped for `secs`, then started.
    EtcdLoss { secs: u64 },
    /// The replica's container stopped for `secs`, then started.
    ReplicaLoss { secs: u64 },
    /// PgBouncer restarted.
    PgbouncerRestart,
    /// HAProxy restarted.
    HaproxyRestart,
}

/// The Patroni timing that bounds what some faults cost, in seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Timing {
    pub ttl: u64,
    pub loop_wait: u64,
}

impl Timing {
    /// The lab's defaults (.env.example, profiles/default.ini).
    pub const DEFAULT: Timing = Timing {
        ttl: 30,
        loop_wait: 10,
    };

    /// The timing in Patroni's dynamic configuration (`GET /config`).
    pub fn from_config(config: &serde_json::Value) -> Result<Self, String> {
        let secs = |k: &str| {
            config[k]
                .as_f64()
                .filter(|v| v.is_finite() && *v >= 0.0)
                .map(|v| v.ceil() as u64)
                .ok_or_else(|| format!("GET /config has no {k} ({})", config[k]))
        };
        Ok(Self {
            ttl: secs("ttl")?,
            loop_wait: secs("loop_wait")?,
        })
    }
}

/// The names `scenario list` shows, with the default for faults that last N seconds.
pub const ALL: &[Fault] = &[
    Fault::Switchover,
    Fault::SwitchoverPaused,
    Fault::RestartLeader,
    Fault::StopLeader,
    Fault::KillLeader,
    Fault::CrashPostgres,
    Fault::FreezeLeader { secs: 40 },
    Fault::PartitionLeader { secs: 45 },
    Fault::EtcdLoss { secs: 25 },
    Fault::ReplicaLoss { secs: 10 },
    Fault::PgbouncerRestart,
    Fault::HaproxyRestart,
];

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FaultError {
    #[error("unknown scenario '{0}': `patroni-lab scenario list` shows them")]
    Unknown(String),
    #[error("{0}")]
    Step(String),
    /// A signal cut the fault short (it was undone): the run is not a measurement of it.
    #[error("interrupted by a signal {0}; the fault was undone")]
    Interrupted(String),
    /// The fault's effect was not seen: nothing says the cluster met the fault.
    #[error("the fault was not proven: {0}")]
    Unproven(String),
}

impl Fault {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Switchover => "switchover",
            Self::SwitchoverPaused => "switchover-paused",
            Self::RestartLeader => "restart-leader",
            Self::StopLeader => "stop-leader",
            Self::KillLeader => "kill-leader",
            Self::CrashPostgres => "crash-postgres",
            Self::FreezeLeader { .. } => "freeze-leader",
            Self::PartitionLeader { .. } => "partition-leader",
            Self::EtcdLoss { .. } => "etcd-loss",
            Self::ReplicaLoss { .. } => "replica-loss",
            Self::PgbouncerRestart => "pgbouncer-restart",
            Self::HaproxyRestart => "haproxy-restart",
        }
    }

    /// The fault named `name`, with `secs` for the faults that last (their default otherwise).
    pub fn parse(name: &str, secs: Option<u64>) -> Result<Self, FaultError> {
        let base = ALL
            .iter()
            .find(|f| f.name() == name)
            .ok_or_else(|| FaultError::Unknown(name.to_string()))?;
        Ok(match (*base, secs) {
            (Self::FreezeLeader { .. }, Some(secs)) => Self::FreezeLeader { secs },
            (Self::PartitionLeader { .. }, Some(secs)) => Self::PartitionLeader { secs },
            (Self::EtcdLoss { .. }, Some(secs)) => Self::EtcdLoss { secs },
            (Self::ReplicaLoss { .. }, Some(secs)) => Self::ReplicaLoss { secs },
            (f, _) => f,
        })
    }

    /// How long the fault lasts, for the faults that last.
    pub fn secs(&self) -> Option<u64> {
        match self {
            Self::FreezeLeader { secs }
            | Self::PartitionLeader { secs }
            | Self::EtcdLoss { secs }
            | Self::ReplicaLoss { secs } => Some(*secs),
            _ => None,
        }
    }

    /// What it does, in one line.
    pub fn describe(&self) -> String {
        match self {
            Self::Switchover => "planned switchover to the replica (POST /switchover)".into(),
            Self::SwitchoverPaused => {
                "PgBouncer PAUSE, switchover, RESUME once the new leader accepts a write".into()
            }
            Self::RestartLeader => {
                "PostgreSQL on the leader restarted by Patroni (POST /restart); no failover".into()
            }
            Self::StopLeader => {
                "docker stop of the leader (SIGTERM, graceful); started again once the other leads"
                    .into()
            }
            Self::KillLeader => {
                "docker kill -s KILL of the leader; started again once the other leads".into()
            }
            Self::CrashPostgres => {
                "SIGKILL to the leader's postmaster only; Patroni stays up".into()
            }
            Self::FreezeLeader { secs } => {
                format!("docker pause of the leader for {secs} s, then unpause")
            }
            Self::PartitionLeader { secs } => format!(
                "the leader cut off from etcd and the replica for {secs} s (nftables in its container); PgBouncer still reaches it"
            ),
            Self::EtcdLoss { secs } => format!("etcd stopped for {secs} s, then started"),
            Self::ReplicaLoss { secs } => {
                format!("docker stop of the replica for {secs} s, then started")
            }
            Self::PgbouncerRestart => "docker restart of PgBouncer".into(),
            Self::HaproxyRestart => "docker restart of HAProxy".into(),
        }
    }

    /// Whether it acts on the lab's containers (refused against a cluster given by URLs).
    pub fn needs_containers(&self) -> bool {
        !matches!(
            self,
            Self::Switchover | Self::RestartLeader | Self::SwitchoverPaused
        )
    }

    /// Whether it needs PgBouncer's admin console (given with `--pgbouncer` outside the lab).
    pub fn needs_pgbouncer(&self) -> bool {
        *self == Self::SwitchoverPaused
    }

    /// Client settings the scenario needs: a paused switchover holds every client for about
    /// the length of the switchover, so statement and connect time-outs shorter than that
    /// would turn the queueing into errors. Time-outs the user set stay. Returns what it
    /// changed, for the report (`None`: nothing).
    pub fn adjust_probe(
        &self,
        probe: &mut patroni_lab_probe::settings::Settings,
    ) -> Option<String> {
        if *self == Self::SwitchoverPaused {
            let floor = Duration::from_secs(15);
            let before = (probe.statement_timeout, probe.connect_timeout);
            probe.statement_timeout = probe.statement_timeout.max(floor);
            probe.connect_timeout = probe.connect_timeout.max(floor);
            if before != (probe.statement_timeout, probe.connect_timeout) {
                return Some(format!(
                    "{} raised the client time-outs to at least {} s (clients queue through the pause)",
                    self.name(),
                    floor.as_secs()
                ));
            }
        }
        None
    }

    /// What clients should see under the default timing (ttl 30 s, loop_wait 10 s).
    pub fn expectations(&self) -> Expectations {
        self.expectations_for(Timing::DEFAULT)
    }

    /// What clients should see, from measurements on this lab (2 cores; PATRONI.md,
    /// SCENARIOS.md) with a margin; where a Patroni setting sets the bound (a killed or frozen
    /// leader's lock lives up to ttl, a crash is noticed within loop_wait), from the live
    /// `timing`. Flags override each.
    pub fn expectations_for(&self, timing: Timing) -> Expectations {
        let Timing { ttl, loop_wait } = timing;
        let base = Expectations {
            max_window: None,
            max_stall: None,
            max_failed: None,
            max_in_doubt: None,
            max_lost: Some(0),
            max_split_brain: Some(0),
            // Graded everywhere: a fault that never moves the lock passes it as "lock kept".
            max_old_leader_writes: Some(0),
            whole_within: Duration::from_secs(90),
        };
        let s = Duration::from_secs;
        match self {
            // Measured 2.2-2.6 s (5 runs); the seed's settings give ~15 s.
            Self::Switchover => Expectations {
                max_window: Some(s(6)),
                ..base
            },
            // Clients queue instead of failing: nothing failed, nothing in doubt. Measured stall
            // 1.8 s, shorter than the plain switchover's window (2.1-2.6 s); bound 4 s.
            Self::SwitchoverPaused => Expectations {
                max_window: Some(s(6)),
                max_stall: Some(s(4)),
                max_failed: Some(0),
                max_in_doubt: Some(0),
                ..base
            },
            // A fast shutdown and start of the same primary: measured 1.2-1.5 s (3 runs).
            Self::RestartLeader => Expectations {
                max_window: Some(s(4)),
                ..base
            },
            // Measured 2.1-2.6 s (2.1 s by the runner).
            Self::StopLeader => Expectations {
                max_window: Some(s(6)),
                ..base
            },
            // ttl-bound: ttl + 15 s. Measured 26-31 s with ttl 30 / loop_wait 10 (26.9 s by
            // the runner); 12.5 s median, 17.8 s worst with fast's ttl 20 (bound 35 s).
            Self::KillLeader => Expectations {
                max_window: Some(s(ttl + 15)),
                whole_within: s(120),
                ..base
            },
            // Patroni notices at its next loop (within loop_wait) and restarts the postmaster
            // in place (primary_start_timeout 300 s): measured 10.8 s with loop_wait 10.
            Self::CrashPostgres => Expectations {
                max_window: Some(s(loop_wait + 10)),
                ..base
            },
            // The lock expires within ttl of the freeze; a shorter freeze is ridden out.
            // Measured (40 s freeze, ttl 30): 24.2 s.
            Self::FreezeLeader { secs } => Expectations {
                max_window: Some(s((*secs).min(ttl) + 10)),
                whole_within: s(120),
                ..base
            },
            // The cut-off leader cannot renew its lock and demotes itself (retry_timeout + a
            // loop); the replica takes over once the lock expires (ttl).
            Self::PartitionLeader { secs } => Expectations {
                max_window: Some(s((*secs).min(ttl) + 15)),
                whole_within: s(150),
                ..base
            },
            // The primary demotes itself ~retry_timeout + a loop after etcd goes, and leads
            // again once etcd is back. Measured (25 s loss): 21.7 s.
            Self::EtcdLoss { secs } => Expectations {
                max_window: Some(s(*secs + 10)),
                whole_within: s(120),
                ..base
            },
            // Asynchronous replication: clients of the primary do not notice.
            Self::ReplicaLoss { .. } => Expectations {
                max_window: Some(s(1)),
                max_failed: Some(0),
                max_in_doubt: Some(0),
                ..base
            },
            Self::PgbouncerRestart | Self::HaproxyRestart => Expectations {
                max_window: Some(s(10)),
                ..base
            },
        }
    }

    /// Injects the fault, holds it, and undoes it, recording each step. Blocking; `stopped`
    /// cuts a hold or a wait short (the undo still runs).
    pub fn run(
        &self,
        lab: &Lab,
        leader: &str,
        timeline: &Timeline,
        stopped: &dyn Fn() -> bool,
    ) -> Result<(), FaultError> {
        let replica = lab
            .nodes
            .iter()
            .map(|n| n.name.as_str())
            .find(|n| *n != leader)
            .ok_or_else(|| FaultError::Step("no replica to fail over to".into()))?
            .to_string();
        let step = |what: String| timeline.record(Source::Fault, what);
        let d = |args: &[&str]| {
            docker(args)
                .map(|_| ())
                .map_err(|e| FaultError::Step(e.to_string()))
        };
        match self {
            Self::Switchover => {
                let node = lab
                    .node(leader)
                    .ok_or_else(|| FaultError::Step(format!("no REST API for {leader}")))?;
                step(format!("switchover requested ({leader} -> {replica})"));
                let body = format!(r#"{{"leader": "{leader}", "candidate": "{replica}"}}"#);
                let (status, reply) = patroni::send_json(
                    &node.api_url,
                    "POST",
                    "/switchover",
                    &body,
                    Some(&lab.auth),
                    Duration::from_secs(30),
                )
                .map_err(|e| FaultError::Step(e.to_string()))?;
                if status != 200 {
                    return Err(FaultError::Step(format!(
                        "POST /switchover answered {status}: {}",
                        reply.trim()
                    )));
                }
                step(format!("switchover done: {}", reply.trim()));
                prove_new_holder(lab, leader, timeline, stopped)?;
            }
            Self::SwitchoverPaused => {
                paused_switchover(lab, leader, &replica, timeline)?;
                prove_new_holder(lab, leader, timeline, stopped)?;
            }
            Self::RestartLeader => {
                let node = lab
                    .node(leader)
                    .ok_or_else(|| FaultError::Step(format!("no REST API for {leader}")))?;
                let before = postmaster_start(&node.api_url)?;
                step(format!("restart requested ({leader})"));
                let (status, reply) = patroni::send_json(
                    &node.api_url,
                    "POST",
                    "/restart",
                    "{}",
                    Some(&lab.auth),
                    Duration::from_secs(60),
                )
                .map_err(err)?;
                if status != 200 {
                    return Err(FaultError::Step(format!(
                        "POST /restart answered {status}: {}",
                        reply.trim()
                    )));
                }
                step(format!("restart done: {}", reply.trim()));
                prove(timeline, "a new postmaster", PROOF_LIMIT, stopped, || {
                    let now = postmaster_start(&node.api_url).map_err(|e| e.to_string())?;
                    if now != before {
                        Ok(format!(
                            "{leader}'s postmaster started again at {now} (was {before})"
                        ))
                    } else {
                        Err(format!("postmaster_start_time still {before}"))
                    }
                })?;
            }
            Self::StopLeader | Self::KillLeader => {
                let guard = start_again(leader);
                if *self == Self::StopLeader {
                    step(format!("docker stop {leader}"));
                    d(&["stop", leader])?;
                    step(format!("{leader} stopped"));
                } else {
                    step(format!("docker kill -s KILL {leader}"));
                    d(&["kill", "--signal", "KILL", leader])?;
                }
                prove_status(timeline, leader, |s| s != "running", stopped)?;
                wait_new_leader(lab, leader, Duration::from_secs(120), stopped)?;
                step(guard.what().to_string());
                guard.undo().map_err(FaultError::Step)?;
            }
            Self::CrashPostgres => {
                let node = lab
                    .node(leader)
                    .ok_or_else(|| FaultError::Step(format!("no REST API for {leader}")))?;
                let before = postmaster_start(&node.api_url)?;
                let pid = docker(&[
                    "exec",
                    leader,
                    "head",
                    "-n",
                    "1",
                    "/var/lib/postgresql/data/pgdata/postmaster.pid",
                ])
                .map_err(err)?;
                let pid: u32 = pid
                    .trim()
                    .parse()
                    .map_err(|_| FaultError::Step(format!("postmaster.pid starts with '{pid}'")))?;
                step(format!("SIGKILL to {leader}'s postmaster (pid {pid})"));
                d(&["exec", leader, "kill", "-KILL", &pid.to_string()])?;
                // Gone, or a zombie Patroni has not reaped yet: either way no postmaster.
                let gone =
                    format!("[ ! -e /proc/{pid} ] || grep -q '^State:.*Z' /proc/{pid}/status");
                prove(
                    timeline,
                    "the postmaster gone",
                    PROOF_LIMIT,
                    stopped,
                    || {
                        docker(&["exec", leader, "sh", "-c", &gone])
                            .map(|_| format!("{leader}'s postmaster (pid {pid}) is gone"))
                            .map_err(|_| format!("pid {pid} still runs"))
                    },
                )?;
                // Patroni notices at its next loop (up to loop_wait later): its state leaves
                // running, or the postmaster it reports started anew.
                prove(
                    timeline,
                    "Patroni noticing the crash",
                    NOTICE_LIMIT,
                    stopped,
                    || {
                        let me = cluster::member_status(&node.api_url)?;
                        let state = me["state"].as_str().unwrap_or("?");
                        let start = me["postmaster_start_time"].as_str().unwrap_or_default();
                        if state != "running" {
                            Ok(format!("Patroni on {leader} noticed: state {state}"))
                        } else if start != before {
                            Ok(format!(
                                "Patroni on {leader} noticed: postmaster started again at {start}"
                            ))
                        } else {
                            Err(format!("{leader} still says running since {before}"))
                        }
                    },
                )?;
            }
            Self::FreezeLeader { secs } => {
                step(format!("docker pause {leader}"));
                let guard = Guard::arm(docker_undo(&["unpause", leader]));
                d(&["pause", leader])?;
                prove_status(timeline, leader, |s| s == "paused", stopped)?;
                let held = hold(Duration::from_secs(*secs), stopped);
                step(guard.what().to_string());
                guard.undo().map_err(FaultError::Step)?;
                held?;
            }
            Self::PartitionLeader { secs } => {
                // Every etcd member and every other node.
                let others = lab.nodes.iter().map(|n| n.name.as_str());
                let etcd = lab
                    .etcd
                    .iter()
                    .map(|e| container_ip(e).map(|ip| (ip, ETCD_PORT)))
                    .collect::<Result<Vec<_>, _>>()?;
                let members = others
                    .filter(|n| *n != leader)
                    .map(|n| container_ip(n).map(|ip| (ip, REST_PORT)))
                    .collect::<Result<Vec<_>, _>>()?;
                let targets: Vec<(String, u16)> = etcd.into_iter().chain(members).collect();
                let peers: Vec<&str> = targets.iter().map(|(ip, _)| ip.as_str()).collect();
                let set = peers.join(", ");
                let rules = format!(
                    "add table inet plab\n\
                     add chain inet plab in {{ type filter hook input priority 0; }}\n\
                     add chain inet plab out {{ type filter hook output priority 0; }}\n\
                     add rule inet plab in ip saddr {{ {set} }} drop\n\
                     add rule inet plab out ip daddr {{ {set} }} drop\n"
                );
                let guard = Guard::arm({
                    let leader = leader.to_string();
                    Undo::new(
                        format!("nft delete table inet plab in {leader}"),
                        move || {
                            docker(&[
                                "exec", "--user", "root", &leader, "nft", "delete", "table",
                                "inet", "plab",
                            ])
                            .map(|_| ())
                            .map_err(|e| e.to_string())
                        },
                    )
                });
                step(format!(
                    "{leader} cut off from etcd and the other members ({set})"
                ));
                d(&[
                    "exec",
                    "--user",
                    "root",
                    leader,
                    "sh",
                    "-c",
                    &format!("printf '{rules}' | nft -f -"),
                ])?;
                let proven = prove(timeline, "the partition", PROOF_LIMIT, stopped, || {
                    unreachable_from(leader, &targets)
                });
                let held = proven.and_then(|_| hold(Duration::from_secs(*secs), stopped));
                step(guard.what().to_string());
                guard.undo().map_err(FaultError::Step)?;
                held?;
            }
            Self::EtcdLoss { secs } => {
                let guard = start_again(lab::ETCD);
                step(format!("docker stop {}", lab::ETCD));
                d(&["stop", lab::ETCD])?;
                let proven = prove_status(timeline, lab::ETCD, |s| s != "running", stopped)
                    .and_then(|_| match &lab.etcd_url {
                        Some(url) => prove(timeline, "etcd refusing", PROOF_LIMIT, stopped, || {
                            refuses(url)
                        }),
                        None => Ok(()),
                    });
                let held = proven.and_then(|_| hold(Duration::from_secs(*secs), stopped));
                step(guard.what().to_string());
                guard.undo().map_err(FaultError::Step)?;
                held?;
            }
            Self::ReplicaLoss { secs } => {
                let guard = start_again(&replica);
                step(format!("docker stop {replica}"));
                d(&["stop", &replica])?;
                let proven = prove_status(timeline, &replica, |s| s != "running", stopped);
                let held = proven.and_then(|_| hold(Duration::from_secs(*secs), stopped));
                step(guard.what().to_string());
                guard.undo().map_err(FaultError::Step)?;
                held?;
            }
            Self::PgbouncerRestart | Self::HaproxyRestart => {
                let name = if *self == Self::PgbouncerRestart {
                    lab::PGBOUNCER
                } else {
                    lab::HAPROXY
                };
                let guard = start_again(name);
                let before = started_at(name)?;
                step(format!("docker restart {name}"));
                d(&["restart", name])?;
                step(format!("{name} restarted"));
                drop(guard);
                let now = started_at(name)?;
                if now == before {
                    return Err(FaultError::Unproven(format!(
                        "{name} still has the start time {before}"
                    )));
                }
                step(format!(
                    "proof: {name} started anew at {now} (was {before})"
                ));
            }
        }
        Ok(())
    }
}

fn docker_undo(args: &[&str]) -> Undo {
    let owned: Vec<String> = args.iter().map(|a| a.to_string()).collect();
    Undo::new(format!("docker {}", args.join(" ")), move || {
        let refs: Vec<&str> = owned.iter().map(String::as_str).collect();
        docker(&refs).map(|_| ()).map_err(|e| e.to_string())
    })
}

/// A container's address on the lab network.
pub fn container_ip(name: &str) -> Result<String, FaultError> {
    let ip = docker(&[
        "inspect",
        "-f",
        "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}",
        name,
    ])
    .map_err(err)?;
    if ip.is_empty() {
        Err(FaultError::Step(format!(
            "{name} has no address (is it running?)"
        )))
    } else {
        Ok(ip)
    }
}

/// A guard that starts `container` again (a no-op when it runs).
fn start_again(container: &str) -> Guard {
    Guard::arm(docker_undo(&["start", container]))
}

/// Holds a fault for `d`; a signal (`stopped`) cuts it short, which is an
/// [`FaultError::Interrupted`]: the fault did not last as planned.
fn hold(d: Duration, stopped: &dyn Fn() -> bool) -> Result<(), FaultError> {
    let start = Instant::now();
    let end = start + d;
    while Instant::now() < end {
        if stopped() {
            return Err(FaultError::Interrupted(format!(
                "{:.1} s into a hold of {} s",
                start.elapsed().as_secs_f64(),
                d.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100).min(end - Instant::now()));
    }
    Ok(())
}

/// How long a fault's effect may take to show (a container's state, a refused port, a new
/// postmaster after `POST /restart` returned): seconds at most, measured well under 1 s.
const PROOF_LIMIT: Duration = Duration::from_secs(10);
/// How long Patroni may take to notice a crashed postmaster: its next loop, at most loop_wait
/// (10 s by default, 14 s in the profiles here) plus a REST time-out or two.
const NOTICE_LIMIT: Duration = Duration::from_secs(30);
/// etcd's client port and Patroni's REST port inside the lab network.
const ETCD_PORT: u16 = lab::ETCD_CLIENT_PORT;
const REST_PORT: u16 = 8008;

/// Polls `check` until it sees the fault's effect (recorded as "proof: ..."), for at most
/// `limit`; else the fault is [`FaultError::Unproven`].
fn prove(
    timeline: &Timeline,
    what: &str,
    limit: Duration,
    stopped: &dyn Fn() -> bool,
    check: impl Fn() -> Result<String, String>,
) -> Result<(), FaultError> {
    let start = Instant::now();
    loop {
        let last = match check() {
            Ok(seen) => {
                timeline.record(Source::Fault, format!("proof: {seen}"));
                return Ok(());
            }
            Err(e) => e,
        };
        if stopped() {
            return Err(FaultError::Interrupted(format!("while waiting for {what}")));
        }
        if start.elapsed() >= limit {
            return Err(FaultError::Unproven(format!(
                "{what} not seen within {} s ({last})",
                limit.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A container's state as Docker has it (`running`, `paused`, `exited`, ...).
fn container_status(name: &str) -> Result<String, String> {
    docker(&["inspect", "-f", "{{.State.Status}}", name])
        .map(|s| s.trim().to_string())
        .map_err(|e| e.to_string())
}

/// Proves Docker has `container` in a state `wanted` accepts.
fn prove_status(
    timeline: &Timeline,
    container: &str,
    wanted: impl Fn(&str) -> bool,
    stopped: &dyn Fn() -> bool,
) -> Result<(), FaultError> {
    prove(
        timeline,
        &format!("{container}'s state"),
        PROOF_LIMIT,
        stopped,
        || {
            let status = container_status(container)?;
            if wanted(&status) {
                Ok(format!("{container} is {status} (docker inspect)"))
            } else {
                Err(format!("{container} is {status}"))
            }
        },
    )
}

/// When Docker last started `container`.
fn started_at(container: &str) -> Result<String, FaultError> {
    docker(&["inspect", "-f", "{{.State.StartedAt}}", container])
        .map(|s| s.trim().to_string())
        .map_err(err)
}

/// The postmaster start time a member's Patroni reports.
fn postmaster_start(api_url: &str) -> Result<String, FaultError> {
    let me = cluster::member_status(api_url).map_err(FaultError::Step)?;
    me["postmaster_start_time"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| FaultError::Step(format!("{api_url}/patroni has no postmaster_start_time")))
}

/// Proves another member than `old` holds the leader key.
fn prove_new_holder(
    lab: &Lab,
    old: &str,
    timeline: &Timeline,
    stopped: &dyn Fn() -> bool,
) -> Result<(), FaultError> {
    prove(
        timeline,
        "the leader key moving",
        PROOF_LIMIT,
        stopped,
        || match cluster::lock_holder(lab)? {
            Some(h) if h != old => Ok(format!("the leader key is held by {h}")),
            Some(h) => Err(format!("the leader key is still held by {h}")),
            None => Err("the leader key is free".into()),
        },
    )
}

/// Whether the TCP port at `url` (`http://host:port`) refuses a connection.
fn refuses(url: &str) -> Result<String, String> {
    use std::net::ToSocketAddrs;
    let host_port = url.trim_start_matches("http://").trim_end_matches('/');
    let addr = host_port
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("{host_port} has no address"))?;
    match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
        Ok(_) => Err(format!("{host_port} still accepts connections")),
        Err(e) => Ok(format!("etcd's client port {host_port} refuses: {e}")),
    }
}

/// From inside `container`, tries a TCP connect (1 s) to each target; proof when none answers.
fn unreachable_from(container: &str, targets: &[(String, u16)]) -> Result<String, String> {
    let list = targets
        .iter()
        .map(|(ip, port)| format!("('{ip}',{port})"))
        .collect::<Vec<_>>()
        .join(",");
    let script = format!(
        "import socket\nfor a in [{list}]:\n    try:\n        socket.create_connection(a, 1).close(); print('%s:%d' % a)\n    except OSError:\n        pass\n"
    );
    let reached =
        docker(&["exec", container, "python3", "-c", &script]).map_err(|e| e.to_string())?;
    if reached.trim().is_empty() {
        let all: Vec<String> = targets.iter().map(|(ip, p)| format!("{ip}:{p}")).collect();
        Ok(format!(
            "from {container}, {} do not answer",
            all.join(", ")
        ))
    } else {
        Err(format!(
            "from {container}, {} still answer",
            reached.split_whitespace().collect::<Vec<_>>().join(", ")
        ))
    }
}

/// Waits until a member other than `old` holds the leader lock and runs.
fn wait_new_leader(
    lab: &Lab,
    old: &str,
    limit: Duration,
    stopped: &dyn Fn() -> bool,
) -> Result<String, FaultError> {
    let start = Instant::now();
    loop {
        if stopped() {
            return Err(FaultError::Interrupted(
                "while waiting for a new leader".into(),
            ));
        }
        if let Ok(l) = cluster::leader(lab) {
            if l != old {
                return Ok(l);
            }
        }
        if start.elapsed() >= limit {
            return Err(FaultError::Step(format!(
                "no other member took the lead within {} s",
                limit.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// How long `PAUSE postgres` may wait for running transactions to end.
const PAUSE_WAIT_S: u64 = 10;
/// How long the paused switchover waits, once paused, for PgBouncer to run with the new leader
/// and for that leader to accept a write on a direct connection.
const PAUSE_LIMIT_S: u64 = 15;
const PAUSE_LIMIT: Duration = Duration::from_secs(PAUSE_LIMIT_S);
/// How long, after RESUME, the hold line waits for HAProxy to mark the new leader's line UP
/// (inter x rise: 1 s with every profile here).
const CHECK_UP_LIMIT_S: u64 = 5;
/// How long PgBouncer may stay paused (and HAProxy hold clients) if the runner dies
/// mid-pause: the dead man's switch inside the containers resumes it after this. Derived from
/// the pause's own limits, so it never fires during a legitimate pause: the PAUSE wait, the
/// wait for the new leader, the wait for its check, and 5 s for the steps between.
pub const PAUSE_DEAD_MAN: Duration =
    Duration::from_secs(PAUSE_WAIT_S + PAUSE_LIMIT_S + CHECK_UP_LIMIT_S + 5);

fn err(e: impl ToString) -> FaultError {
    FaultError::Step(e.to_string())
}

/// Runs one PgBouncer admin command from this (blocking) thread.
fn pgbouncer_admin(lab: &Lab, command: &str) -> Result<(), FaultError> {
    patroni_lab_callback::pgbouncer::admin_command_blocking(
        &lab.pgbouncer_admin,
        command,
        Duration::from_secs(PAUSE_WAIT_S),
    )
    .map(|_| ())
    .map_err(err)
}

/// A write on `node`'s PostgreSQL itself (a transaction id assigned: not in recovery), on a
/// direct connection; for a cluster given by URLs, its Patroni saying it runs as primary.
fn direct_write(
    lab: &Lab,
    node: &str,
    runtime: &tokio::runtime::Runtime,
) -> Result<String, String> {
    let n = lab.node(node).ok_or_else(|| format!("no member {node}"))?;
    match &n.pg_url {
        Some(url) => {
            let rows = runtime.block_on(cluster::query(
                url,
                &lab.password,
                "SELECT txid_current()::text",
            ))?;
            let txid = rows.first().and_then(|r| r.first().cloned().flatten());
            Ok(format!(
                "transaction {} on a direct connection",
                txid.unwrap_or_default()
            ))
        }
        None => {
            let me = cluster::member_status(&n.api_url)?;
            match (me["role"].as_str(), me["state"].as_str()) {
                (Some("primary" | "master"), Some("running")) => {
                    Ok("its Patroni says primary, running (no direct connection given)".into())
                }
                (role, state) => Err(format!("{node} says {role:?} ({state:?})")),
            }
        }
    }
}

/// Sends one command to HAProxy's runtime API; any answer is an error (the commands used
/// here answer nothing when they work).
fn haproxy_runtime(command: &str) -> Result<(), String> {
    let out = lab::haproxy_runtime(command).map_err(|e| e.to_string())?;
    if out.trim().is_empty() {
        Ok(())
    } else {
        Err(format!("HAProxy said: {}", out.trim()))
    }
}

/// The target pgbouncer.ini names, read under the callback's file lock, so a target seen here
/// has been RELOADed already (the callback holds the lock through its RELOAD).
fn ini_target() -> Result<String, String> {
    let script = format!(
        "flock {} cat {}",
        lab::PGBOUNCER_INI_LOCK,
        lab::PGBOUNCER_INI
    );
    let text = docker(&["exec", lab::PGBOUNCER, "sh", "-c", &script]).map_err(|e| e.to_string())?;
    patroni_lab_callback::ini::targets(&text)
        .into_iter()
        .map(|(_, t)| t.host)
        .next()
        .ok_or_else(|| "pgbouncer.ini names no host".to_string())
}

/// Arms a dead man's switch inside `container`: unless the runner removes `flag` first, `then`
/// runs after [`PAUSE_DEAD_MAN`], also if the runner was SIGKILLed.
fn dead_mans_switch(container: &str, flag: &str, then: &str) -> Result<(), FaultError> {
    docker(&["exec", container, "touch", flag]).map_err(err)?;
    let script = format!(
        "sleep {}; if [ -e {flag} ]; then rm -f {flag}; {then}; fi",
        PAUSE_DEAD_MAN.as_secs()
    );
    docker(&["exec", "-d", container, "bash", "-c", &script]).map_err(err)?;
    Ok(())
}

/// Arms the dead man's switch that resumes PgBouncer if the runner dies mid-pause, and returns
/// what disarms it. In the lab it runs inside the PgBouncer container (`docker exec -d`); for
/// another cluster it is a process of its own (`patroni-lab scenario resume-after`, in its own
/// process group, so a SIGKILL of the runner leaves it running).
fn arm_pause_switch(lab: &Lab, token: &str) -> Result<Box<dyn Fn() + Send + Sync>, FaultError> {
    if lab.containers {
        let flag = format!("/tmp/plab-pause-{token}");
        dead_mans_switch(
            lab::PGBOUNCER,
            &flag,
            "PGPASSWORD=$POSTGRES_PASSWORD psql -h 127.0.0.1 -p 6432 -U ${POSTGRES_USER:-postgres} -d pgbouncer -c 'RESUME postgres'",
        )?;
        return Ok(Box::new(move || {
            let _ = docker(&["exec", lab::PGBOUNCER, "rm", "-f", &flag]);
        }));
    }
    use std::os::unix::process::CommandExt;
    let flag = std::env::temp_dir().join(format!("plab-pause-{token}"));
    std::fs::write(&flag, b"").map_err(err)?;
    let admin = &lab.pgbouncer_admin;
    let exe = std::env::current_exe().map_err(err)?;
    std::process::Command::new(exe)
        .args(["scenario", "resume-after", "--secs"])
        .arg(PAUSE_DEAD_MAN.as_secs().to_string())
        .arg("--flag")
        .arg(&flag)
        .args([
            "--host",
            &admin.host,
            "--port",
            &admin.port.to_string(),
            "--user",
            &admin.user,
        ])
        .env("PGBOUNCER_ADMIN_PASSWORD", &admin.password)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(err)?;
    Ok(Box::new(move || {
        let _ = std::fs::remove_file(&flag);
    }))
}

/// The dead man's switch itself (`patroni-lab scenario resume-after`): after `wait`, unless
/// `flag` is gone, removes it and sends `RESUME postgres`.
pub fn resume_after(
    wait: Duration,
    flag: &std::path::Path,
    admin: &patroni_lab_callback::pgbouncer::AdminTarget,
) -> Result<bool, String> {
    std::thread::sleep(wait);
    if std::fs::remove_file(flag).is_err() {
        return Ok(false);
    }
    patroni_lab_callback::pgbouncer::admin_command_blocking(
        admin,
        "RESUME postgres",
        Duration::from_secs(10),
    )
    .map(|_| true)
    .map_err(|e| e.to_string())
}

/// The zero-error planned switchover: HAProxy holds clients, PgBouncer pauses (waiting for
/// running transactions), the switchover runs, and PgBouncer resumes once its file names the
/// new leader. Every step is a guard; a dead man's switch in each container undoes it if the
/// runner dies.
fn paused_switchover(
    lab: &Lab,
    leader: &str,
    replica: &str,
    timeline: &Timeline,
) -> Result<(), FaultError> {
    let step = |what: String| timeline.record(Source::Fault, what);
    let token = format!("{}-{}", std::process::id(), crate::timeline::unix_us());
    let disarm_pause = arm_pause_switch(lab, &token)?;
    // HAProxy's hold line: only in the lab (another cluster's proxy is its own business; its
    // clients must reach PgBouncer while no node says /primary).
    let unhold = if lab.containers {
        let hold_flag = format!("/tmp/plab-hold-{token}");
        dead_mans_switch(
            lab::HAPROXY,
            &hold_flag,
            &format!(
                "exec 3<>{}; echo 'disable server {}' >&3",
                lab::HAPROXY_RUNTIME,
                lab::HAPROXY_HOLD_LINE
            ),
        )?;
        let guard = Guard::arm(Undo::new("HAProxy hold line disabled", move || {
            let _ = docker(&["exec", lab::HAPROXY, "rm", "-f", &hold_flag]);
            haproxy_runtime(&format!("disable server {}", lab::HAPROXY_HOLD_LINE))
        }));
        haproxy_runtime(&format!("enable server {}", lab::HAPROXY_HOLD_LINE)).map_err(err)?;
        step("HAProxy hold line enabled".into());
        Some(guard)
    } else {
        None
    };
    step(format!(
        "dead man's switch armed (RESUME in {} s unless disarmed)",
        PAUSE_DEAD_MAN.as_secs()
    ));
    let resume = {
        let lab = lab.clone();
        Guard::arm(Undo::new("RESUME postgres", move || {
            disarm_pause();
            pgbouncer_admin(&lab, "RESUME postgres").map_err(|e| e.to_string())
        }))
    };
    step("PAUSE postgres sent".into());
    pgbouncer_admin(lab, "PAUSE postgres")?;
    step("PAUSE postgres done (no transaction running)".into());
    let node = lab
        .node(leader)
        .ok_or_else(|| FaultError::Step(format!("no REST API for {leader}")))?
        .clone();
    step(format!("switchover requested ({leader} -> {replica})"));
    let body = format!(r#"{{"leader": "{leader}", "candidate": "{replica}"}}"#);
    // The REST call returns a few hundred ms after the new leader's callback has pointed
    // PgBouncer at it: resume as soon as PgBouncer runs with the new target.
    let switchover = {
        let auth = lab.auth.clone();
        std::thread::spawn(move || {
            patroni::send_json(
                &node.api_url,
                "POST",
                "/switchover",
                &body,
                Some(&auth),
                Duration::from_secs(30),
            )
        })
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(err)?;
    let start = Instant::now();
    loop {
        if let Ok(t) = runtime.block_on(cluster::pgbouncer_target(lab, false)) {
            if t == replica {
                break;
            }
        }
        if lab.containers && (switchover.is_finished() || start.elapsed() >= PAUSE_LIMIT) {
            // Either it failed, or PgBouncer's entry is missing: read the file under the lock.
            match ini_target() {
                Ok(t) if t == replica => break,
                _ if start.elapsed() >= PAUSE_LIMIT => {
                    return Err(FaultError::Step(format!(
                        "PgBouncer was not pointed at {replica} within {} s",
                        PAUSE_LIMIT.as_secs()
                    )));
                }
                _ => {}
            }
        }
        if !lab.containers && start.elapsed() >= PAUSE_LIMIT {
            return Err(FaultError::Step(format!(
                "PgBouncer was not pointed at {replica} within {} s",
                PAUSE_LIMIT.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    step(format!(
        "PgBouncer runs with {replica} (pgbouncer.ini reloaded)"
    ));
    // RESUME onto a primary that works: the new leader must accept a write on a direct
    // connection first (its name in pgbouncer.ini comes right after `pg_ctl promote`).
    let accepted = loop {
        match direct_write(lab, replica, &runtime) {
            Ok(seen) => break seen,
            Err(e) if start.elapsed() >= PAUSE_LIMIT => {
                return Err(FaultError::Step(format!(
                    "{replica} did not accept a write within {} s: {e}",
                    PAUSE_LIMIT.as_secs()
                )));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    step(format!("{replica} accepted a write: {accepted}"));
    resume.undo().map_err(err)?;
    step("RESUME postgres".into());
    if let Some(unhold) = unhold {
        // Hold clients until HAProxy routes through the new leader's own line.
        let up_since = Instant::now();
        let up = loop {
            match cluster::haproxy_lines(lab) {
                Ok(lines)
                    if lines
                        .iter()
                        .any(|(s, st)| s == replica && st.starts_with("UP")) =>
                {
                    break Ok(());
                }
                Ok(lines) if up_since.elapsed() >= Duration::from_secs(CHECK_UP_LIMIT_S) => {
                    break Err(format!("HAProxy's lines: {lines:?}"));
                }
                Err(e) if up_since.elapsed() >= Duration::from_secs(CHECK_UP_LIMIT_S) => {
                    break Err(e);
                }
                _ => std::thread::sleep(Duration::from_millis(20)),
            }
        };
        if up.is_ok() {
            step(format!("HAProxy marks {replica} UP"));
        }
        unhold.undo().map_err(err)?;
        step("HAProxy hold line disabled".into());
        up.map_err(|e| {
            FaultError::Step(format!(
                "HAProxy did not mark {replica} UP within {CHECK_UP_LIMIT_S} s ({e})"
            ))
        })?;
    }
    let (status, reply) = switchover
        .join()
        .map_err(|_| FaultError::Step("the switchover request panicked".into()))?
        .map_err(err)?;
    if status != 200 {
        return Err(FaultError::Step(format!(
            "POST /switchover answered {status}: {}",
            reply.trim()
        )));
    }
    step(format!("switchover done: {}", reply.trim()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_fault_has_a_unique_name_that_parses_back() {
        for f in ALL {
            assert_eq!(Fault::parse(f.name(), None).unwrap(), *f);
            assert!(!f.describe().is_empty());
            assert_eq!(ALL.iter().filter(|g| g.name() == f.name()).count(), 1);
        }
        assert_eq!(
            Fault::parse("freeze-leader", Some(8)).unwrap(),
            Fault::FreezeLeader { secs: 8 }
        );
        assert_eq!(
            Fault::parse("nope", None).unwrap_err().to_string(),
            "unknown scenario 'nope': `patroni-lab scenario list` shows them"
        );
    }

    #[test]
    fn ttl_bound_faults_are_graded_against_the_live_ttl() {
        let fast = Timing {
            ttl: 20,
            loop_wait: 5,
        };
        let w = |f: Fault, t: Timing| f.expectations_for(t).max_window.unwrap().as_secs();
        assert_eq!(w(Fault::KillLeader, Timing::DEFAULT), 45);
        assert_eq!(w(Fault::KillLeader, fast), 35);
        assert_eq!(w(Fault::FreezeLeader { secs: 40 }, fast), 30);
        assert_eq!(w(Fault::CrashPostgres, fast), 15);
        // A fault no setting bounds keeps its measured bound.
        assert_eq!(
            w(Fault::Switchover, fast),
            w(Fault::Switchover, Timing::DEFAULT)
        );
        let config = serde_json::json!({"ttl": 20, "loop_wait": 5, "retry_timeout": 3});
        assert_eq!(Timing::from_config(&config), Ok(fast));
        assert!(Timing::from_config(&serde_json::json!({})).is_err());
    }

    #[test]
    fn every_fault_expects_no_loss_and_no_split_brain() {
        for f in ALL {
            let e = f.expectations();
            assert_eq!(e.max_lost, Some(0), "{}", f.name());
            assert_eq!(e.max_split_brain, Some(0), "{}", f.name());
            assert_eq!(e.max_old_leader_writes, Some(0), "{}", f.name());
            assert!(e.max_window.is_some(), "{}", f.name());
        }
    }
}
