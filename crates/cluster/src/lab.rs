//! The lab's names, each said once: containers, the Patroni REST APIs and the client endpoint
//! as the host reaches them, the credentials (from the environment, as `make` exports `.env`),
//! and where each service runs ([`Lab::host`]: the lab's containers, as `crate::host` reaches
//! them).

use std::sync::Arc;
use std::time::Duration;

use crate::host::{Host, HostError};

use patroni_lab_callback::pgbouncer::AdminTarget;
use patroni_lab_common::patroni::Auth;

/// The Patroni members (container and member names), each one's REST API port and direct
/// PostgreSQL port on the host: the lab runs the first two, the 3-node topology
/// (docker-compose.3nodes.yml) all three.
pub const NODES: [(&str, u16, u16); 3] = [
    ("patroni1", 8008, 15432),
    ("patroni2", 8009, 15433),
    ("patroni3", 8010, 15434),
];
/// etcd's client port, published by the first etcd member on `ETCD_BIND_ADDRESS`.
pub const ETCD_CLIENT_PORT: u16 = 2379;
/// HAProxy's client port, published on the lab's bind address: the endpoint clients use.
pub const CLIENT_PORT: u16 = 5432;
/// HAProxy's reader port: a replica within the profile's lag, else the leader.
pub const READER_PORT: u16 = 5433;
/// Patroni's scope (`CLUSTER_SCOPE` in the containers) and etcd namespace (Patroni's default).
pub const SCOPE: &str = "postgres-cluster";
pub const NAMESPACE: &str = "/service/";
/// Every container of the 2-node lab.
pub const SERVICES: [&str; 5] = ["etcd", "patroni1", "patroni2", "pgbouncer", "haproxy"];
/// The containers the 3-node topology adds.
pub const SERVICES_3NODES: [&str; 3] = ["etcd2", "etcd3", "patroni3"];
/// The etcd container (the only etcd member of the 2-node lab, one of three in the 3-node one).
pub const ETCD: &str = "etcd";
/// The etcd members of the 3-node topology.
pub const ETCD_MEMBERS: [&str; 3] = ["etcd", "etcd2", "etcd3"];
/// The topology: `LAB_NODES=3` (the overlay), else the 2-node lab.
pub fn three_nodes() -> bool {
    std::env::var("LAB_NODES").is_ok_and(|n| n.trim() == "3")
}
/// PostgreSQL's data directory in a member's container (Patroni's `data_dir`) and its
/// `pg_controldata`, which reads the control file also while PostgreSQL is down.
pub const PGDATA: &str = "/var/lib/postgresql/data/pgdata";
pub const PG_CONTROLDATA: &str = "/usr/lib/postgresql/17/bin/pg_controldata";
/// PostgreSQL's pg_ctl in the Patroni image.
pub const PG_CTL: &str = "/usr/lib/postgresql/17/bin/pg_ctl";
/// The PgBouncer container, and its port (the admin console's too).
pub const PGBOUNCER: &str = "pgbouncer";
pub const PGBOUNCER_PORT: u16 = patroni_lab_callback::pgbouncer::PORT;
/// The HAProxy container.
pub const HAPROXY: &str = "haproxy";
/// How long one REST call may take.
pub const REST_TIMEOUT: Duration = Duration::from_secs(2);
/// The shared pgbouncer.ini inside the PgBouncer container, and the callback's lock beside it.
pub const PGBOUNCER_INI: &str = patroni_lab_callback::paths::SHARED_INI;
pub const PGBOUNCER_INI_LOCK: &str = patroni_lab_callback::paths::SHARED_INI_LOCK;
/// HAProxy's runtime API inside its container, and the line a paused switchover enables.
pub const HAPROXY_RUNTIME: &str = "/dev/tcp/127.0.0.1/9999";
pub const HAPROXY_HOLD_LINE: &str = "postgres_primary/hold";
/// HAProxy's backend of the replicas that serve readers (5433).
pub const HAPROXY_READERS: &str = "replicas";
/// HAProxy's stats page (CSV at `/;csv`), published on the lab's address.
pub const HAPROXY_STATS_PORT: u16 = 7001;
/// HAProxy's profile file (read before haproxy.cfg), on the haproxy-profile volume.
pub const HAPROXY_PROFILE: &str = "/etc/haproxy/profile/profile.cfg";

/// One Patroni member: its container (also its member name), its REST API from the host, and
/// its PostgreSQL reached directly (not through PgBouncer) where that is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    pub name: String,
    pub api_url: String,
    pub pg_url: Option<String>,
}

/// Where the cluster is and how to reach it.
#[derive(Debug, Clone)]
pub struct Lab {
    pub nodes: Vec<Node>,
    /// The etcd containers.
    pub etcd: Vec<String>,
    /// etcd's client API as the host reaches it (`None`: a cluster given by URLs, whose DCS
    /// is read through Patroni's REST API instead).
    pub etcd_url: Option<String>,
    /// The endpoint clients use (HAProxy).
    pub client_url: String,
    /// The reader endpoint (HAProxy's 5433), for the probe's reads after each write (`None`:
    /// a cluster given by URLs, not given one).
    pub reader_url: Option<String>,
    /// PgBouncer's admin console (database `pgbouncer`; `None`: not given).
    pub pgbouncer_admin_url: Option<String>,
    /// HAProxy's stats page as the host reaches it (`None`: not read).
    pub haproxy_stats_url: Option<String>,
    pub pgbouncer_admin: Option<AdminTarget>,
    pub password: String,
    pub auth: Auth,
    /// Whether the cluster is this lab's containers (faults that need `docker` work) or an
    /// existing cluster addressed by URLs.
    pub containers: bool,
}

impl Lab {
    /// Where `name` (a member, etcd, PgBouncer, HAProxy) runs, for the faults and the doctor
    /// to act on. `Err` for a cluster given by URLs: no host was given for it.
    pub fn host(&self, name: &str) -> Result<Arc<dyn Host>, String> {
        if self.containers {
            Ok(container(name))
        } else {
            Err(format!(
                "{name}: no host to act on (a cluster given by URLs); this needs the lab's containers"
            ))
        }
    }

    /// The probe's reader endpoint: the lab's 5433 (`Err`: a cluster given by URLs, which
    /// gave none).
    pub fn reader(&self) -> Result<patroni_lab_probe::settings::Reader, String> {
        let url = self.reader_url.clone().ok_or(
            "readers need a reader endpoint, and a cluster given by --patroni has none here",
        )?;
        Ok(patroni_lab_probe::settings::Reader {
            conninfo: url.clone(),
            endpoint: url,
        })
    }

    /// PgBouncer's admin console, when it was given (always in the lab).
    pub fn pgbouncer(&self) -> Result<&AdminTarget, String> {
        self.pgbouncer_admin
            .as_ref()
            .ok_or_else(|| "PgBouncer's admin console was not given (--pgbouncer)".to_string())
    }

    /// The parts of the cluster that were not given, so are not checked, each with what that
    /// leaves out (empty for the lab).
    pub fn not_given(&self) -> Vec<String> {
        let mut out = Vec::new();
        if self.haproxy_stats_url.is_none() {
            out.push("HAProxy (its stats page was not given): which lines it routes to, its moments in a window's phases".to_string());
        }
        if self.pgbouncer_admin.is_none() {
            out.push("PgBouncer (its admin console was not given: --pgbouncer): paused or not, where it sends clients".to_string());
        }
        if self.nodes.iter().any(|n| n.pg_url.is_none()) {
            out.push("the members' PostgreSQL directly (no addresses given): divergence of a replica's WAL from the leader's".to_string());
        }
        if self.etcd_url.is_none() {
            out.push(
                "etcd directly: the leader key and its lease are read through Patroni's REST API"
                    .to_string(),
            );
        }
        out
    }

    /// The lab as `make up` starts it, with settings from the environment (`.env`).
    pub fn from_env() -> Self {
        let var = |k: &str, d: &str| std::env::var(k).unwrap_or_else(|_| d.to_string());
        let bind = var("LAB_BIND_ADDRESS", "127.0.0.1");
        let host = if bind == "0.0.0.0" {
            "127.0.0.1".into()
        } else {
            bind
        };
        let user = var("POSTGRES_USER", "postgres");
        let etcd_bind = var("ETCD_BIND_ADDRESS", "127.0.0.1");
        let etcd_host = if etcd_bind == "0.0.0.0" {
            "127.0.0.1".into()
        } else {
            etcd_bind
        };
        let (nodes, etcd) = if three_nodes() {
            (&NODES[..], &ETCD_MEMBERS[..])
        } else {
            (&NODES[..2], &ETCD_MEMBERS[..1])
        };
        Self {
            etcd: etcd.iter().map(|e| (*e).to_string()).collect(),
            etcd_url: Some(format!("http://{etcd_host}:{ETCD_CLIENT_PORT}")),
            nodes: nodes
                .iter()
                .map(|(name, api, pg)| Node {
                    name: (*name).into(),
                    api_url: format!("http://{host}:{api}"),
                    pg_url: Some(format!("postgres://{user}@{host}:{pg}/postgres")),
                })
                .collect(),
            client_url: format!("postgres://{user}@{host}:{CLIENT_PORT}/postgres"),
            reader_url: Some(format!("postgres://{user}@{host}:{READER_PORT}/postgres")),
            pgbouncer_admin_url: Some(format!(
                "postgres://{user}@{host}:{PGBOUNCER_PORT}/pgbouncer"
            )),
            haproxy_stats_url: Some(format!("http://{host}:{HAPROXY_STATS_PORT}")),
            pgbouncer_admin: Some(AdminTarget {
                host: host.clone(),
                port: PGBOUNCER_PORT,
                user: user.clone(),
                password: var("POSTGRES_PASSWORD", "postgres"),
            }),
            password: var("POSTGRES_PASSWORD", "postgres"),
            auth: Auth {
                user: var("PATRONI_API_USER", "patroni"),
                password: var("PATRONI_API_PASSWORD", "patroni"),
            },
            containers: true,
        }
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The members of an existing cluster (`--patroni` URLs, each member named by its own
    /// API) in place of the lab's: no containers, no etcd, no direct PostgreSQL address, and
    /// none of this lab's HAProxy, reader endpoint or PgBouncer (what the command line gives
    /// in their place is set after: `--url`, `--pgbouncer`). The client endpoint stays the
    /// command line's default until `--url` replaces it.
    pub fn with_members_at(mut self, api_urls: &[String]) -> Result<Self, String> {
        self.nodes = api_urls
            .iter()
            .map(|url| {
                let api_url = url.trim_end_matches('/').to_string();
                member_name(&api_url).map(|name| Node {
                    name,
                    api_url,
                    pg_url: None,
                })
            })
            .collect::<Result<_, _>>()?;
        self.containers = false;
        self.etcd_url = None;
        self.haproxy_stats_url = None;
        self.reader_url = None;
        self.pgbouncer_admin = None;
        self.pgbouncer_admin_url = None;
        Ok(self)
    }

    /// Every container of this lab (none for a cluster given by URLs).
    pub fn services(&self) -> Vec<String> {
        if !self.containers {
            return Vec::new();
        }
        let mut all: Vec<String> = SERVICES.iter().map(|s| s.to_string()).collect();
        if self.nodes.len() == NODES.len() {
            all.extend(SERVICES_3NODES.iter().map(|s| s.to_string()));
        }
        all
    }

    /// Each of this lab's containers that is not running, as "etcd is exited" or "haproxy: no
    /// such container" (empty for a cluster given by URLs).
    pub fn not_running(&self) -> Vec<String> {
        let mut down = Vec::new();
        for service in self.services() {
            match container(&service).state() {
                Ok(crate::host::State::Running) => {}
                Ok(status) => down.push(format!("{service} is {status}")),
                Err(_) => down.push(format!("{service}: no such container")),
            }
        }
        down
    }
}

/// The pid of the replica's WAL replay in `container`: its one `startup` process
/// (`postgres: <cluster>: startup recovering ...`).
pub fn startup_pid(host: &dyn Host) -> Result<String, String> {
    let container = host.name();
    let script = "for p in /proc/[0-9]*; do case \"$(tr '\\0' ' ' < $p/cmdline 2>/dev/null)\" in 'postgres: '*': startup '*) echo ${p#/proc/};; esac; done; true";
    let pids = host.sh(script).map_err(|e| e.to_string())?;
    let pids: Vec<&str> = pids.split_whitespace().collect();
    match pids.as_slice() {
        [one] => Ok(one.to_string()),
        [] => Err(format!(
            "no startup process in {container} (is it a running replica?)"
        )),
        many => Err(format!(
            "{} startup processes in {container}: {}",
            many.len(),
            many.join(", ")
        )),
    }
}

/// The postmaster's pid on `host`: the first line of its `postmaster.pid`.
pub fn postmaster_pid(host: &dyn Host) -> Result<String, String> {
    let file = format!("{PGDATA}/postmaster.pid");
    let pid = host
        .run(&["head", "-n", "1", &file])
        .map_err(|e| e.to_string())?;
    let pid = pid.trim().to_string();
    match pid.parse::<u32>() {
        Ok(_) => Ok(pid),
        Err(_) => Err(format!(
            "{}: postmaster.pid starts with '{pid}'",
            host.name()
        )),
    }
}

/// The pid of the Patroni daemon in `container`, whose REST API and HA loop stop with it.
/// Running as PID 1, Patroni forks itself and the parent only reaps zombies: the daemon is the
/// other `patroni` process (PID 1 itself only when there is no other).
pub fn patroni_pid(host: &dyn Host) -> Result<String, String> {
    let container = host.name();
    let script = "for p in /proc/[0-9]*; do [ \"$(cat $p/comm 2>/dev/null)\" = patroni ] && echo ${p#/proc/}; done; true";
    let pids = host.sh(script).map_err(|e| e.to_string())?;
    let pids: Vec<&str> = pids.split_whitespace().collect();
    pids.iter()
        .find(|p| **p != "1")
        .or(pids.first())
        .map(|p| p.to_string())
        .ok_or_else(|| format!("no patroni process in {container}"))
}

/// The packet-filter table the partition fault adds (family, name), and only it.
pub const FILTER_TABLE: (&str, &str) = ("inet", "plab");

/// Whether `container` holds the partition fault's packet filter. `Err` when nft could not be
/// asked (the container is down, nft is missing): that is not "no filter".
pub fn packet_filter_present(host: &dyn Host) -> Result<bool, HostError> {
    let tables = host.run_root(&["nft", "list", "tables"])?;
    let wanted = format!("table {} {}", FILTER_TABLE.0, FILTER_TABLE.1);
    Ok(tables.lines().any(|l| l.trim() == wanted))
}

/// The devices of `host` whose root qdisc is thin-link's cap. `Err` when tc could not be asked
/// (the container is down, tc is missing): that is not "no cap".
pub fn caps_present(host: &dyn Host) -> Result<Vec<String>, HostError> {
    host.run_root(&["tc", "qdisc", "show"])
        .map(|all| crate::shaping::our_devices(&all))
}

/// The processes stopped by a signal (state T) in `container`, as "pid 38 (postgres: ...:
/// startup ...)": what a fault that SIGSTOPs one (freeze-patroni, lag-replica) leaves behind
/// when its undo never ran.
pub fn stopped_processes(host: &dyn Host) -> Result<Vec<(String, String)>, HostError> {
    let script = "for p in /proc/[0-9]*; do case \"$(sed -n 's/^State:[[:space:]]*//p' $p/status 2>/dev/null)\" in T*) echo \"${p#/proc/} $(tr '\\0' ' ' < $p/cmdline 2>/dev/null | cut -c1-80)\";; esac; done; true";
    let out = host.run_root(&["sh", "-c", script])?;
    Ok(out
        .lines()
        .filter_map(|l| {
            let (pid, cmd) = l.trim().split_once(' ')?;
            Some((pid.to_string(), cmd.trim().to_string()))
        })
        .collect())
}

/// Who reads Patroni's dynamic configuration: each has its own count of reads
/// ([`config_reads`]), so a run's reads are counted apart from the doctor's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConfigReader {
    /// A scenario run, a matrix cell, a soak: once each ([`crate::cluster::Live`]).
    Run,
    /// The doctor's own looks.
    Doctor,
    /// Profiles: what the running lab has, and what applying one changes.
    Profile,
}

static CONFIG_READS: [std::sync::atomic::AtomicU64; 3] = [
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
    std::sync::atomic::AtomicU64::new(0),
];

/// How many times `by` has read Patroni's dynamic configuration in this process.
pub fn config_reads(by: ConfigReader) -> u64 {
    CONFIG_READS[by as usize].load(std::sync::atomic::Ordering::Relaxed)
}

/// Patroni's dynamic configuration (`GET /config` of the first member that answers), read for
/// `by` (counted: [`config_reads`]).
pub fn patroni_config(lab: &Lab, by: ConfigReader) -> Result<serde_json::Value, String> {
    CONFIG_READS[by as usize].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut last = String::from("no member given");
    for node in &lab.nodes {
        match patroni_lab_common::patroni::get(&node.api_url, "/config", REST_TIMEOUT) {
            Ok((200, body)) => {
                return serde_json::from_str(&body)
                    .map_err(|e| format!("GET /config is not JSON: {e}"));
            }
            Ok((status, body)) => last = format!("GET /config answered {status}: {}", body.trim()),
            Err(e) => last = e.to_string(),
        }
    }
    Err(last)
}

/// Sends one command to HAProxy's runtime API inside its container and returns the answer.
pub fn haproxy_runtime(command: &str) -> Result<String, HostError> {
    let script = format!("exec 3<>{HAPROXY_RUNTIME}; echo '{command}' >&3; timeout 2 cat <&3");
    container(HAPROXY).run(&["bash", "-c", &script])
}

/// One of this lab's containers as a [`Host`] (the lab's own services: etcd, PgBouncer, HAProxy,
/// and the members when the lab is ours).
pub fn container(name: &str) -> Arc<dyn Host> {
    Arc::new(crate::host::Docker::new(name))
}

/// The lab member whose container has address `addr` (the probe sees servers as
/// `ip:port`); `None` outside the lab or when no member has it.
pub fn member_at(lab: &Lab, addr: &str) -> Option<String> {
    if !lab.containers {
        return None;
    }
    let addr = addr.rsplit_once(':').map_or(addr, |(host, _)| host);
    lab.nodes.iter().find_map(|n| {
        let ip = lab.host(&n.name).ok()?.address().ok()?;
        ip.split_whitespace()
            .any(|i| i == addr)
            .then(|| n.name.clone())
    })
}

/// The member name a Patroni REST API answers for (`GET /patroni`).
pub fn member_name(api_url: &str) -> Result<String, String> {
    let (status, name) = patroni_lab_common::patroni::member_name(api_url, REST_TIMEOUT)
        .map_err(|e| format!("--patroni: {e}"))?;
    match (status, name) {
        (200, Some(name)) => Ok(name),
        _ => Err(format!(
            "--patroni {api_url}: GET /patroni answered {status} without a member name"
        )),
    }
}
