//! The `soak` subcommand: many faults picked at random (seeded) through one probe run, under a
//! profile; a line per event as it ends, then the report: every event with its lost writes,
//! the probe's summary, what was left behind. The profile the lab had before is put back.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use patroni_lab_probe::html::{self, Marker};
use patroni_lab_probe::settings::parse_duration;
use patroni_lab_profile::profile::{self, Settings};
use patroni_lab_scenario::cluster;
use patroni_lab_scenario::faults::{self, Fault};
use patroni_lab_scenario::lab::Lab;
use patroni_lab_scenario::profiles;
use patroni_lab_scenario::soak::{self, SoakEvent, SoakPlan, SoakReport};

use crate::matrix::{active_profile, blocking, put_back, scenario_of};
use crate::scenario::probe_for;

#[derive(Args)]
pub struct SoakArgs {
    /// How many faults (1 to 1000).
    #[arg(long, default_value_t = 50)]
    events: u32,
    /// Apply this profile first (see `patroni-lab profile list`); the one before is put back.
    #[arg(long)]
    profile: Option<String>,
    /// The seed of the schedule (faults and gaps); the same seed gives the same schedule.
    /// Default: a random one, printed.
    #[arg(long)]
    seed: Option<u64>,
    /// The faults to draw from, comma-separated, `name:secs` for one that lasts (default: every
    /// scenario at its default length).
    #[arg(long, value_delimiter = ',')]
    faults: Vec<String>,
    /// How long the cluster may take to be whole again after one event; the soak stops when it
    /// is not.
    #[arg(long, default_value = "120s", value_parser = parse_duration)]
    whole_within: Duration,
    /// Lost acknowledged writes allowed before the soak fails.
    #[arg(long, default_value_t = 0)]
    max_lost: u64,
    /// Print the schedule the seed gives (fault and gap per event) and touch nothing.
    #[arg(long)]
    dry_run: bool,
    /// Write the JSON report here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Write the HTML report (the whole run's chart with every event marked) here.
    #[arg(long)]
    html: Option<PathBuf>,
    #[command(flatten)]
    load: crate::load::LoadArgs,
}

/// Everything checked before anything slow.
struct Checked {
    faults: Vec<Fault>,
    /// The profile to apply and `default` (its base), when one is asked for.
    profile: Option<(String, Settings)>,
    all_profiles: Vec<(String, Settings)>,
}

fn check(args: &SoakArgs) -> Result<Checked, String> {
    if !(1..=1000).contains(&args.events) {
        return Err(format!(
            "--events {} is out of range: allowed 1 to 1000",
            args.events
        ));
    }
    let faults = if args.faults.is_empty() {
        faults::all()
    } else {
        args.faults
            .iter()
            .map(|s| scenario_of(s))
            .collect::<Result<Vec<_>, _>>()?
    };
    let all = profile::load_all(&profile::folder()).map_err(|e| e.to_string())?;
    let profile = match &args.profile {
        Some(name) => Some((
            name.clone(),
            profile::resolve(&all, name).map_err(|e| e.to_string())?.1,
        )),
        None => None,
    };
    let all_profiles = crate::profile::completed(&all).into_iter().collect();
    for (path, what) in [(&args.json, "JSON"), (&args.html, "HTML")] {
        if let Some(p) = path {
            std::fs::File::create(p)
                .map_err(|e| format!("cannot write the {what} report to {}: {e}", p.display()))?;
        }
    }
    Ok(Checked {
        faults,
        profile,
        all_profiles,
    })
}

fn event_line(total: usize, e: &SoakEvent) -> String {
    let whole = e
        .whole_again_ms
        .map_or("NOT whole again".to_string(), |ms| {
            format!("whole after {:.1} s", ms / 1000.0)
        });
    let after = e.leader_after.as_deref().unwrap_or("?");
    let lost = e
        .lost_after
        .map_or(String::new(), |n| format!("; lost after it: {n}"));
    let error = e
        .fault_error
        .as_deref()
        .map_or(String::new(), |err| format!("; FAULT STEP FAILED: {err}"));
    let old = match (
        e.old_leader_writes_after_lock_lost,
        &e.old_leader_writes_not_counted,
    ) {
        (Some(n), _) if n > 0 => format!("; {} wrote {n} after losing the lock", e.leader_before),
        (_, Some(why)) => format!("; old leader's writes NOT COUNTED ({why})"),
        _ => String::new(),
    };
    format!(
        "event {:>3} of {total}  {:<18} {} -> {after}: {whole}{lost}{old}{error}",
        e.index, e.fault, e.leader_before
    )
}

/// The report as text: the events, the probe's summary, the verdict's parts.
fn summary(r: &SoakReport, max_lost: u64) -> String {
    let mut s = format!(
        "soak: seed {}, {} of {} events\n",
        r.seed,
        r.events.len(),
        r.events_planned
    );
    for e in &r.events {
        s.push_str(&event_line(r.events_planned, e));
        s.push('\n');
    }
    s.push_str(&patroni_lab_probe::report::summary(&r.probe));
    let t = &r.client_timeouts;
    s.push_str(&format!(
        "client time-outs for every event: statement {:.0} ms, connect {:.0} ms{}\n",
        t.statement_ms,
        t.connect_ms,
        t.changed_by_scenario
            .as_deref()
            .map_or(String::new(), |n| format!(" ({n})"))
    ));
    match r.lost() {
        Some(n) => {
            let before = r.lost_before_first_event.unwrap_or(0);
            s.push_str(&format!(
                "lost acknowledged writes: {n} (allowed {max_lost}){}\n",
                if before > 0 {
                    format!("; {before} before the first event")
                } else {
                    String::new()
                }
            ));
        }
        None => s.push_str("lost acknowledged writes: NOT CHECKED\n"),
    }
    s.push_str(&format!(
        "split-brain writes: {} (allowed 0); old leaders' writes after losing the lock: {} (allowed 0)\n",
        r.split_brain_writes(),
        r.old_leader_writes()
            .map_or("NOT COUNTED".to_string(), |n| n.to_string())
    ));
    if r.interrupted {
        s.push_str("INTERRUPTED by a signal: the soak did not run to its end\n");
    }
    match &r.whole_at_end {
        Ok(leader) => s.push_str(&format!("cluster whole at the end: yes, {leader} leads\n")),
        Err(e) => s.push_str(&format!("cluster whole at the end: NO ({e})\n")),
    }
    if r.leftovers.is_empty() {
        s.push_str("left behind: nothing (containers running, no undo armed, no packet filter)\n");
    } else {
        for l in &r.leftovers {
            s.push_str(&format!("left behind: {l}\n"));
        }
    }
    s
}

/// The soak passes when every event ran and was proven, nothing is left behind, no more than
/// `max_lost` acknowledged writes were lost, and no write was acknowledged by two primaries:
/// no split-brain write and no write by an old leader after it lost the lock (counted).
fn passed(r: &SoakReport, max_lost: u64) -> bool {
    r.clean()
        && r.lost().is_some_and(|n| n as u64 <= max_lost)
        && r.split_brain_writes() == 0
        && r.old_leader_writes() == Some(0)
}

async fn run_soak(args: &SoakArgs, checked: Checked) -> Result<ExitCode> {
    let seed = args.seed.unwrap_or_else(patroni_lab_common::random_u64);
    if args.dry_run {
        let schedule = soak::schedule(seed, args.events as usize, &checked.faults);
        say!("soak schedule for seed {seed}: {} events", schedule.len());
        for (i, p) in schedule.iter().enumerate() {
            say!(
                "event {:>3}: after {:>4.1} s  {}",
                i + 1,
                p.gap.as_secs_f64(),
                p.fault.describe()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let lab = Lab::from_env();
    cluster::containers_up(&lab).map_err(anyhow::Error::msg)?;
    let default = checked
        .all_profiles
        .iter()
        .find(|(n, _)| n == "default")
        .map(|(_, s)| s.clone())
        .expect("default is always there");
    let mut before = None;
    if let Some((name, settings)) = &checked.profile {
        before = Some(
            active_profile(&lab, &checked.all_profiles)
                .await?
                .unwrap_or_else(|| "default".to_string()),
        );
        if before.as_deref() != Some(name.as_str()) {
            eprintln!("profile {name}: applying");
            let (lab, n, s, d) = (lab.clone(), name.clone(), settings.clone(), default.clone());
            blocking(move || profiles::apply(&lab, &n, &s, &d))
                .await
                .with_context(|| format!("applying profile {name}"))?;
        } else {
            before = None;
        }
    }

    let stop_rx = crate::signals::stop_undoing_faults(
        "undoing the fault in place, stopping the probe; the report follows",
    )?;
    let mut probe = probe_for(&lab, &args.load).map_err(anyhow::Error::msg)?;
    // Every fault's client needs at once (a paused switchover holds clients for seconds).
    let mut client_notes = Vec::new();
    for f in &checked.faults {
        client_notes.extend(f.adjust_probe(&mut probe));
    }
    client_notes.dedup();
    let client_note = (!client_notes.is_empty()).then(|| client_notes.join("; "));
    let plan = SoakPlan {
        seed,
        schedule: soak::schedule(seed, args.events as usize, &checked.faults),
        probe,
        whole_within: args.whole_within,
        client_note,
    };
    let total = plan.schedule.len();
    eprintln!(
        "soak: {total} events, seed {seed} (again with --seed {seed}), profile {}",
        args.profile.as_deref().unwrap_or("as the lab runs")
    );
    let result = soak::run(&lab, &plan, stop_rx, |e| {
        eprintln!("{}", event_line(total, e))
    })
    .await;

    if let Some(name) = &before {
        put_back(&lab, &checked.all_profiles, &default, name).await?;
    }
    let report = result?;
    let text = summary(&report, args.max_lost);
    say!("{}", text.trim_end());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        let markers: Vec<Marker> = report
            .timeline
            .iter()
            .filter(|e| e.what.starts_with("event "))
            .map(|e| Marker {
                at_us: e.at_us,
                label: e.what.clone(),
            })
            .collect();
        let extra = format!("<h2>Events</h2><pre>{}</pre>", html::escape(&text));
        let title = format!("patroni-lab soak, seed {}", report.seed);
        std::fs::write(
            path,
            html::page_with(&report.probe, &title, &extra, &markers),
        )
        .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let ok = passed(&report, args.max_lost);
    let (verdict, code) = if report.interrupted {
        ("INTERRUPTED (not graded)", crate::exit::INTERRUPTED)
    } else if report.events.iter().any(|e| e.fault_error.is_some()) {
        (
            "ERROR (a fault did not run as planned)",
            crate::exit::FAULT_ERROR,
        )
    } else if ok {
        ("PASS", crate::exit::PASS)
    } else {
        ("FAIL", crate::exit::FAILED)
    };
    say!("soak: {verdict}");
    Ok(ExitCode::from(code))
}

pub fn run(args: SoakArgs) -> ExitCode {
    crate::signals::run_checked("soak", check(&args), |checked| run_soak(&args, checked))
}
