//! The lost-write check, run once the dust has settled: first no statement of the run may
//! still be running anywhere it could commit (they are found by the run's application name and
//! terminated), then every acknowledged write is looked up on a primary whose timeline is at
//! least the newest any acknowledged write saw, in one read-only transaction (one server
//! connection even behind transaction pooling). Missing ones are lost; in-doubt writes are
//! reported apart (committed or not). The same transaction measures the longest gap between
//! consecutive server-side commit times, an independent cross-check of the client's windows.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use serde::Serialize;
use tokio::time::Instant;
use tokio_postgres::Config;

use crate::analysis::Acked;
use crate::record::ServerId;
use crate::sql::{SERVER_COLUMN_COUNT, SERVER_COLUMNS};
use crate::workload::{Session, connect};
use patroni_lab_common::pg::query_rows;

/// One write, by client and sequence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct WriteId {
    pub client: u32,
    pub seq: u64,
}

/// The longest time between two consecutive commits of the run, by the servers' clocks
/// (`server_time`, the transaction's start on the server). Times are on the run's clock
/// (microseconds since it began), mapped through the wall clock.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ServerGap {
    pub start_us: i64,
    pub end_us: i64,
    pub duration_ms: f64,
}

/// What was done about the run's statements that might still be running.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Settle {
    /// True when, on every node looked at, none of the run's statements was left running, so
    /// in-doubt writes can no longer change from "not committed" to "committed".
    pub settled: bool,
    /// Statements of the run that were still running and were terminated.
    pub terminated: u64,
    /// The nodes looked at (the endpoint's, then every node that acknowledged a write).
    pub nodes: Vec<String>,
    /// What could not be done, one line each (an unreachable node, a deadline).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// What the check found.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct LostWrites {
    /// Whether the check ran to the end (false: see `error`). When false, `missing` is empty
    /// because nothing was looked up, not because nothing was lost.
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
    /// The newest timeline any acknowledged write reported; the checked node's must be at least
    /// this.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub newest_acked_timeline: Option<u32>,
    /// The primary the check read from, with its timeline.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checked_on: Option<ServerId>,
    /// The member holding the leader lock that the checked node was confirmed to be (only with
    /// Patroni REST APIs given): same postmaster start time, by `GET /patroni`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub leader_confirmed: Option<String>,
    /// The longest gap between consecutive server commit times of the run's rows.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_gap: Option<ServerGap>,
    pub settle: Settle,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl LostWrites {
    /// The check was not run because the user asked for none.
    pub fn skipped(acked: &Acked, in_doubt: usize) -> Self {
        Self {
            checked: false,
            acknowledged: acked.len(),
            in_doubt: in_doubt as u64,
            error: Some("skipped (--no-lost-check)".into()),
            ..Self::default()
        }
    }
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

/// What the check needs to know about the run.
#[derive(Debug, Clone)]
pub struct CheckInput<'a> {
    /// The endpoint the run used (its application name is replaced by the checker's).
    pub config: &'a Config,
    pub connect_timeout: Duration,
    /// The whole check, settling included, ends within this.
    pub limit: Duration,
    pub table: &'a str,
    pub run_id: &'a str,
    /// The application name every session of the run used.
    pub application_name: &'a str,
    /// The run's start on the wall clock, to put server times on the run's clock.
    pub started_unix_us: u64,
    pub acked: &'a Acked,
    pub in_doubt: &'a [(u32, u64)],
    /// Every server that acknowledged a write of the run.
    pub servers: &'a [ServerId],
    /// Patroni REST APIs (may be empty): the read node must be the leader-lock holder.
    pub patroni: &'a [String],
}

impl CheckInput<'_> {
    fn newest_timeline(&self) -> Option<u32> {
        self.servers.iter().filter_map(|s| s.timeline).max()
    }
}

/// How an attempt cut short by the deadline ends its message.
const OUT_OF_TIME: &str = "the check's time limit ran out";

/// Why one attempt at the check did not finish; the last one is reported.
type Attempt<T> = Result<T, String>;

/// Runs `work` unless the deadline passes first: the deadline holds inside a query too.
async fn before<T>(
    deadline: Instant,
    what: &str,
    work: impl Future<Output = Attempt<T>>,
) -> Attempt<T> {
    match tokio::time::timeout_at(deadline, work).await {
        Ok(result) => result,
        Err(_) => Err(format!("{what}: {OUT_OF_TIME}")),
    }
}

fn checker_config(input: &CheckInput<'_>) -> Config {
    let mut config = input.config.clone();
    config.application_name("patroni-lab-probe-check");
    config
}

async fn open(config: &Config, input: &CheckInput<'_>, deadline: Instant) -> Attempt<Session> {
    let limit = input
        .connect_timeout
        .min(deadline.saturating_duration_since(Instant::now()));
    connect(config, limit).await.map_err(|f| f.message)
}

fn text(e: tokio_postgres::Error) -> String {
    crate::classify::classify(&e, crate::classify::Phase::Statement).message
}

/// The run's statements still running on the server `session` is connected to. Idle sessions
/// are left alone: a pooler may keep a server connection that last served the run.
fn running_sql(app: &str) -> String {
    format!(
        "SELECT count(*) FROM pg_stat_activity WHERE application_name = '{app}' \
         AND state <> 'idle' AND pid <> pg_backend_pid()"
    )
}

fn terminate_sql(app: &str) -> String {
    format!(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE application_name = '{app}' AND state <> 'idle' AND pid <> pg_backend_pid()) t"
    )
}

fn count_of(rows: &[Vec<Option<String>>]) -> u64 {
    rows.first()
        .and_then(|r| r.first().cloned().flatten())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// Terminates the run's statements on one node and waits until none is left.
async fn settle_node(session: &Session, app: &str, deadline: Instant) -> Attempt<u64> {
    let mut terminated = 0;
    loop {
        let client = &session.client;
        let left = before(deadline, "counting the run's statements", async {
            query_rows(client, &running_sql(app)).await.map_err(text)
        })
        .await?;
        if count_of(&left) == 0 {
            return Ok(terminated);
        }
        let killed = before(deadline, "terminating the run's statements", async {
            query_rows(client, &terminate_sql(app)).await.map_err(text)
        })
        .await?;
        terminated += count_of(&killed);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A node's address as the run recorded it, as a config for a direct connection.
fn direct_config(base: &Config, addr: &str) -> Option<Config> {
    let (host, port) = addr.rsplit_once(':')?;
    let mut config = base.clone();
    config.host(host).port(port.parse().ok()?);
    Some(config)
}

/// Makes sure no statement of the run is still running: on the endpoint's server, and on
/// every node that acknowledged a write (directly, when its address can be reached).
async fn settle(input: &CheckInput<'_>, deadline: Instant) -> Settle {
    let app = input.application_name;
    let mut out = Settle {
        settled: true,
        ..Settle::default()
    };
    let endpoint = checker_config(input);
    let mut targets = vec![("endpoint".to_string(), Some(endpoint.clone()))];
    for server in input.servers {
        if !targets.iter().any(|(name, _)| *name == server.addr) {
            targets.push((server.addr.clone(), direct_config(&endpoint, &server.addr)));
        }
    }
    for (name, config) in targets {
        out.nodes.push(name.clone());
        let Some(config) = config else {
            out.notes
                .push(format!("{name}: not an address the check can connect to"));
            continue;
        };
        let done = async {
            let session = open(&config, input, deadline).await?;
            settle_node(&session, app, deadline).await
        };
        match done.await {
            Ok(n) => out.terminated += n,
            Err(e) if name == "endpoint" => {
                out.settled = false;
                out.notes.push(format!("{name}: {e}"));
            }
            // A node the run touched that cannot be reached now: it is down or cut off. Its
            // statements cannot commit on the primary the check reads, but say so.
            Err(e) => out.notes.push(format!("{name}: not reached ({e})")),
        }
    }
    out
}

/// What one read of the rows found.
struct Read {
    server: ServerId,
    leader: Option<String>,
    found: BTreeMap<u32, Vec<u64>>,
    gap: Option<(i64, i64)>,
}

fn cell(rows: &[Vec<Option<String>>], row: usize, col: usize) -> Option<&str> {
    rows.get(row)?.get(col)?.as_deref()
}

/// Reads the run's rows and the longest server-side gap, in one read-only transaction on a
/// primary whose timeline is at least the newest the writes saw.
async fn read_rows(input: &CheckInput<'_>, deadline: Instant) -> Attempt<Read> {
    let session = open(&checker_config(input), input, deadline).await?;
    let client = &session.client;
    let q = |sql: String| async move {
        before(deadline, "reading the run's rows", async {
            query_rows(client, &sql).await.map_err(text)
        })
        .await
    };
    q("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY".into()).await?;
    let who = q(format!(
        "SELECT {SERVER_COLUMNS}, (extract(epoch FROM pg_postmaster_start_time()) * 1e6)::bigint"
    ))
    .await?;
    let addr = match (cell(&who, 0, 0), cell(&who, 0, 1)) {
        (Some(a), Some(p)) => format!("{a}:{p}"),
        _ => "local".into(),
    };
    let server = ServerId {
        addr,
        timeline: cell(&who, 0, 3).and_then(|t| t.parse().ok()),
    };
    if cell(&who, 0, 2) != Some("f") {
        return Err(format!(
            "{server} is not a primary (in recovery); waiting for one"
        ));
    }
    if let Some(newest) = input.newest_timeline() {
        if server.timeline.is_none_or(|tl| tl < newest) {
            return Err(format!(
                "{server} is on an older timeline than tl{newest}, which acknowledged writes; waiting for the newest primary"
            ));
        }
    }
    let leader = if input.patroni.is_empty() {
        None
    } else {
        let started: Option<i64> = cell(&who, 0, SERVER_COLUMN_COUNT).and_then(|v| v.parse().ok());
        let urls = input.patroni.to_vec();
        let holder = tokio::task::spawn_blocking(move || leader_with_start(&urls, started))
            .await
            .map_err(|e| e.to_string())??;
        Some(holder)
    };
    let (table, run_id) = (input.table, input.run_id);
    let mut found: BTreeMap<u32, Vec<u64>> = BTreeMap::new();
    let (mut after_client, mut after_seq) = (-1i64, -1i64);
    loop {
        let page = q(format!(
            "SELECT client_id, seq FROM {table} WHERE run_id = '{run_id}' \
             AND (client_id, seq) > ({after_client}, {after_seq}) ORDER BY client_id, seq LIMIT {PAGE_ROWS}"
        ))
        .await?;
        for (i, _) in page.iter().enumerate() {
            let number = |col| -> Attempt<i64> {
                cell(&page, i, col)
                    .and_then(|v| v.parse().ok())
                    .ok_or_else(|| format!("unreadable row in {table}"))
            };
            let (c, s) = (number(0)?, number(1)?);
            found.entry(c as u32).or_default().push(s as u64);
            (after_client, after_seq) = (c, s);
        }
        if page.len() < PAGE_ROWS {
            break;
        }
    }
    let gap = q(format!(
        "SELECT (extract(epoch FROM prev) * 1e6)::bigint, (extract(epoch FROM t) * 1e6)::bigint \
         FROM (SELECT server_time AS t, lag(server_time) OVER (ORDER BY server_time) AS prev \
         FROM {table} WHERE run_id = '{run_id}') g WHERE prev IS NOT NULL ORDER BY t - prev DESC LIMIT 1"
    ))
    .await?;
    let gap = match (cell(&gap, 0, 0), cell(&gap, 0, 1)) {
        (Some(a), Some(b)) => a.parse().ok().zip(b.parse().ok()),
        _ => None,
    };
    q("COMMIT".into()).await?;
    Ok(Read {
        server,
        leader,
        found,
        gap,
    })
}

/// Microseconds since the Unix epoch of Patroni's `postmaster_start_time`
/// ("2026-11-27 08:12:09.247391+00:00").
pub fn parse_patroni_time(text: &str) -> Option<i64> {
    let (date, rest) = text.trim().split_once(' ')?;
    let mut d = date.split('-').map(|x| x.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let split = rest.find(['+', '-'])?;
    let (clock, offset) = rest.split_at(split);
    let mut c = clock.split(':');
    let (hh, mm) = (
        c.next()?.parse::<i64>().ok()?,
        c.next()?.parse::<i64>().ok()?,
    );
    let secs: f64 = c.next()?.parse().ok()?;
    let sign = if offset.starts_with('-') { -1 } else { 1 };
    let mut o = offset[1..].split(':');
    let (oh, om) = (
        o.next()?.parse::<i64>().ok()?,
        o.next().unwrap_or("0").parse::<i64>().ok()?,
    );
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (m + if m > 2 { -3 } else { 9 }) + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let local = days * 86_400 + hh * 3600 + mm * 60;
    let utc = local - sign * (oh * 3600 + om * 60);
    Some(utc * 1_000_000 + (secs * 1e6).round() as i64)
}

/// The member holding the leader lock, confirmed by its own API to run the postmaster that
/// started at `started` (µs since the epoch): the node the check reads.
fn leader_with_start(urls: &[String], started: Option<i64>) -> Result<String, String> {
    use patroni_lab_common::patroni;
    let timeout = Duration::from_secs(2);
    let started = started.ok_or("the server did not say when its postmaster started")?;
    let mut lock_holder = None;
    for url in urls {
        if let Ok(view) = patroni::cluster(url, timeout) {
            lock_holder = view.leader().map(|m| m.name.clone());
            break;
        }
    }
    let holder = lock_holder.ok_or("no Patroni REST API names a leader-lock holder")?;
    for url in urls {
        let Ok((200, body)) = patroni::get(url, "/patroni", timeout) else {
            continue;
        };
        let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let name = v["patroni"]["name"].as_str().unwrap_or_default();
        let start = v["postmaster_start_time"]
            .as_str()
            .and_then(parse_patroni_time);
        if name == holder {
            return if start.is_some_and(|s| (s - started).abs() < 1_000) {
                Ok(holder)
            } else {
                Err(format!(
                    "the node read is not {holder}, the leader-lock holder (postmaster start times differ)"
                ))
            };
        }
    }
    Err(format!(
        "no given REST API is {holder}'s, the leader-lock holder"
    ))
}

/// Rows per page of the read (one round trip each).
const PAGE_ROWS: usize = 50_000;
/// Pause between attempts to find the primary.
const RETRY_PAUSE: Duration = Duration::from_millis(500);

/// Settles the run's statements, then reads every row of the run from the newest primary
/// (retrying until `limit` has passed since the call) and compares.
pub async fn check(input: &CheckInput<'_>) -> LostWrites {
    let deadline = Instant::now() + input.limit;
    let settle = settle(input, deadline).await;
    // The last reason an attempt gave; an attempt cut short by the deadline does not hide the
    // reason the attempts before it gave.
    let mut last_error = String::from("no attempt finished");
    let mut cut_short = false;
    while Instant::now() < deadline {
        match read_rows(input, deadline).await {
            Ok(read) => {
                let mut result = compare(input.acked, input.in_doubt, &read.found);
                result.newest_acked_timeline = input.newest_timeline();
                result.checked_on = Some(read.server);
                result.leader_confirmed = read.leader;
                result.server_gap = read.gap.map(|(a, b)| {
                    let start = input.started_unix_us as i64;
                    ServerGap {
                        start_us: a - start,
                        end_us: b - start,
                        duration_ms: (b - a) as f64 / 1000.0,
                    }
                });
                result.settle = settle;
                return result;
            }
            // Cut short by the deadline (a query or a connect shortened to fit it).
            Err(_) if Instant::now() >= deadline && last_error != "no attempt finished" => {
                cut_short = true;
            }
            Err(e) => last_error = e,
        }
        let pause = Instant::now() + RETRY_PAUSE;
        tokio::time::sleep_until(pause.min(deadline)).await;
    }
    LostWrites {
        checked: false,
        acknowledged: input.acked.len(),
        in_doubt: input.in_doubt.len() as u64,
        newest_acked_timeline: input.newest_timeline(),
        error: Some(format!(
            "could not read the probe's rows from the newest primary within {:.1} s: {last_error}{}",
            input.limit.as_secs_f64(),
            if cut_short {
                " (and the last attempt ran out of time)"
            } else {
                ""
            }
        )),
        settle,
        ..LostWrites::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patroni_times_parse_to_epoch_microseconds() {
        // 2026-11-27 08:12:09.247391 UTC
        let want = 1_795_767_129_247_391;
        assert_eq!(
            parse_patroni_time("2026-11-27 08:12:09.247391+00:00"),
            Some(want)
        );
        assert_eq!(
            parse_patroni_time("2026-11-27 10:12:09.247391+02:00"),
            Some(want)
        );
        assert_eq!(
            parse_patroni_time("2026-11-27 03:12:09.247391-05"),
            Some(want)
        );
        assert_eq!(
            parse_patroni_time("2000-03-01 00:00:00+00:00"),
            Some(951_868_800_000_000)
        );
        assert_eq!(parse_patroni_time("garbage"), None);
    }

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
