//! Signals for the long-running subcommands: the first SIGINT or SIGTERM (Ctrl-C, `docker
//! stop`, `timeout`, a CI runner) asks the run to stop early and still report; a second one
//! runs `abort` and exits at once. The handlers are installed explicitly, so this holds as
//! PID 1 in a container too, where no signal has a default action.

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
                std::process::exit(130);
            }
        }
    });
    Ok(())
}
