//! Signals for the long-running subcommands: the first SIGINT or SIGTERM (Ctrl-C, `docker
//! stop`, `timeout`, a CI runner) asks the run to stop early and still report; a second one
//! runs `abort` and exits at once. The handlers are installed explicitly, so this holds as
//! PID 1 in a container too, where no signal has a default action. `block_on` runs a long
//! subcommand on a runtime and turns its error into one line.

use anyhow::{Context, Result};
use tokio::signal::unix::{SignalKind, signal};

/// Installs the handlers (inside a tokio runtime). `first` says what stopping early does.
pub fn stop_on_signals(
    stop: tokio::sync::watch::Sender<bool>,
    first: &'static str,
    abort: impl Fn() + Send + 'static,
) -> Result<()> {
    let mut term = signal(SignalKind::terminate()).context("cannot handle SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot handle SIGINT")?;
    tokio::spawn(async move {
        for n in 0.. {
            let name = tokio::select! {
                _ = term.recv() => "SIGTERM",
                _ = int.recv() => "SIGINT",
            };
            if n == 0 {
                eprintln!("{name}: {first} (a second signal aborts)");
                let _ = stop.send(true);
            } else {
                eprintln!("{name} again: aborting, no report");
                abort();
                std::process::exit(crate::exit::ABORTED);
            }
        }
    });
    Ok(())
}

/// Input checked before anything slow: one line and exit 2 when it is bad, else `work` on a
/// new runtime (see [`block_on`]).
pub fn run_checked<C, F>(
    name: &str,
    checked: std::result::Result<C, String>,
    work: impl FnOnce(C) -> F,
) -> std::process::ExitCode
where
    F: std::future::Future<Output = Result<std::process::ExitCode>>,
{
    match checked {
        Ok(c) => block_on(name, work(c)),
        Err(e) => {
            eprintln!("patroni-lab {name}: error: {e}");
            std::process::ExitCode::from(crate::exit::Exit::BadInput)
        }
    }
}

/// Runs `work` on a new runtime: its exit code, or one line `patroni-lab <name>: error: ...`
/// and exit 1.
pub fn block_on(
    name: &str,
    work: impl std::future::Future<Output = Result<std::process::ExitCode>>,
) -> std::process::ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("patroni-lab {name}: error: cannot start the async runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match runtime.block_on(work) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("patroni-lab {name}: error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
