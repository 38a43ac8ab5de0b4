//! The `callback` subcommand: runs the library callback and logs one line on stderr; and
//! `pgbouncer-start`, which PgBouncer's entrypoint runs to refresh the shared pgbouncer.ini.

use std::process::ExitCode;

use crate::args::Invocation;
use crate::pgbouncer::AdminTarget;
use crate::{Config, Outcome, handle};

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
                crate::Reload::Done => {
                    line.push_str(&format!("; RELOAD sent to {}:{}", admin.host, admin.port))
                }
                crate::Reload::NotRunning(why) => line.push_str(&format!(
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

/// `patroni-lab pgbouncer-start`: the userlist with the server's SCRAM secret, then the shared
/// pgbouncer.ini from the image's template, keeping the leader; a line on stderr for each.
pub fn pgbouncer_start() -> ExitCode {
    if let Err(e) = write_userlist() {
        eprintln!("patroni-lab pgbouncer-start: error: {e}");
        return ExitCode::FAILURE;
    }
    refresh_shared_ini()
}

/// How long PgBouncer's start waits for a node to give the secret.
const SECRET_WAIT: std::time::Duration = std::time::Duration::from_secs(120);

fn write_userlist() -> anyhow::Result<()> {
    use crate::{paths, userlist};
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
    let source = userlist::Source {
        // The nodes to ask, comma-separated (the compose file names them).
        hosts: var("PGBOUNCER_SECRET_FROM")
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "PGBOUNCER_SECRET_FROM (the nodes to read the SCRAM secret from) is not set"
                )
            })?
            .split(',')
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .collect(),
        port: 5432,
        user: var("POSTGRES_USER").unwrap_or_else(|| "postgres".into()),
        password: var("POSTGRES_PASSWORD")
            .ok_or_else(|| anyhow::anyhow!("POSTGRES_PASSWORD is not set"))?,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let secret = runtime.block_on(userlist::fetch_secret(&source, SECRET_WAIT))?;
    let path = std::path::Path::new(paths::USERLIST);
    userlist::write(path, &source.user, &secret)?;
    eprintln!(
        "patroni-lab pgbouncer-start: {} holds {}'s SCRAM secret (no password)",
        path.display(),
        source.user
    );
    Ok(())
}

fn refresh_shared_ini() -> ExitCode {
    use crate::paths;
    use std::path::Path;
    let (template, shared, profile) = (
        Path::new(paths::TEMPLATE_INI),
        Path::new(paths::SHARED_INI),
        Path::new(paths::PROFILE_INI),
    );
    match crate::refresh::refresh(template, shared, profile) {
        Ok(r) => {
            let leader = r
                .kept_target
                .map_or("the template's".to_string(), |t| t.to_string());
            let made = if r.made_profile {
                format!("; made an empty {}", profile.display())
            } else {
                String::new()
            };
            eprintln!(
                "patroni-lab pgbouncer-start: {} is {} with {leader} [databases] target{made}",
                shared.display(),
                template.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("patroni-lab pgbouncer-start: error: {e}");
            ExitCode::FAILURE
        }
    }
}
