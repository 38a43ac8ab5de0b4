//! The one place that turns a client-side failure into an error class and an outcome.
//!
//! A write whose statement was sent but never answered is *in doubt*: the server may have
//! committed it. Everything that fails before the statement is sent, and every error the
//! server reports for it, is *failed*: certainly not committed.

use std::fmt;
use std::io;

use serde::{Deserialize, Serialize};

/// What became of one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    Failed,
    InDoubt,
}

/// Where in an attempt the failure happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// TCP connect, startup, authentication (a pooler may queue the login here).
    Connect,
    /// The statement was sent.
    Statement,
    /// The statement was never written to the connection: the session had already ended (the
    /// server's FATAL, say a 57P01 to an idle session, arrived while nothing was pending).
    Unsent,
}

/// The class of a failure. Serialized as a stable string (see [`ErrorClass::label`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorClass {
    /// Nothing listens (TCP RST on connect).
    ConnectRefused,
    /// The whole connect (TCP + startup + auth) did not finish in time.
    ConnectTimeout,
    /// Name resolution or another client-side connect failure.
    ConnectOther,
    /// The connection was reset or closed without an error message (EOF).
    ConnectionLost,
    /// The statement got no answer in time.
    StatementTimeout,
    /// 57P01: terminating connection due to administrator command (demotion, shutdown).
    AdminShutdown,
    /// 57P03: the database system is starting up / shutting down.
    CannotConnectNow,
    /// 25006: a write reached a read-only (replica) server.
    ReadOnly,
    /// PgBouncer 08P01 "server login has been failing" (its cached server_login_retry error).
    PoolerLoginFailing,
    /// PgBouncer 08P01 "server conn crashed?".
    PoolerServerCrashed,
    /// PgBouncer 08P01 "query_wait_timeout".
    PoolerQueryWaitTimeout,
    /// Any other error the server or pooler reports, by SQLSTATE.
    Sqlstate(String),
}

impl ErrorClass {
    /// The stable name used in reports: a word for client-side classes, the SQLSTATE with a
    /// word for the well-known server ones.
    pub fn label(&self) -> String {
        match self {
            Self::ConnectRefused => "connect_refused".into(),
            Self::ConnectTimeout => "connect_timeout".into(),
            Self::ConnectOther => "connect_other".into(),
            Self::ConnectionLost => "connection_lost".into(),
            Self::StatementTimeout => "statement_timeout".into(),
            Self::AdminShutdown => "57P01_admin_shutdown".into(),
            Self::CannotConnectNow => "57P03_cannot_connect_now".into(),
            Self::ReadOnly => "25006_read_only".into(),
            Self::PoolerLoginFailing => "08P01_pooler_login_failing".into(),
            Self::PoolerServerCrashed => "08P01_pooler_server_crashed".into(),
            Self::PoolerQueryWaitTimeout => "08P01_pooler_query_wait_timeout".into(),
            Self::Sqlstate(code) => code.clone(),
        }
    }

    pub fn from_label(label: &str) -> Self {
        match label {
            "connect_refused" => Self::ConnectRefused,
            "connect_timeout" => Self::ConnectTimeout,
            "connect_other" => Self::ConnectOther,
            "connection_lost" => Self::ConnectionLost,
            "statement_timeout" => Self::StatementTimeout,
            "57P01_admin_shutdown" => Self::AdminShutdown,
            "57P03_cannot_connect_now" => Self::CannotConnectNow,
            "25006_read_only" => Self::ReadOnly,
            "08P01_pooler_login_failing" => Self::PoolerLoginFailing,
            "08P01_pooler_server_crashed" => Self::PoolerServerCrashed,
            "08P01_pooler_query_wait_timeout" => Self::PoolerQueryWaitTimeout,
            other => Self::Sqlstate(other.to_string()),
        }
    }

    /// Classifies a server (or pooler) error by SQLSTATE and, for PgBouncer's 08P01, message.
    pub fn from_server(code: &str, message: &str) -> Self {
        match code {
            "57P01" => Self::AdminShutdown,
            "57P03" => Self::CannotConnectNow,
            "25006" => Self::ReadOnly,
            "08P01" if message.contains("login has been failing") => Self::PoolerLoginFailing,
            "08P01" if message.contains("server conn crashed") => Self::PoolerServerCrashed,
            "08P01" if message.contains("query_wait_timeout") => Self::PoolerQueryWaitTimeout,
            other => Self::Sqlstate(other.to_string()),
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

impl Serialize for ErrorClass {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.label())
    }
}

impl<'de> Deserialize<'de> for ErrorClass {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let label = String::deserialize(d)?;
        Ok(Self::from_label(&label))
    }
}

/// A classified failure, with what the server said when it said anything.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    pub class: ErrorClass,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub sqlstate: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub severity: Option<String>,
    pub message: String,
}

fn io_class(kind: io::ErrorKind, phase: Phase) -> ErrorClass {
    match (kind, phase) {
        (io::ErrorKind::ConnectionRefused, _) => ErrorClass::ConnectRefused,
        (io::ErrorKind::TimedOut, Phase::Connect) => ErrorClass::ConnectTimeout,
        (io::ErrorKind::TimedOut, Phase::Statement | Phase::Unsent) => ErrorClass::StatementTimeout,
        (
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof,
            _,
        ) => ErrorClass::ConnectionLost,
        (_, Phase::Connect) => ErrorClass::ConnectOther,
        (_, Phase::Statement | Phase::Unsent) => ErrorClass::ConnectionLost,
    }
}

/// Classifies a tokio-postgres error that happened in `phase`.
pub fn classify(e: &tokio_postgres::Error, phase: Phase) -> Failure {
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        return Failure {
            class: ErrorClass::from_server(code, db.message()),
            sqlstate: Some(code.to_string()),
            severity: Some(db.severity().to_string()),
            message: db.message().to_string(),
        };
    }
    let mut source = std::error::Error::source(e);
    let mut class = None;
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<io::Error>() {
            class = Some(io_class(io.kind(), phase));
            break;
        }
        source = s.source();
    }
    let class = class.unwrap_or(match phase {
        // "connection closed" and similar, with no io::Error behind them.
        _ if e.is_closed() => ErrorClass::ConnectionLost,
        Phase::Connect => ErrorClass::ConnectOther,
        Phase::Statement | Phase::Unsent => ErrorClass::ConnectionLost,
    });
    Failure {
        class,
        sqlstate: None,
        severity: None,
        message: patroni_lab_common::pg::chain_text(e),
    }
}

/// A time-out that the probe itself enforced.
pub fn timed_out(phase: Phase, limit: std::time::Duration) -> Failure {
    let (class, what) = match phase {
        Phase::Connect => (ErrorClass::ConnectTimeout, "connect (TCP + startup + auth)"),
        Phase::Statement | Phase::Unsent => (ErrorClass::StatementTimeout, "statement"),
    };
    Failure {
        class,
        sqlstate: None,
        severity: None,
        message: format!("{what} did not finish within {} ms", limit.as_millis()),
    }
}

/// PgBouncer's FATALs (SQLSTATE 08P01) that it sends while the client's query waits for a
/// server connection or before it is read at all: the query never reached PostgreSQL. Other
/// pooler FATALs ("server conn crashed?", "query_timeout", or any not listed) may come after
/// the query reached a server, so they stay in doubt.
const POOLER_NEVER_SENT: &[&str] = &[
    "login has been failing",
    "query_wait_timeout",
    "cannot connect to server",
    "no more connections allowed",
    "client_login_timeout",
    "client_idle_timeout",
];

/// Whether the failure says the statement never reached a PostgreSQL server.
fn never_reached_a_server(failure: &Failure) -> bool {
    match &failure.class {
        ErrorClass::PoolerLoginFailing
        | ErrorClass::PoolerQueryWaitTimeout
        | ErrorClass::CannotConnectNow => true,
        ErrorClass::Sqlstate(code) if code == "08P01" => POOLER_NEVER_SENT
            .iter()
            .any(|m| failure.message.contains(m)),
        _ => false,
    }
}

/// The outcome of a failed write. Failed (certainly not committed) when the statement was
/// never sent (connect failures, a session that had already ended), when the server answered
/// it with an ERROR (the transaction rolled back), or when the pooler says it never got a
/// server connection for it (login failing, query_wait_timeout, 57P03). In doubt when it was
/// sent and the session died (a FATAL such as 57P01, "server conn crashed?", a lost connection)
/// or nothing came back in time: the commit may have happened.
pub fn write_outcome(failure: &Failure, phase: Phase) -> Outcome {
    match phase {
        Phase::Connect | Phase::Unsent => Outcome::Failed,
        _ if never_reached_a_server(failure) => Outcome::Failed,
        Phase::Statement if failure.severity.as_deref() == Some("ERROR") => Outcome::Failed,
        Phase::Statement => Outcome::InDoubt,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn well_known_sqlstates_get_names() {
        assert_eq!(
            ErrorClass::from_server(
                "57P01",
                "terminating connection due to administrator command"
            ),
            ErrorClass::AdminShutdown
        );
        assert_eq!(
            ErrorClass::from_server("57P03", "the database system is shutting down"),
            ErrorClass::CannotConnectNow
        );
        assert_eq!(
            ErrorClass::from_server("25006", "cannot execute INSERT in a read-only transaction"),
            ErrorClass::ReadOnly
        );
        assert_eq!(
            ErrorClass::from_server("40001", "x"),
            ErrorClass::Sqlstate("40001".into())
        );
    }

    #[test]
    fn pgbouncer_08p01_messages_are_told_apart() {
        assert_eq!(
            ErrorClass::from_server(
                "08P01",
                "server login has been failing, cached error: the database system is shutting down (server_login_retry)"
            ),
            ErrorClass::PoolerLoginFailing
        );
        assert_eq!(
            ErrorClass::from_server("08P01", "server conn crashed?"),
            ErrorClass::PoolerServerCrashed
        );
        assert_eq!(
            ErrorClass::from_server("08P01", "query_wait_timeout"),
            ErrorClass::PoolerQueryWaitTimeout
        );
        assert_eq!(
            ErrorClass::from_server("08P01", "something else"),
            ErrorClass::Sqlstate("08P01".into())
        );
    }

    #[test]
    fn labels_round_trip() {
        for class in [
            ErrorClass::ConnectRefused,
            ErrorClass::ConnectTimeout,
            ErrorClass::ConnectOther,
            ErrorClass::ConnectionLost,
            ErrorClass::StatementTimeout,
            ErrorClass::AdminShutdown,
            ErrorClass::CannotConnectNow,
            ErrorClass::ReadOnly,
            ErrorClass::PoolerLoginFailing,
            ErrorClass::PoolerServerCrashed,
            ErrorClass::PoolerQueryWaitTimeout,
            ErrorClass::Sqlstate("XX000".into()),
        ] {
            assert_eq!(ErrorClass::from_label(&class.label()), class);
            let json = serde_json::to_string(&class).unwrap();
            assert_eq!(serde_json::from_str::<ErrorClass>(&json).unwrap(), class);
        }
    }

    #[test]
    fn io_errors_by_phase() {
        assert_eq!(
            io_class(io::ErrorKind::ConnectionRefused, Phase::Connect),
            ErrorClass::ConnectRefused
        );
        assert_eq!(
            io_class(io::ErrorKind::ConnectionReset, Phase::Statement),
            ErrorClass::ConnectionLost
        );
        assert_eq!(
            io_class(io::ErrorKind::UnexpectedEof, Phase::Connect),
            ErrorClass::ConnectionLost
        );
        assert_eq!(
            io_class(io::ErrorKind::TimedOut, Phase::Statement),
            ErrorClass::StatementTimeout
        );
        assert_eq!(
            io_class(io::ErrorKind::NotFound, Phase::Connect),
            ErrorClass::ConnectOther
        );
    }

    fn server_failure(class: ErrorClass, sqlstate: &str, severity: &str) -> Failure {
        Failure {
            class,
            sqlstate: Some(sqlstate.into()),
            severity: Some(severity.into()),
            message: String::new(),
        }
    }

    #[test]
    fn a_sent_write_without_answer_is_in_doubt() {
        let lost = timed_out(Phase::Statement, std::time::Duration::from_secs(1));
        assert_eq!(write_outcome(&lost, Phase::Statement), Outcome::InDoubt);
        let refused = server_failure(ErrorClass::ReadOnly, "25006", "ERROR");
        assert_eq!(write_outcome(&refused, Phase::Statement), Outcome::Failed);
        let fatal = server_failure(ErrorClass::AdminShutdown, "57P01", "FATAL");
        assert_eq!(write_outcome(&fatal, Phase::Statement), Outcome::InDoubt);
        let queued = server_failure(ErrorClass::PoolerLoginFailing, "08P01", "FATAL");
        assert_eq!(write_outcome(&queued, Phase::Statement), Outcome::Failed);
        let connect = timed_out(Phase::Connect, std::time::Duration::from_secs(1));
        assert_eq!(write_outcome(&connect, Phase::Connect), Outcome::Failed);
    }

    #[test]
    fn a_write_that_never_reached_a_server_is_failed() {
        // The session got its 57P01 while idle: the statement was never written.
        let idle_kill = server_failure(ErrorClass::AdminShutdown, "57P01", "FATAL");
        assert_eq!(write_outcome(&idle_kill, Phase::Unsent), Outcome::Failed);
        // PgBouncer FATALs sent before a server connection was assigned.
        for message in [
            "pgbouncer cannot connect to server",
            "no more connections allowed (max_client_conn)",
            "client_login_timeout (server down)",
        ] {
            let mut f = server_failure(ErrorClass::from_server("08P01", message), "08P01", "FATAL");
            f.message = message.into();
            assert_eq!(
                write_outcome(&f, Phase::Statement),
                Outcome::Failed,
                "{message}"
            );
        }
        // After a server took the query, or unknown: in doubt.
        for message in ["server conn crashed?", "query_timeout", "something new"] {
            let mut f = server_failure(ErrorClass::from_server("08P01", message), "08P01", "FATAL");
            f.message = message.into();
            assert_eq!(
                write_outcome(&f, Phase::Statement),
                Outcome::InDoubt,
                "{message}"
            );
        }
    }
}
