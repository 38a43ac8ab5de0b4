//! The workload: N clients that write (and read) through one endpoint until told to stop,
//! never giving up, and stream every attempt to the history file and the live line.

use std::fs::File;
use std::io::BufWriter;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use patroni_lab_common::pg::query_rows;
use patroni_lab_common::pg::{ConnectError, connect_within};
use tokio::sync::{mpsc, watch};
use tokio_postgres::{Client, Config};

use crate::classify::{self, Failure, Outcome, Phase};
use crate::history::collect;
use crate::record::{Attempt, Kind};
use crate::settings::{Mode, Settings};
use crate::sql::{read_sql, seen_seq, served_by, table_ddl, wal_position, write_sql};

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("cannot read the connection string: {0}")]
    BadConninfo(String),
    #[error(
        "cannot reach {endpoint}: {detail}. Is the lab up (make up)? Are host, port, user and password right?"
    )]
    Unreachable { endpoint: String, detail: String },
    #[error("cannot prepare the probe table on {endpoint}: {detail}")]
    Setup { endpoint: String, detail: String },
    #[error("history file {path}: {detail}")]
    History { path: String, detail: String },
}

impl ProbeError {
    fn history(path: &std::path::Path, e: &std::io::Error) -> Self {
        Self::History {
            path: path.display().to_string(),
            detail: e.to_string(),
        }
    }
}

/// What a finished run leaves for the analysis.
#[derive(Debug, Clone)]
pub struct RunOutput {
    pub run_id: String,
    /// The application name every session of the run used (finds its statements later).
    pub application_name: String,
    pub started_unix_us: u64,
    pub elapsed: Duration,
    pub history_path: PathBuf,
    /// Whether the history file is a temporary one the caller should remove.
    pub history_is_temporary: bool,
    pub server_version: String,
    /// The attempts `Settings::keep_attempts` keeps, in the order they ended.
    pub attempts: Vec<Attempt>,
}

/// Parses the connection string (URL or key=value) into a config with the probe's time-outs.
pub fn connect_config(settings: &Settings) -> Result<Config, ProbeError> {
    let mut config =
        Config::from_str(&settings.conninfo).map_err(|e| ProbeError::BadConninfo(e.to_string()))?;
    config.connect_timeout(settings.connect_timeout);
    if let (None, Some(pw)) = (config.get_password(), &settings.password) {
        config.password(pw);
    }
    if config.get_application_name().is_none() {
        config.application_name("patroni-lab-probe");
    }
    Ok(config)
}

/// host:port/dbname user=..., never the password.
pub fn describe_endpoint(config: &Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!(
        "{host}:{port}/{} user={}",
        config.get_dbname().unwrap_or("postgres"),
        config.get_user().unwrap_or("postgres")
    )
}

/// An open connection and, once it has ended, why: the server's last word (say a FATAL
/// 57P01 sent while the session sat idle) is only seen by the task that drives it.
pub struct Session {
    pub client: Client,
    ended: tokio::task::JoinHandle<Option<tokio_postgres::Error>>,
}

impl Session {
    /// Why the session ended, when it ended on the server's word while no statement was
    /// pending (say a FATAL 57P01 sent to an idle session).
    async fn ended_unsolicited(self, wait: Duration) -> Option<Failure> {
        drop(self.client);
        match tokio::time::timeout(wait, self.ended).await {
            Ok(Ok(Some(ended))) if ended.as_db_error().is_some() => {
                Some(classify::classify(&ended, Phase::Unsent))
            }
            _ => None,
        }
    }

    /// The classified cause of a failed statement and the phase it failed in. The connection
    /// task routes a server error to the pending statement; only when none was pending does
    /// the error end the task instead, and the statement then fails as "closed" without ever
    /// having been written: that failure is `Phase::Unsent` and the write is certainly not
    /// committed.
    pub async fn cause(self, e: &tokio_postgres::Error) -> (Failure, Phase) {
        if e.as_db_error().is_none() && e.is_closed() {
            if let Some(failure) = self.ended_unsolicited(Duration::from_millis(100)).await {
                return (failure, Phase::Unsent);
            }
        }
        (classify::classify(e, Phase::Statement), Phase::Statement)
    }
}

/// Connects once with the whole connect time-out; the connection runs on its own task.
pub async fn connect(config: &Config, limit: Duration) -> Result<Session, Failure> {
    match connect_within(config, limit).await {
        Ok((client, ended)) => Ok(Session { client, ended }),
        Err(ConnectError::Failed(e)) => Err(classify::classify(&e, Phase::Connect)),
        Err(ConnectError::TimedOut(limit)) => Err(classify::timed_out(Phase::Connect, limit)),
    }
}

/// A tiny deterministic generator for the read/write mix (no dependency needed).
struct Mix(u64);

impl Mix {
    fn next_unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

struct Shared {
    settings: Settings,
    config: Config,
    /// The pinned clients' server (clients numbered from `settings.clients` on).
    pinned: Option<Config>,
    /// The reader endpoint, read after each write, acknowledged or not (`--reader-url`).
    reader: Option<Config>,
    run_id: String,
    start: Instant,
    /// Time between two transactions of one client, when a rate is set.
    interval: Option<Duration>,
}

impl Shared {
    fn since_start(&self, t: Instant) -> u64 {
        t.duration_since(self.start).as_micros() as u64
    }
}

/// Sleeps until `until` unless the run stops first; returns false when it stopped.
async fn sleep_or_stop(until: tokio::time::Instant, stop: &mut watch::Receiver<bool>) -> bool {
    if *stop.borrow() {
        return false;
    }
    tokio::select! {
        _ = tokio::time::sleep_until(until) => true,
        _ = stop.changed() => false,
    }
}

/// Runs one statement on `session`; gives the session back when it is still usable.
async fn execute(
    session: Session,
    sql: &str,
    limit: Duration,
) -> (
    Option<Session>,
    Result<Vec<Vec<Option<String>>>, (Failure, Phase)>,
) {
    if session.client.is_closed() {
        // It ended while idle: nothing is written to it. The server's word, when it said one.
        let failure = session
            .ended_unsolicited(Duration::from_millis(100))
            .await
            .unwrap_or_else(|| Failure {
                class: classify::ErrorClass::ConnectionLost,
                sqlstate: None,
                severity: None,
                message: "the connection had closed while idle".into(),
            });
        return (None, Err((failure, Phase::Unsent)));
    }
    match tokio::time::timeout(limit, query_rows(&session.client, sql)).await {
        Ok(Ok(rows)) => (Some(session), Ok(rows)),
        Ok(Err(e)) => {
            let usable = e.as_db_error().is_some_and(|db| db.severity() == "ERROR")
                && !session.client.is_closed();
            if usable {
                // An ERROR leaves the session usable (a 25006, say).
                let failure = classify::classify(&e, Phase::Statement);
                (Some(session), Err((failure, Phase::Statement)))
            } else {
                (None, Err(session.cause(&e).await))
            }
        }
        // The statement may still run: the session is given up.
        Err(_) => (
            None,
            Err((
                classify::timed_out(Phase::Statement, limit),
                Phase::Statement,
            )),
        ),
    }
}

async fn client_loop(
    id: u32,
    shared: Arc<Shared>,
    records: mpsc::Sender<Attempt>,
    mut stop: watch::Receiver<bool>,
) {
    let s = &shared.settings;
    let mut conn: Option<Session> = None;
    // The client's reader, its own task: a read that hangs never holds up a write.
    let (kick, kicked) = watch::channel(0u64);
    let reader = shared
        .reader
        .is_some()
        .then(|| tokio::spawn(reader_loop(id, shared.clone(), records.clone(), kicked)));
    let mut seq = 0u64;
    // The client's newest acknowledged write: what its reads on the reader endpoint look for.
    let mut last_acked = 0u64;
    let mut failures_in_a_row = 0u32;
    let mut mix = Mix(0x9E37_79B9_7F4A_7C15 ^ ((u64::from(id) + 1) * 0x1000_0001));
    let mut next_at = tokio::time::Instant::now();
    loop {
        if let Some(interval) = shared.interval {
            next_at = (next_at + interval).max(tokio::time::Instant::now());
            if !sleep_or_stop(next_at, &mut stop).await {
                break;
            }
        }
        if failures_in_a_row > 0 {
            let backoff = Duration::from_millis(10 << failures_in_a_row.min(8)).min(s.backoff_max);
            if !sleep_or_stop(tokio::time::Instant::now() + backoff, &mut stop).await {
                break;
            }
        }
        if *stop.borrow() {
            break;
        }
        seq += 1;
        let kind = if s.read_ratio > 0.0 && mix.next_unit() < s.read_ratio {
            Kind::Read
        } else {
            Kind::Write
        };
        let mut attempt = Attempt::begun(id, seq, kind, shared.since_start(Instant::now()));
        if conn.is_none() || s.mode == Mode::PerTransaction {
            attempt.connected = true;
            let config = match &shared.pinned {
                Some(pinned) if id >= s.clients => pinned,
                _ => &shared.config,
            };
            match connect(config, s.connect_timeout).await {
                Ok(session) => conn = Some(session),
                Err(failure) => {
                    conn = None;
                    attempt.outcome = Outcome::Failed;
                    attempt.error = Some(failure);
                }
            }
        }
        if let Some(session) = conn.take().filter(|_| attempt.error.is_none()) {
            let sql = match kind {
                Kind::Write => write_sql(&s.table, &shared.run_id, id, seq),
                Kind::Read | Kind::ReplicaRead => read_sql(&s.table, &shared.run_id, id),
            };
            let (kept, result) = execute(session, &sql, s.statement_timeout).await;
            conn = kept;
            match result {
                Ok(rows) => {
                    (attempt.server, attempt.in_recovery) = served_by(&rows);
                    attempt.wal = wal_position(&rows);
                }
                Err((failure, phase)) => {
                    attempt.outcome = match kind {
                        Kind::Write => classify::write_outcome(&failure, phase),
                        Kind::Read | Kind::ReplicaRead => Outcome::Failed,
                    };
                    attempt.error = Some(failure);
                }
            }
        }
        if s.mode == Mode::PerTransaction {
            conn = None;
        }
        attempt.end_us = shared.since_start(Instant::now());
        failures_in_a_row = if attempt.outcome == Outcome::Ok {
            0
        } else {
            failures_in_a_row + 1
        };
        if kind == Kind::Write && attempt.outcome == Outcome::Ok {
            last_acked = seq;
        }
        if records.send(attempt).await.is_err() {
            break;
        }
        // After every write, acknowledged or not: readers keep reading while writers cannot.
        if kind == Kind::Write {
            kick.send_replace(last_acked);
        }
    }
    drop(kick);
    if let Some(reader) = reader {
        let _ = reader.await;
    }
}

/// A client's reads on the reader endpoint: one after each of its writes (its newest
/// acknowledged one as `seq`), one at a time — writes made while a read runs ask for one more
/// read, not one each. Ends when the client stops.
async fn reader_loop(
    id: u32,
    shared: Arc<Shared>,
    records: mpsc::Sender<Attempt>,
    mut kicked: watch::Receiver<u64>,
) {
    let Some(reader) = shared.reader.as_ref() else {
        return;
    };
    let mut conn: Option<Session> = None;
    while kicked.changed().await.is_ok() {
        let seq = *kicked.borrow_and_update();
        let read = replica_read(&shared, reader, id, seq, &mut conn).await;
        if records.send(read).await.is_err() {
            break;
        }
    }
}

/// A read on the reader endpoint right after one of the client's writes: its newest row there,
/// looking for `seq`, its newest acknowledged write (0: none yet). Its failures are its own (the
/// writer's back-off ignores them).
async fn replica_read(
    shared: &Shared,
    reader: &Config,
    id: u32,
    seq: u64,
    conn: &mut Option<Session>,
) -> Attempt {
    let s = &shared.settings;
    let mut attempt = Attempt::begun(
        id,
        seq,
        Kind::ReplicaRead,
        shared.since_start(Instant::now()),
    );
    if conn.is_none() || s.mode == Mode::PerTransaction {
        attempt.connected = true;
        *conn = connect(reader, s.connect_timeout)
            .await
            .map_err(|failure| attempt.error = Some(failure))
            .ok();
    }
    if let Some(session) = conn.take() {
        let sql = read_sql(&s.table, &shared.run_id, id);
        let (kept, result) = execute(session, &sql, s.statement_timeout).await;
        *conn = kept.filter(|_| s.mode == Mode::Persistent);
        match result {
            Ok(rows) => {
                (attempt.server, attempt.in_recovery) = served_by(&rows);
                attempt.seen = Some(seen_seq(&rows));
                attempt.wal = wal_position(&rows);
            }
            Err((failure, _)) => attempt.error = Some(failure),
        }
    }
    if attempt.error.is_some() {
        attempt.outcome = Outcome::Failed;
    }
    attempt.end_us = shared.since_start(Instant::now());
    attempt
}

/// Makes the probe table if it is missing (on a primary; a replica has it by replication, or
/// its writes fail, which is what the run then reports), and returns the server's version.
async fn prepare(config: &Config, settings: &Settings) -> Result<String, ProbeError> {
    let endpoint = describe_endpoint(config);
    let session = connect(config, settings.connect_timeout)
        .await
        .map_err(|f| ProbeError::Unreachable {
            endpoint: endpoint.clone(),
            detail: f.message,
        })?;
    let setup_error = |e: tokio_postgres::Error| ProbeError::Setup {
        endpoint: endpoint.clone(),
        detail: classify::classify(&e, Phase::Statement).message,
    };
    let rows = query_rows(&session.client, "SELECT version(), pg_is_in_recovery()")
        .await
        .map_err(setup_error)?;
    let cell = |i: usize| rows.first().and_then(|r| r.get(i).cloned().flatten());
    if cell(1).as_deref() != Some("t") {
        query_rows(&session.client, &table_ddl(&settings.table))
            .await
            .map_err(setup_error)?;
    }
    Ok(cell(0).unwrap_or_default())
}

/// A run id unique across processes, containers and hosts: the start time in milliseconds and
/// 64 random bits (the pid is 1 in every container, so it cannot tell runs apart).
pub fn new_run_id(started_unix_us: u64) -> String {
    format!(
        "r{}-{:016x}",
        started_unix_us / 1000,
        patroni_lab_common::random_u64()
    )
}

/// PostgreSQL keeps the first 63 bytes of an application name.
const APPLICATION_NAME_MAX: usize = 63;

/// The run's application name: the one in the connection string (or `patroni-lab-probe`),
/// then the run id, which is always kept whole.
pub fn run_application_name(config: &Config, run_id: &str) -> String {
    let base = config.get_application_name().unwrap_or("patroni-lab-probe");
    let room = APPLICATION_NAME_MAX.saturating_sub(run_id.len() + 1);
    let mut cut = base.len().min(room);
    while !base.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{} {run_id}", &base[..cut])
}

/// Runs the workload until the duration passes or `stop` turns true (Ctrl-C).
pub async fn run(
    settings: &Settings,
    mut stop: watch::Receiver<bool>,
) -> Result<RunOutput, ProbeError> {
    let mut config = connect_config(settings)?;
    let run_id = new_run_id(patroni_lab_common::unix_us());
    let application_name = run_application_name(&config, &run_id);
    config.application_name(&application_name);
    // The history file first: a bad path fails before anything connects.
    let (history_path, history_is_temporary) = match &settings.history_path {
        Some(p) => (p.clone(), false),
        None => (
            std::env::temp_dir().join(format!("patroni-lab-probe-{run_id}.jsonl")),
            true,
        ),
    };
    let file = File::create(&history_path).map_err(|e| ProbeError::history(&history_path, &e))?;
    let server_version = match prepare(&config, settings).await {
        Ok(v) => v,
        Err(e) => {
            if history_is_temporary {
                let _ = std::fs::remove_file(&history_path);
            }
            return Err(e);
        }
    };
    // The run's clock starts here, after prepare(): the wall clock and the monotonic clock read
    // together, so `started_unix_us + t` is the wall time of any offset t in the history.
    let (start, started_unix_us) = (Instant::now(), patroni_lab_common::unix_us());
    // Another server the clients use, with the run's settings and application name.
    let other = |conninfo: &str| -> Result<Config, ProbeError> {
        let mut c = connect_config(&Settings {
            conninfo: conninfo.to_string(),
            ..settings.clone()
        })?;
        c.application_name(&application_name);
        Ok(c)
    };
    let pinned = settings
        .pinned
        .as_ref()
        .map(|p| other(&p.conninfo))
        .transpose()?;
    let reader = settings
        .reader
        .as_ref()
        .map(|r| other(&r.conninfo))
        .transpose()?;
    let shared = Arc::new(Shared {
        settings: settings.clone(),
        config,
        pinned,
        reader,
        run_id: run_id.clone(),
        start,
        interval: settings
            .rate
            .map(|r| Duration::from_secs_f64(f64::from(settings.clients) / r)),
    });
    let (stop_tx, stop_rx) = watch::channel(false);
    let (tx, rx) = mpsc::channel(10_000);
    let collector = tokio::spawn(collect(
        rx,
        BufWriter::new(file),
        settings.live,
        settings.keep_attempts,
        start,
    ));
    let pinned_clients = settings.pinned.as_ref().map_or(0, |p| p.clients);
    let clients: Vec<_> = (0..settings.clients + pinned_clients)
        .map(|id| tokio::spawn(client_loop(id, shared.clone(), tx.clone(), stop_rx.clone())))
        .collect();
    drop(tx);
    let deadline = settings
        .duration
        .map(|d| tokio::time::Instant::from_std(start) + d);
    tokio::select! {
        _ = async { match deadline { Some(d) => tokio::time::sleep_until(d).await, None => std::future::pending().await } } => {}
        _ = async { while !*stop.borrow() { if stop.changed().await.is_err() { std::future::pending::<()>().await } } } => {}
    }
    let _ = stop_tx.send(true);
    for c in clients {
        let _ = c.await;
    }
    let written = collector
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    let attempts = written.map_err(|e| ProbeError::history(&history_path, &e))?;
    Ok(RunOutput {
        run_id,
        application_name,
        started_unix_us,
        elapsed: start.elapsed(),
        history_path,
        history_is_temporary,
        server_version,
        attempts,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_description_hides_the_password() {
        let mut s = Settings::lab_defaults("postgres://postgres:secret@127.0.0.1:5432/postgres");
        s.connect_timeout = Duration::from_secs(1);
        let text = describe_endpoint(&connect_config(&s).unwrap());
        assert_eq!(text, "127.0.0.1:5432/postgres user=postgres");
        assert!(!text.contains("secret"));
    }

    #[test]
    fn mix_is_spread_over_the_unit_interval() {
        let mut m = Mix(42);
        let draws: Vec<f64> = (0..10_000).map(|_| m.next_unit()).collect();
        assert!(draws.iter().all(|x| (0.0..1.0).contains(x)));
        let below = draws.iter().filter(|x| **x < 0.3).count();
        assert!((2_500..3_500).contains(&below), "{below}");
    }
}
