//! The `profile` subcommand: lists the profiles in `profiles/` with what each changes from
//! `default`, applies one to the running lab, and says which one the running lab has.

use patroni_lab_common::exit::Exit;
use patroni_lab_common::say;
use std::collections::BTreeMap;
use std::process::ExitCode;

use crate::lab::Lab;
use crate::profiles;

use clap::Subcommand;
use patroni_lab_profile::keys::KEYS;
use patroni_lab_profile::profile::{self, Profile, Settings};

#[derive(Subcommand)]
pub enum ProfileCommand {
    /// Every profile, what it is for, and where it differs from `default`.
    List,
    /// One profile: every setting, with what it does; those that differ from `default` marked.
    Describe {
        /// The profile (see `patroni-lab profile list`).
        name: String,
    },
    /// Which profile the running lab has, read from the services themselves.
    Show,
    /// Apply a profile to the running lab (no restart, data kept).
    Apply {
        /// The profile (see `patroni-lab profile list`).
        name: String,
    },
}

pub fn run(cmd: ProfileCommand) -> ExitCode {
    let dir = profile::folder();
    let all = match profile::load_all(&dir) {
        Ok(all) => all,
        Err(e) => {
            eprintln!("patroni-lab profile: error: {e}");
            return ExitCode::from(Exit::BadInput);
        }
    };
    let default = all["default"].settings.clone();
    match cmd {
        ProfileCommand::List => {
            for (name, p) in &all {
                let settings = p.complete(&all["default"], name).unwrap_or_default();
                say!(
                    "{}",
                    list_entry(p, &settings, &default).trim_end_matches('\n')
                );
            }
            ExitCode::SUCCESS
        }
        ProfileCommand::Show => show(&all),
        ProfileCommand::Apply { name } => apply(&all, &name),
        ProfileCommand::Describe { name } => match profile::resolve(&all, &name) {
            Ok((p, settings)) => {
                say!(
                    "{}",
                    describe(&p, &settings, &default).trim_end_matches('\n')
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("patroni-lab profile: error: {e}");
                ExitCode::from(Exit::BadInput)
            }
        },
    }
}

/// Two lines: the name and summary, then what differs from `default`.
fn list_entry(p: &Profile, settings: &Settings, default: &Settings) -> String {
    let diff = profile::differences_text(default, settings);
    let changes = if p.name == "default" {
        "(the base of every other profile)".to_string()
    } else if diff.is_empty() {
        "(the same as default)".to_string()
    } else {
        diff.join(", ")
    };
    format!("{:<14} {}\n{:<14} {changes}\n", p.name, p.summary, "")
}

/// Every setting of one profile, `*` where it differs from `default`.
fn describe(p: &Profile, settings: &Settings, default: &Settings) -> String {
    let mut out = format!("{}: {}\n", p.name, p.summary);
    for line in &p.about {
        out.push_str(&format!("  {line}\n"));
    }
    for key in KEYS {
        let at = (key.section, key.name);
        let value = settings.get(&at).map_or("-".into(), |v| v.to_string());
        let mark = if settings.get(&at) != default.get(&at) {
            "*"
        } else {
            " "
        };
        out.push_str(&format!(
            "{mark} {:<34} {:<12} {}\n",
            format!("{}.{}", key.section, key.name),
            value,
            key.about
        ));
    }
    out
}

/// Every profile completed from `default`, by name.
pub fn completed(all: &BTreeMap<String, Profile>) -> BTreeMap<String, Settings> {
    all.iter()
        .filter_map(|(n, p)| p.complete(&all["default"], n).ok().map(|s| (n.clone(), s)))
        .collect()
}

fn show(all: &BTreeMap<String, Profile>) -> ExitCode {
    let live = match profiles::live(&Lab::from_env()) {
        Ok(live) => live,
        Err(e) => {
            eprintln!("patroni-lab profile show: error: {e} (is the lab up? make up)");
            return ExitCode::FAILURE;
        }
    };
    let by_name = completed(all);
    let matching = profiles::matching(&by_name, &live);
    let head = if matching.is_empty() {
        let (nearest, diff) = by_name
            .iter()
            .map(|(n, s)| (n, profile::differences_text(s, &live)))
            .min_by_key(|(_, d)| d.len())
            .expect("default is always there");
        format!(
            "active profile: none of profiles/; nearest: {nearest}, but {}",
            diff.join(", ")
        )
    } else {
        format!("active profile: {}", matching.join(" = "))
    };
    say!("{head}");
    say!(
        "(read from the running services: Patroni GET /config, PgBouncer SHOW CONFIG, HAProxy show env)"
    );
    let default = &by_name["default"];
    for key in KEYS {
        let at = (key.section, key.name);
        let mark = if live.get(&at) != default.get(&at) {
            "*"
        } else {
            " "
        };
        say!(
            "{mark} {:<34} {}",
            format!("{}.{}", key.section, key.name),
            live.get(&at).map_or("-".into(), |v| v.to_string())
        );
    }
    ExitCode::SUCCESS
}

fn apply(all: &BTreeMap<String, Profile>, name: &str) -> ExitCode {
    let (_, settings) = match profile::resolve(all, name) {
        Ok(found) => found,
        Err(e) => {
            eprintln!("patroni-lab profile apply: error: {e}");
            return ExitCode::from(Exit::BadInput);
        }
    };
    let default = &all["default"].settings;
    match profiles::apply(&Lab::from_env(), name, &settings, default) {
        Ok(done) => {
            for line in done {
                say!("  {line}");
            }
            say!("profile {name} is active (every service reports its settings)");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("patroni-lab profile apply {name}: error: {e}");
            ExitCode::FAILURE
        }
    }
}
