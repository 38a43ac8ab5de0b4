//! The `soak` subcommand: many faults picked at random (seeded) through one probe run, under a
//! profile; a line per event as it ends, then the report: every event with its lost writes,
//! the probe's summary, what was left behind. The profile the lab had before is put back.

use patroni_lab_common::say;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use crate::soak::{self, SoakPlan};
use anyhow::{Context, Result};
use clap::Args;
use patroni_lab_cluster::cluster;
use patroni_lab_cluster::lab::Lab;
use patroni_lab_cluster::profiles;
use patroni_lab_faults::faults::{self, Fault};
use patroni_lab_probe::settings::parse_duration;
use patroni_lab_profile::profile::{self, Settings};

use crate::matrix::run::{active_profile, apply, scenario_of};

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
    /// Storm: events in pairs, the second 0–2 s after the first with no wait for a whole
    /// cluster in between, on whoever leads then (ordinary operations close together are
    /// what break clusters). The same seed gives the same storm.
    #[arg(long)]
    storm: bool,
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
    load: patroni_lab_probe::load::LoadArgs,
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
        faults::soak_defaults()
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
    let all_profiles = profiles::completed(&all).into_iter().collect();
    patroni_lab_common::reports_writable(&args.json, &args.html)?;
    Ok(Checked {
        faults,
        profile,
        all_profiles,
    })
}

async fn run_soak(args: &SoakArgs, checked: Checked) -> Result<ExitCode> {
    let seed = args.seed.unwrap_or_else(patroni_lab_common::random_u64);
    if args.dry_run {
        let schedule = soak::schedule(seed, args.events as usize, &checked.faults, args.storm);
        say!("soak schedule for seed {seed}: {} events", schedule.len());
        for (i, p) in schedule.iter().enumerate() {
            say!(
                "event {:>3}: after {:>4.1} s{}  {}",
                i + 1,
                p.gap.as_secs_f64(),
                if p.storm {
                    " (storm: no wait for a whole cluster)"
                } else {
                    ""
                },
                p.fault.describe()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let lab = Lab::from_env();
    cluster::containers_up(&lab).map_err(anyhow::Error::msg)?;
    let mut log = |line: String| eprintln!("{line}");
    let mut before = None;
    if let Some((name, _)) = &checked.profile {
        let active = active_profile(&lab, &checked.all_profiles)
            .await?
            .unwrap_or_else(|| "default".to_string());
        if active != *name {
            apply(&lab, &checked.all_profiles, name, &mut log, "applying").await?;
            before = Some(active);
        }
    }

    let stop_rx = patroni_lab_cluster::guard::stop_undoing_faults(
        "undoing the fault in place, stopping the probe; the report follows",
    )?;
    let mut probe = patroni_lab_scenario::plan::probe_for(&lab, |p| args.load.apply(p))
        .map_err(anyhow::Error::msg)?;
    // Every fault's client needs at once (a paused switchover holds clients for seconds).
    let mut client_notes = Vec::new();
    for f in &checked.faults {
        client_notes.extend(f.adjust_probe(&mut probe));
    }
    client_notes.dedup();
    let client_note = (!client_notes.is_empty()).then(|| client_notes.join("; "));
    let plan = SoakPlan {
        seed,
        schedule: soak::schedule(seed, args.events as usize, &checked.faults, args.storm),
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
        eprintln!("{}", soak::event_line(total, e))
    })
    .await;

    if let Some(name) = &before {
        apply(&lab, &checked.all_profiles, name, &mut log, "put back").await?;
    }
    let report = result?;
    let text = soak::summary(&report, args.max_lost);
    say!("{}", text.trim_end());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report)? + "\n")
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    if let Some(path) = &args.html {
        std::fs::write(path, soak::page(&report, args.max_lost))
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    let verdict = soak::verdict(&report, args.max_lost);
    say!("soak: {}", verdict.as_str());
    Ok(ExitCode::from(verdict.exit_code()))
}

pub fn run(args: SoakArgs) -> ExitCode {
    patroni_lab_common::signals::run_checked("soak", check(&args), |checked| {
        run_soak(&args, checked)
    })
}
