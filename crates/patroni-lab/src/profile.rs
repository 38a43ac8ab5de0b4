//! The `profile` subcommand: lists the profiles in `profiles/` with what each changes from
//! `default`.

use std::process::ExitCode;

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
}

const BAD_INPUT: u8 = 2;

pub fn run(cmd: ProfileCommand) -> ExitCode {
    let dir = profile::folder();
    let all = match profile::load_all(&dir) {
        Ok(all) => all,
        Err(e) => {
            eprintln!("patroni-lab profile: error: {e}");
            return ExitCode::from(BAD_INPUT);
        }
    };
    let default = all["default"].settings.clone();
    match cmd {
        ProfileCommand::List => {
            for (name, p) in &all {
                let settings = p.complete(&all["default"], name).unwrap_or_default();
                print!("{}", list_entry(p, &settings, &default));
            }
            ExitCode::SUCCESS
        }
        ProfileCommand::Describe { name } => match profile::resolve(&all, &name) {
            Ok((p, settings)) => {
                print!("{}", describe(&p, &settings, &default));
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("patroni-lab profile: error: {e}");
                ExitCode::from(BAD_INPUT)
            }
        },
    }
}

/// Two lines: the name and summary, then what differs from `default`.
fn list_entry(p: &Profile, settings: &Settings, default: &Settings) -> String {
    let diff: Vec<String> = profile::differences(default, settings)
        .into_iter()
        .map(|(section, key, _, to)| {
            format!(
                "{section}.{key} = {}",
                to.map_or("-".into(), |v| v.to_string())
            )
        })
        .collect();
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
