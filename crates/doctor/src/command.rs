//! The `doctor` subcommand: what the library's doctor found, one line per finding (what, the
//! evidence, the repair), the parts it could not read, the exit code by the worst finding; with
//! `--repair`, the repairs that can be automated (asking before one that discards data unless
//! `--yes`), then a second look.

use patroni_lab_common::say;
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::doctor::{self, Diagnosis, Severity};
use anyhow::{Context, Result};
use clap::Args;
use patroni_lab_cluster::cluster::Live;
use patroni_lab_cluster::findings::leftover;
use patroni_lab_cluster::lab::{ConfigReader, Lab};

use patroni_lab_common::exit::Exit;

#[derive(Args)]
pub struct DoctorArgs {
    /// Perform the repairs that can be automated (RESUME, the hold line, a fault's packet
    /// filter, reinit of a diverged replica), then look again.
    #[arg(long)]
    repair: bool,
    /// With --repair: do not ask before a repair that discards a member's data.
    #[arg(long, requires = "repair")]
    yes: bool,
    /// With --repair: keep no copy of a member's data before discarding it (by default it is
    /// copied first to PATRONI_LAB_KEPT or the temporary folder's patroni-lab-kept/: the only
    /// copy of the writes it holds past the fork).
    #[arg(long, requires = "repair")]
    discard: bool,
    /// Write the findings as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// First wait up to this long for a whole cluster (every replica streaming from the
    /// leader, none diverged, the front on it), print how long that took, then examine (what
    /// `make switchover` does after a switchover: Patroni issue #1251's window).
    #[arg(long, value_parser = patroni_lab_probe::settings::parse_duration)]
    wait_whole: Option<Duration>,
    /// Patroni REST APIs of an existing cluster, comma-separated, instead of the lab (its WAL
    /// and the lab's PgBouncer/HAProxy are then not checked).
    #[arg(long, value_delimiter = ',')]
    patroni: Vec<String>,
}

/// How long a repair may take to show (a reinit clones the leader's data).
const REPAIR_WAIT: Duration = Duration::from_secs(180);
/// Where a member's data directory is copied before a repair discards it: PATRONI_LAB_KEPT,
/// else `patroni-lab-kept` in the system's temporary folder (never inside a checkout, where
/// a test's working directory would put it beside tracked files).
fn kept_dir() -> std::path::PathBuf {
    std::env::var_os("PATRONI_LAB_KEPT")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| std::env::temp_dir().join("patroni-lab-kept"))
}
/// Rounds of repair and a second look.
const REPAIR_ROUNDS: usize = 3;

pub fn run(args: DoctorArgs) -> ExitCode {
    let mut lab = Lab::from_env();
    if !args.patroni.is_empty() {
        lab = match lab.with_members_at(&args.patroni) {
            Ok(lab) => lab,
            Err(e) => {
                eprintln!("patroni-lab doctor: error: {e}");
                return ExitCode::from(Exit::BadInput);
            }
        };
    }
    if let Some(p) = &args.json {
        if let Err(e) = std::fs::File::create(p) {
            eprintln!(
                "patroni-lab doctor: error: cannot write the JSON report to {}: {e}",
                p.display()
            );
            return ExitCode::from(Exit::BadInput);
        }
    }
    patroni_lab_common::signals::block_on("doctor", examine(args, lab))
}

async fn examine(args: DoctorArgs, lab: Lab) -> Result<ExitCode> {
    let mut d = match args.wait_whole {
        Some(limit) => wait_whole(&lab, limit).await,
        None => doctor::examine(&lab).await,
    };
    show(&d);
    // A repair can uncover what could not be read before (a paused member's packet filter):
    // up to three rounds of repair and a second look.
    let mut asked_already: Vec<(String, &'static str)> = Vec::new();
    for _ in 0..REPAIR_ROUNDS {
        if !args.repair || d.findings.is_empty() {
            break;
        }
        let yes = args.yes;
        let kept_dir = kept_dir();
        let keep = doctor::Keep {
            copy_to: (!args.discard).then_some(kept_dir.as_path()),
        };
        let done = doctor::repair(&lab, &d.findings, &keep, |f| {
            if !doctor::discards_data(f) || yes {
                return true;
            }
            if asked_already.contains(&(f.part.clone(), f.code)) {
                return false;
            }
            asked_already.push((f.part.clone(), f.code));
            ask(&format!(
                "{}: {} — repair (this discards {}'s data)?",
                f.part, f.code, f.part
            ))
        })
        .await;
        for r in &done {
            match &r.done {
                Ok(what) if doctor::confirmed_later(r.code) => {
                    say!("repair of {} on {} started: {what}", r.code, r.part)
                }
                Ok(what) => say!("repaired {} on {}: {what}", r.code, r.part),
                Err(e) => say!("repair of {} on {} failed: {e}", r.code, r.part),
            }
        }
        if done.is_empty() {
            break;
        }
        say!("looking again (up to {} s)...", REPAIR_WAIT.as_secs());
        d = again(&lab, &done).await;
        for r in done
            .iter()
            .filter(|r| r.done.is_ok() && doctor::confirmed_later(r.code))
        {
            // Confirmed only by a look that read every part: without a leader the members are
            // not looked at, and a part not read names that part, not this member.
            let unread = d
                .not_checked
                .iter()
                .find(|n| n.contains(r.part.as_str()))
                .or(d.not_checked.first())
                .map(String::as_str)
                .or(d.leader.is_none().then_some("the leader (none known)"));
            match d.findings.iter().find(|f| f.part == r.part) {
                None if unread.is_some() => say!(
                    "repair of {} on {} not confirmed: the second look could not read {}",
                    r.code,
                    r.part,
                    unread.unwrap_or_default()
                ),
                None => say!(
                    "repaired {} on {}: the second look finds it streaming",
                    r.code,
                    r.part
                ),
                Some(f) => say!(
                    "repair of {} on {} not confirmed: the second look finds {} ({})",
                    r.code,
                    r.part,
                    f.code,
                    f.what
                ),
            }
        }
        show(&d);
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&d)? + "\n")
            .with_context(|| format!("cannot write the JSON report to {}", path.display()))?;
    }
    Ok(ExitCode::from(code(&d)))
}

/// Looks again until the parts repaired are through: none of the repaired findings left and
/// none of the states a mended part passes through (a reinitialised member is "starting",
/// then not yet streaming), up to [`REPAIR_WAIT`].
async fn again(lab: &Lab, repaired: &[doctor::Repaired]) -> Diagnosis {
    const PASSING: [&str; 4] = [
        "member-not-running",
        "replica-not-streaming",
        "no-failover-possible",
        leftover::CONTAINER_NOT_RUNNING,
    ];
    let deadline = tokio::time::Instant::now() + REPAIR_WAIT;
    loop {
        let d = doctor::examine(lab).await;
        let still = d.findings.iter().any(|f| {
            repaired
                .iter()
                .any(|r| r.code == f.code && r.part == f.part)
                || (PASSING.contains(&f.code)
                    && (f.part == "cluster" || repaired.iter().any(|r| r.part == f.part)))
        });
        if !still || tokio::time::Instant::now() >= deadline {
            return d;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

/// Polls "whole" every 200 ms up to `limit`, says after how long it was whole (to the poll's
/// period and one check's duration) or what was still missing; then looks until the doctor
/// too finds nothing (Patroni's own state of a member lags its streaming by a loop), within
/// what is left of `limit`. Returns the last look.
async fn wait_whole(lab: &Lab, limit: Duration) -> Diagnosis {
    let started = tokio::time::Instant::now();
    let mut last = String::new();
    let mut whole = false;
    let mut live: Option<Live> = None;
    while started.elapsed() < limit {
        let check = tokio::time::Instant::now();
        // Patroni's settings, read once they answer (the whole checks need synchronous mode).
        let settings = match &live {
            Some(l) => l,
            None => match Live::read(lab, ConfigReader::Doctor).await {
                Ok(l) => live.insert(l),
                Err(e) => {
                    last = e;
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            },
        };
        match patroni_lab_cluster::cluster::whole(lab, settings).await {
            Ok(w) => {
                say!(
                    "whole after {:.1} s (within {:.1} s): every replica streams from {}",
                    started.elapsed().as_secs_f64(),
                    check.elapsed().as_secs_f64() + 0.2,
                    w.leader
                );
                whole = true;
                break;
            }
            Err(e) => last = e,
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    if !whole {
        say!(
            "not whole within {} s: {last}; the doctor's findings follow",
            limit.as_secs_f64()
        );
    }
    loop {
        let d = doctor::examine(lab).await;
        if !whole || d.findings.is_empty() || started.elapsed() >= limit {
            return d;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Asks on the terminal; without one, the answer is no (and says how to say yes).
fn ask(question: &str) -> bool {
    if !std::io::stdin().is_terminal() {
        say!("{question} not done: no terminal to ask on; pass --yes to allow it");
        return false;
    }
    print!("{question} [y/N] ");
    let _ = std::io::stdout().flush();
    let mut line = String::new();
    let _ = std::io::stdin().lock().read_line(&mut line);
    matches!(line.trim(), "y" | "Y" | "yes")
}

fn show(d: &Diagnosis) {
    say!(
        "leader: {}",
        d.leader.as_deref().unwrap_or("none (or not readable)")
    );
    for f in &d.findings {
        let level = match f.severity {
            Severity::Broken => "BROKEN",
            Severity::Degraded => "DEGRADED",
        };
        say!("{level} {} [{}]: {}", f.part, f.code, f.what);
        say!("    evidence: {}", f.evidence);
        say!("    repair: {}", f.repair);
    }
    for n in &d.not_checked {
        say!("not checked: {n}");
    }
    say!(
        "{}",
        match (d.worst(), d.not_checked.is_empty()) {
            (Some(Severity::Broken), _) => "doctor: BROKEN",
            (Some(Severity::Degraded), _) => "doctor: DEGRADED",
            (None, true) => "doctor: healthy",
            (None, false) => "doctor: nothing wrong found, but not everything could be checked",
        }
    );
}

/// The exit code by the worst finding; parts not read with nothing found is not "healthy".
fn code(d: &Diagnosis) -> Exit {
    match d.worst() {
        Some(Severity::Broken) => Exit::Broken,
        Some(Severity::Degraded) => Exit::Degraded,
        None if !d.not_checked.is_empty() => Exit::NotChecked,
        None => Exit::Pass,
    }
}
