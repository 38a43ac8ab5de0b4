//! Every setting a profile may change, said once: which service it belongs to, what values it
//! takes, and what it does. Parsing checks against this table; `profile list` prints from it.

use std::fmt;

/// The service a setting is applied to, and how.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Section {
    /// Patroni's dynamic configuration in etcd (`PATCH /config`); every member picks it up on
    /// its next loop.
    Patroni,
    /// PgBouncer's `[pgbouncer]` settings (written beside pgbouncer.ini, then `RELOAD`).
    PgBouncer,
    /// HAProxy's health checks of the Patroni REST APIs (config rendered, then reloaded).
    HaProxy,
}

impl Section {
    pub const ALL: [Section; 3] = [Section::Patroni, Section::PgBouncer, Section::HaProxy];

    /// The section's name in a profile file.
    pub fn name(self) -> &'static str {
        match self {
            Section::Patroni => "patroni",
            Section::PgBouncer => "pgbouncer",
            Section::HaProxy => "haproxy",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.name() == name)
    }
}

impl fmt::Display for Section {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What values a setting takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A whole number in this range (inclusive).
    Int {
        min: i64,
        max: i64,
    },
    /// Seconds with up to three decimals (PgBouncer's time settings take fractions), held as
    /// milliseconds in this range (inclusive).
    Seconds {
        min_ms: i64,
        max_ms: i64,
    },
    Bool,
    /// One of these words.
    Word(&'static [&'static str]),
}

/// One setting a profile may change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key {
    pub section: Section,
    pub name: &'static str,
    pub kind: Kind,
    pub about: &'static str,
}

const fn int(min: i64, max: i64) -> Kind {
    Kind::Int { min, max }
}

/// The vocabulary. Patroni's own floors (ttl ≥ 20, loop_wait ≥ 1, retry_timeout ≥ 3) are the
/// ranges' lower ends; the rule between them is checked in `profile::check`.
pub const KEYS: &[Key] = &[
    Key {
        section: Section::Patroni,
        name: "ttl",
        kind: int(20, 3600),
        about: "seconds the leader lock lives without a renewal (a dead leader's lock expires after at most this)",
    },
    Key {
        section: Section::Patroni,
        name: "loop_wait",
        kind: int(1, 600),
        about: "seconds Patroni sleeps between loops (the leader renews its lock once per loop)",
    },
    Key {
        section: Section::Patroni,
        name: "retry_timeout",
        kind: int(3, 600),
        about: "seconds etcd and PostgreSQL operations are retried before the leader demotes",
    },
    Key {
        section: Section::Patroni,
        name: "primary_start_timeout",
        kind: int(0, 86_400),
        about: "seconds a crashed primary may take to start again before failing over (0: at once)",
    },
    Key {
        section: Section::Patroni,
        name: "maximum_lag_on_failover",
        kind: int(0, i64::MAX),
        about: "bytes a replica may lag and still be promoted",
    },
    Key {
        section: Section::Patroni,
        name: "synchronous_mode",
        kind: Kind::Bool,
        about: "commit waits for a synchronous replica, when there is one",
    },
    Key {
        section: Section::Patroni,
        name: "synchronous_mode_strict",
        kind: Kind::Bool,
        about: "with synchronous_mode: no replica, no commits (writes block instead of going async)",
    },
    Key {
        section: Section::Patroni,
        name: "failsafe_mode",
        kind: Kind::Bool,
        about: "the leader keeps running without etcd while every member still answers it",
    },
    Key {
        section: Section::Patroni,
        name: "check_timeline",
        kind: Kind::Bool,
        about: "a replica on an older timeline than the cluster's last (its /history in etcd) is not promoted",
    },
    Key {
        section: Section::PgBouncer,
        name: "pool_mode",
        kind: Kind::Word(&["session", "transaction", "statement"]),
        about: "when a server connection returns to the pool",
    },
    Key {
        section: Section::PgBouncer,
        name: "server_login_retry",
        kind: Kind::Seconds {
            min_ms: 0,
            max_ms: 3_600_000,
        },
        about: "seconds (fractions allowed) before a failed server login is tried again; until then new clients get its error",
    },
    Key {
        section: Section::PgBouncer,
        name: "server_connect_timeout",
        kind: int(1, 3600),
        about: "seconds a server connect may take",
    },
    Key {
        section: Section::PgBouncer,
        name: "query_wait_timeout",
        kind: int(0, 86_400),
        about: "seconds a client waits for a server connection (0: forever)",
    },
    Key {
        section: Section::PgBouncer,
        name: "server_check_delay",
        kind: int(0, 3600),
        about: "seconds an idle server connection may sit before it is checked on reuse",
    },
    Key {
        section: Section::HaProxy,
        name: "check_inter_ms",
        kind: int(100, 60_000),
        about: "milliseconds between health checks of each Patroni REST API",
    },
    Key {
        section: Section::HaProxy,
        name: "check_fall",
        kind: int(1, 10),
        about: "failed checks in a row before a node stops being routed to",
    },
    Key {
        section: Section::HaProxy,
        name: "check_rise",
        kind: int(1, 10),
        about: "passed checks in a row before a node is routed to",
    },
    Key {
        section: Section::HaProxy,
        name: "replica_max_lag_bytes",
        kind: int(0, 1 << 40),
        about: "bytes a replica may have left to replay (behind the leader's position in etcd) and still serve readers on 5433",
    },
];

pub fn find(section: Section, name: &str) -> Option<&'static Key> {
    KEYS.iter().find(|k| k.section == section && k.name == name)
}

/// What Patroni uses for a dynamic setting its configuration does not name (`GET /config`
/// leaves out what was never set).
pub fn patroni_default(name: &str) -> Option<&'static str> {
    match name {
        "primary_start_timeout" => Some("300"),
        "maximum_lag_on_failover" => Some("1048576"),
        "synchronous_mode" | "synchronous_mode_strict" | "failsafe_mode" | "check_timeline" => {
            Some("false")
        }
        _ => None,
    }
}

/// The environment variable HAProxy's configuration reads a setting from.
pub fn haproxy_variable(name: &str) -> String {
    format!("PLAB_{}", name.to_ascii_uppercase())
}
