//! The `callback` subcommand: runs the library callback and logs one line on stderr.

use std::process::ExitCode;

use patroni_lab_callback::args::Invocation;
use patroni_lab_callback::pgbouncer::AdminTarget;
use patroni_lab_callback::{Config, Outcome, handle};

fn describe(outcome: &Outcome, admin: &AdminTarget) -> String {
    match outcome {
        Outcome::NotPrimary(role) => {
            format!("role is {}, pgbouncer.ini left alone", role.as_str())
        }
        Outcome::NotLeader { leader } => {
            format!("reports primary but {leader} holds the leader lock; pgbouncer.ini left alone")
        }
        Outcome::Pointed {
            from,
            to,
            leader,
            changed,
            reload,
            followed_from,
        } => {
            let was: Vec<String> = from.iter().map(ToString::to_string).collect();
            let mut line = if *changed {
                format!("pointed pgbouncer.ini at {to} (was {})", was.join(", "))
            } else {
                format!("pgbouncer.ini already points at {to}")
            };
            match reload {
                patroni_lab_callback::Reload::Done => {
                    line.push_str(&format!("; RELOAD sent to {}:{}", admin.host, admin.port))
                }
                patroni_lab_callback::Reload::NotRunning(why) => line.push_str(&format!(
                    "; PgBouncer not reachable ({why}), it reads the file when it starts"
                )),
            }
            if let Some(me) = followed_from {
                line.push_str(&format!(
                    "; the leader lock moved from {me} to {leader} meanwhile: followed it"
                ));
            }
            line
        }
    }
}

pub fn run(args: &[String]) -> ExitCode {
    let prefix = format!("patroni-lab callback {}", args.join(" "));
    let inv = match Invocation::parse(args) {
        Ok(inv) => inv,
        Err(e) => {
            eprintln!("{prefix}: error: {e}");
            return ExitCode::from(2);
        }
    };
    let cfg = match Config::from_lookup(|k| std::env::var(k).ok()) {
        Ok(cfg) => cfg,
        Err(e) => {
            eprintln!("{prefix}: error: {e}");
            return ExitCode::from(2);
        }
    };
    match handle(&inv, &cfg) {
        Ok(outcome) => {
            eprintln!("{prefix}: {}", describe(&outcome, &cfg.admin));
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{prefix}: error: {e}");
            ExitCode::FAILURE
        }
    }
}
