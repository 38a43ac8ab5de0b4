//! PostgreSQL helpers: a connect bounded as a whole (TCP, startup and authentication), text rows
//! from a simple-protocol query (which works through PgBouncer in any pool mode and on its
//! admin console), and an error's text with each cause once.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::{Client, Config, NoTls, SimpleQueryMessage};

/// Rows of text cells.
pub type Rows = Vec<Vec<Option<String>>>;

/// Why a connect failed.
#[derive(Debug)]
pub enum ConnectError {
    /// The whole connect did not finish within the limit.
    TimedOut(Duration),
    /// The client library's error (refused, authentication, the server's FATAL, ...).
    Failed(tokio_postgres::Error),
}

/// Connects with one time-out for all of it; the connection runs on its own task, whose
/// result says why it ended (a server's FATAL to an idle session, say).
pub async fn connect_within(
    config: &Config,
    limit: Duration,
) -> Result<(Client, JoinHandle<Option<tokio_postgres::Error>>), ConnectError> {
    match tokio::time::timeout(limit, config.connect(NoTls)).await {
        Ok(Ok((client, connection))) => {
            Ok((client, tokio::spawn(async move { connection.await.err() })))
        }
        Ok(Err(e)) => Err(ConnectError::Failed(e)),
        Err(_) => Err(ConnectError::TimedOut(limit)),
    }
}

/// Runs simple-protocol SQL and returns the rows as text.
pub async fn query_rows(client: &Client, sql: &str) -> Result<Rows, tokio_postgres::Error> {
    Ok(client
        .simple_query(sql)
        .await?
        .into_iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect())
}

/// An error and its causes, each said once ("a: b: c").
pub fn chain_text(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let more = s.to_string();
        if !text.contains(&more) {
            text = format!("{text}: {more}");
        }
        source = s.source();
    }
    text
}

/// The server's message when there is one (`FATAL 28P01: ...`), else the client-side causes.
pub fn error_text(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("{} {}: {}", db.severity(), db.code().code(), db.message()),
        None => chain_text(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct E(&'static str, Option<Box<E>>);
    impl std::fmt::Display for E {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }
    impl std::error::Error for E {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    #[test]
    fn each_cause_is_said_once() {
        let e = E(
            "connect failed: refused",
            Some(Box::new(E(
                "refused",
                Some(Box::new(E("os error 111", None))),
            ))),
        );
        assert_eq!(chain_text(&e), "connect failed: refused: os error 111");
    }
}
