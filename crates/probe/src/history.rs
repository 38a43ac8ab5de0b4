//! The run's record keeper: every attempt goes to the history file (one JSON line each,
//! flushed once a second so it can be followed live), into the live line on stderr and, when
//! the caller keeps them, into memory in the order they ended.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use crate::classify::Outcome;
use crate::percentile::Latencies;
use crate::record::{Attempt, Kind, ServerId};

/// Counters for the live line, reset every second.
#[derive(Default)]
struct Live {
    ok: u64,
    failed: u64,
    in_doubt: u64,
    classes: std::collections::BTreeMap<String, u64>,
    latencies: Latencies,
    server: Option<ServerId>,
}

impl Live {
    fn add(&mut self, a: &Attempt) {
        match a.outcome {
            Outcome::Ok => {
                self.ok += 1;
                self.latencies.record(a.latency_us());
                if a.kind == Kind::Write {
                    self.server = a.server.clone();
                }
            }
            Outcome::Failed => self.failed += 1,
            Outcome::InDoubt => self.in_doubt += 1,
        }
        if let Some(e) = &a.error {
            *self.classes.entry(e.class.label()).or_default() += 1;
        }
    }

    fn line(&mut self, second: u64) -> String {
        let p99 = self
            .latencies
            .quantile_ms(0.99)
            .map(|ms| format!("{ms:.1} ms"))
            .unwrap_or_else(|| "-".into());
        let classes: Vec<String> = self
            .classes
            .iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let errors = if classes.is_empty() {
            String::new()
        } else {
            format!(" [{}]", classes.join(", "))
        };
        let server = self
            .server
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_else(|| "-".into());
        let line = format!(
            "{second:>5}s  ok {:>5}  failed {:>4}  in doubt {:>3}{errors}  p99 {p99}  server {server}",
            self.ok, self.failed, self.in_doubt
        );
        let server = self.server.take();
        *self = Live {
            server,
            ..Live::default()
        };
        line
    }
}

/// Receives every attempt: writes it to the history file and feeds the live line; returns the
/// attempts `keep` keeps.
pub(crate) async fn collect(
    mut records: mpsc::Receiver<Attempt>,
    mut out: BufWriter<File>,
    live: bool,
    keep: crate::settings::Keep,
    start: Instant,
) -> std::io::Result<Vec<Attempt>> {
    let mut kept = Vec::new();
    let mut counters = Live::default();
    let mut tick = tokio::time::interval_at(
        tokio::time::Instant::from_std(start) + Duration::from_secs(1),
        Duration::from_secs(1),
    );
    let mut second = 0u64;
    loop {
        tokio::select! {
            record = records.recv() => {
                let Some(attempt) = record else { break };
                serde_json::to_writer(&mut out, &attempt)?;
                out.write_all(b"\n")?;
                counters.add(&attempt);
                if keep.keeps(&attempt) {
                    kept.push(attempt);
                }
            }
            _ = tick.tick() => {
                // Once a second the history reaches the file, so it can be followed live.
                out.flush()?;
                second += 1;
                let line = counters.line(second);
                if live {
                    eprintln!("{line}");
                }
            }
        }
    }
    out.flush()?;
    out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
    Ok(kept)
}
