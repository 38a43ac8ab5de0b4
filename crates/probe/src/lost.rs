//! The lost-write check: at the end of a run, every acknowledged write is looked up on the
//! current primary. Missing ones are lost; in-doubt writes are reported apart (found or not).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde::Serialize;
use tokio_postgres::Config;

use crate::analysis::Acked;
use crate::workload::{connect, query_rows};

/// One write, by client and sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct WriteId {
    pub client: u32,
    pub seq: u64,
}

/// What the check found.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct LostWrites {
    /// Whether the check ran to the end (false: see `error`).
    pub checked: bool,
    pub acknowledged: u64,
    /// Acknowledged writes that the primary does not have.
    pub missing: Vec<WriteId>,
    pub in_doubt: u64,
    pub in_doubt_found: u64,
    pub in_doubt_missing: u64,
    /// Rows present that were neither acknowledged nor in doubt (a write reported failed that
    /// committed after all).
    pub unexpected_rows: u64,
    /// The server the check read from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_on: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Compares the sequence numbers found on the server with the acknowledged and in-doubt ones.
pub fn compare(
    acked: &Acked,
    in_doubt: &[(u32, u64)],
    found: &BTreeMap<u32, Vec<u64>>,
) -> LostWrites {
    let mut result = LostWrites {
        checked: true,
        acknowledged: acked.len(),
        in_doubt: in_doubt.len() as u64,
        ..LostWrites::default()
    };
    let empty = Vec::new();
    let mut expected_rows = 0u64;
    for (client, ranges) in &acked.ranges {
        let rows = found.get(client).unwrap_or(&empty);
        for (a, b) in ranges {
            for seq in *a..=*b {
                if rows.binary_search(&seq).is_ok() {
                    expected_rows += 1;
                } else {
                    result.missing.push(WriteId {
                        client: *client,
                        seq,
                    });
                }
            }
        }
    }
    for (client, seq) in in_doubt {
        let present = found
            .get(client)
            .is_some_and(|rows| rows.binary_search(seq).is_ok());
        if present {
            result.in_doubt_found += 1;
            expected_rows += 1;
        } else {
            result.in_doubt_missing += 1;
        }
    }
    let total_rows: u64 = found.values().map(|v| v.len() as u64).sum();
    result.unexpected_rows = total_rows.saturating_sub(expected_rows);
    result
}

/// Reads every row of the run from the primary (retrying the connection until `limit`), in
/// pages, and compares.
pub async fn check(
    config: &Config,
    connect_timeout: Duration,
    limit: Duration,
    table: &str,
    run_id: &str,
    acked: &Acked,
    in_doubt: &[(u32, u64)],
) -> LostWrites {
    let deadline = Instant::now() + limit;
    let mut last_error = String::new();
    while Instant::now() < deadline {
        match read_rows(config, connect_timeout, table, run_id).await {
            Ok((server, found)) => {
                let mut result = compare(acked, in_doubt, &found);
                result.checked_on = Some(server);
                return result;
            }
            Err(e) => last_error = e,
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    LostWrites {
        checked: false,
        acknowledged: acked.len(),
        in_doubt: in_doubt.len() as u64,
        error: Some(format!(
            "could not read the probe's rows from a primary within {} s: {last_error}",
            limit.as_secs()
        )),
        ..LostWrites::default()
    }
}

async fn read_rows(
    config: &Config,
    connect_timeout: Duration,
    table: &str,
    run_id: &str,
) -> Result<(String, BTreeMap<u32, Vec<u64>>), String> {
    let client = connect(config, connect_timeout)
        .await
        .map_err(|f| f.message)?
        .client;
    let text = |e: tokio_postgres::Error| e.to_string();
    let who = query_rows(
        &client,
        "SELECT host(inet_server_addr()) || ':' || inet_server_port(), pg_is_in_recovery()",
    )
    .await
    .map_err(text)?;
    let server = who
        .first()
        .and_then(|r| r.first().cloned().flatten())
        .unwrap_or_else(|| "local".into());
    if who
        .first()
        .and_then(|r| r.get(1).cloned().flatten())
        .as_deref()
        == Some("t")
    {
        return Err(format!("{server} is a replica; waiting for the primary"));
    }
    let mut found: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    let (mut after_client, mut after_seq) = (-1i64, -1i64);
    loop {
        let page = query_rows(
            &client,
            &format!(
                "SELECT client_id, seq FROM {table} WHERE run_id = '{run_id}' \
                 AND (client_id, seq) > ({after_client}, {after_seq}) ORDER BY client_id, seq LIMIT 50000"
            ),
        )
        .await
        .map_err(text)?;
        if page.is_empty() {
            break;
        }
        for row in &page {
            let parse = |i: usize| -> Result<i64, String> {
                row.get(i)
                    .cloned()
                    .flatten()
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| "unreadable row".to_string())
            };
            let (c, s) = (parse(0)?, parse(1)?);
            found.entry(c as u32).or_default().push(s as u64);
            (after_client, after_seq) = (c, s);
        }
    }
    Ok((server, found))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_exactly_the_missing_acknowledged_writes() {
        let mut acked = Acked::default();
        for s in 1..=10 {
            acked.insert(0, s);
        }
        acked.insert(1, 1);
        let mut found = BTreeMap::new();
        found.insert(0, vec![1, 2, 4, 5, 6, 8, 9, 10, 11]);
        found.insert(1, vec![1, 2]);
        let in_doubt = [(0, 11), (1, 3)];
        let r = compare(&acked, &in_doubt, &found);
        assert_eq!(
            r.missing,
            vec![WriteId { client: 0, seq: 3 }, WriteId { client: 0, seq: 7 }]
        );
        assert_eq!(r.acknowledged, 11);
        assert_eq!((r.in_doubt_found, r.in_doubt_missing), (1, 1));
        // (1, 2) was neither acknowledged nor in doubt.
        assert_eq!(r.unexpected_rows, 1);
    }
}
