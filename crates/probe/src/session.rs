//! A whole probe run: the workload, the analysis of its history, the lost-write check, and
//! the report.

use tokio::sync::watch;

use crate::analysis::{self, AnalysisError};
use crate::lost;
use crate::record::{Attempt, ServerId};
use crate::report::{self, Limits, Report};
use crate::settings::{Keep, Settings};
use crate::workload::{self, ProbeError};

#[derive(Debug, thiserror::Error)]
pub enum SessionError {
    #[error(transparent)]
    Probe(#[from] ProbeError),
    #[error(transparent)]
    Analysis(#[from] AnalysisError),
}

/// Runs the workload until the duration passes or `stop` turns true, then analyses it (its
/// history read back from the file, so memory does not grow with the run).
pub async fn run(
    settings: &Settings,
    limits: &Limits,
    stop: watch::Receiver<bool>,
) -> Result<Report, SessionError> {
    let settings = Settings {
        keep_attempts: Keep::Nothing,
        ..settings.clone()
    };
    Ok(run_session(&settings, limits, stop).await?.0)
}

/// The same run, returning the attempts `keep` keeps (in the order they ended, as the history
/// file has them) with the report: a scenario or a soak reads them, not the file. With
/// [`Keep::All`] the analysis too is made from memory.
pub async fn run_kept(
    settings: &Settings,
    limits: &Limits,
    stop: watch::Receiver<bool>,
    keep: Keep,
) -> Result<(Report, Vec<Attempt>), SessionError> {
    let settings = Settings {
        keep_attempts: keep,
        ..settings.clone()
    };
    run_session(&settings, limits, stop).await
}

async fn run_session(
    settings: &Settings,
    limits: &Limits,
    stop: watch::Receiver<bool>,
) -> Result<(Report, Vec<Attempt>), SessionError> {
    let config = workload::connect_config(settings)?;
    let mut out = workload::run(settings, stop).await?;
    let stall_us = settings.stall_threshold.as_micros() as u64;
    let end_us = out.elapsed.as_micros() as u64;
    let analysed = if settings.keep_attempts == Keep::All {
        Ok(analysis::analyze_attempts(&out.attempts, stall_us, end_us))
    } else {
        analysis::analyze(&out.history_path, stall_us, end_us)
    };
    if out.history_is_temporary {
        let _ = std::fs::remove_file(&out.history_path);
    }
    let analysis = analysed?;
    let attempts = std::mem::take(&mut out.attempts);
    let lost_writes = if settings.lost_check {
        let servers: Vec<ServerId> = analysis.servers.iter().map(|s| s.server.clone()).collect();
        lost::check(&lost::CheckInput {
            config: &config,
            connect_timeout: settings.connect_timeout,
            limit: settings.verify_timeout,
            table: &settings.table,
            run_id: &out.run_id,
            application_name: &out.application_name,
            started_unix_us: out.started_unix_us,
            acked: &analysis.acked,
            in_doubt: &analysis.in_doubt,
            servers: &servers,
            patroni: &settings.patroni,
        })
        .await
    } else {
        lost::LostWrites::skipped(&analysis.acked, analysis.in_doubt.len())
    };
    let exceeded = limits.exceeded(&analysis, &lost_writes);
    let report = Report {
        schema: report::SCHEMA,
        schema_version: report::SCHEMA_VERSION,
        probe_version: env!("CARGO_PKG_VERSION").to_string(),
        run_id: out.run_id,
        application_name: out.application_name,
        started_at: report::rfc3339(out.started_unix_us),
        started_unix_us: out.started_unix_us,
        duration_ms: out.elapsed.as_secs_f64() * 1000.0,
        settings: settings.clone(),
        server_version: out.server_version,
        analysis,
        lost_writes,
        limits: limits.clone(),
        exceeded,
    };
    Ok((report, attempts))
}
