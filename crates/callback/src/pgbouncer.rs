//! PgBouncer's admin console, reached over the PostgreSQL protocol: `RELOAD` and the like.

/// The port PgBouncer listens on in the lab (its `listen_port`; the admin console too).
pub const PORT: u16 = 6432;

use std::time::Duration;

use patroni_lab_common::pg::{ConnectError, Rows, connect_within, error_text, query_rows};
use tokio_postgres::Config;

#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error("cannot connect to the PgBouncer admin console at {addr}: {detail}")]
    Connect {
        addr: String,
        detail: String,
        /// Nothing listens there or the name does not resolve: PgBouncer is not running.
        not_running: bool,
    },
    #[error("PgBouncer admin console at {addr} did not answer within {secs}s")]
    Timeout { addr: String, secs: u64 },
    #[error("PgBouncer admin command '{command}' failed: {detail}")]
    Command { command: String, detail: String },
    #[error("cannot start the runtime for a PgBouncer admin command: {0}")]
    Runtime(String),
}

impl AdminError {
    /// True when PgBouncer is simply not there (not started yet, or stopped): the connection
    /// was refused or its name is unknown. A PgBouncer that refused *us* (authentication, the
    /// protocol, no answer in time) is running and was not told: that is an error.
    pub fn is_not_running(&self) -> bool {
        matches!(
            self,
            Self::Connect {
                not_running: true,
                ..
            }
        )
    }
}

/// Where the admin console is and how to log in.
#[derive(Debug, Clone)]
pub struct AdminTarget {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: String,
}

impl AdminTarget {
    fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// `admin_command` from blocking code, on a runtime of its own.
pub fn admin_command_blocking(
    target: &AdminTarget,
    command: &str,
    timeout: Duration,
) -> Result<Rows, AdminError> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| AdminError::Runtime(e.to_string()))?
        .block_on(admin_command(target, command, timeout))
}

/// Runs one admin command and returns its rows as text cells.
pub async fn admin_command(
    target: &AdminTarget,
    command: &str,
    timeout: Duration,
) -> Result<Rows, AdminError> {
    let addr = target.addr();
    let mut config = Config::new();
    config
        .host(&target.host)
        .port(target.port)
        .user(&target.user)
        .password(&target.password)
        .dbname("pgbouncer")
        .application_name("patroni-lab");
    let work = async {
        let (client, driver) = connect_within(&config, timeout)
            .await
            .map_err(|e| match e {
                ConnectError::TimedOut(_) => AdminError::Timeout {
                    addr: addr.clone(),
                    secs: timeout.as_secs(),
                },
                ConnectError::Failed(e) => AdminError::Connect {
                    addr: addr.clone(),
                    detail: error_text(&e),
                    not_running: is_not_running(&e),
                },
            })?;
        let result = query_rows(&client, command).await;
        drop(client);
        let _ = driver.await;
        result.map_err(|e| AdminError::Command {
            command: command.to_string(),
            detail: error_text(&e),
        })
    };
    tokio::time::timeout(timeout, work)
        .await
        .map_err(|_| AdminError::Timeout {
            addr: addr.clone(),
            secs: timeout.as_secs(),
        })?
}

/// Whether a connect error means nothing is there: refused, or a name that does not resolve
/// (Docker's DNS forgets a stopped container's name).
fn is_not_running(e: &tokio_postgres::Error) -> bool {
    if e.as_db_error().is_some() {
        return false;
    }
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            return io.kind() == std::io::ErrorKind::ConnectionRefused
                || io.to_string().contains("failed to lookup address");
        }
        source = s.source();
    }
    false
}
