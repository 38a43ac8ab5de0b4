//! Faults that always undo themselves. Injecting a fault arms a [`Guard`] holding its undo;
//! the undo runs when the guard is disarmed on purpose, when it is dropped (a failed step, a
//! failed assertion, a panic unwinding), and from [`undo_all`] when a second SIGINT/SIGTERM
//! makes the runner exit at once. Every armed undo is also listed in one registry for that.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

type Action = dyn Fn() -> Result<(), String> + Send + Sync;

/// One way to put things back.
pub struct Undo {
    /// What it does, for the timeline and messages ("docker start patroni1").
    pub what: String,
    action: Box<Action>,
    /// Set by the first run: an undo never runs twice (the registry and the guard share it).
    done: std::sync::atomic::AtomicBool,
}

impl Undo {
    pub fn new(
        what: impl Into<String>,
        action: impl Fn() -> Result<(), String> + Send + Sync + 'static,
    ) -> Self {
        Self {
            what: what.into(),
            action: Box::new(action),
            done: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn run(&self) -> Result<(), String> {
        if self.done.swap(true, Ordering::SeqCst) {
            return Ok(());
        }
        (self.action)().map_err(|e| format!("{}: {e}", self.what))
    }
}

static ACTIVE: Mutex<Vec<(u64, Arc<Undo>)>> = Mutex::new(Vec::new());
static NEXT: AtomicU64 = AtomicU64::new(1);

fn active() -> std::sync::MutexGuard<'static, Vec<(u64, Arc<Undo>)>> {
    ACTIVE.lock().unwrap_or_else(|e| e.into_inner())
}

/// An armed undo.
pub struct Guard {
    id: u64,
    undo: Option<Arc<Undo>>,
}

impl Guard {
    pub fn arm(undo: Undo) -> Self {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        let undo = Arc::new(undo);
        active().push((id, undo.clone()));
        Self {
            id,
            undo: Some(undo),
        }
    }

    /// What the undo will do.
    pub fn what(&self) -> &str {
        self.undo.as_ref().map_or("", |u| u.what.as_str())
    }

    /// Undoes the fault now; the guard is spent either way.
    pub fn undo(mut self) -> Result<(), String> {
        self.take().map_or(Ok(()), |u| u.run())
    }

    fn take(&mut self) -> Option<Arc<Undo>> {
        active().retain(|(id, _)| *id != self.id);
        self.undo.take()
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        if let Some(undo) = self.take() {
            if let Err(e) = undo.run() {
                eprintln!("patroni-lab: could not undo a fault: {e}");
            }
        }
    }
}

/// Runs every armed undo (newest first) and disarms them: for a process about to exit.
pub fn undo_all() -> Vec<String> {
    let mut armed: Vec<(u64, Arc<Undo>)> = std::mem::take(&mut *active());
    armed.reverse();
    armed.iter().filter_map(|(_, u)| u.run().err()).collect()
}

/// How many undos are armed (tests check nothing is left).
pub fn armed() -> usize {
    active().len()
}

/// What each armed undo would do (the soak reports any left at its end).
pub fn armed_list() -> Vec<String> {
    active().iter().map(|(_, u)| u.what.clone()).collect()
}

/// The stop signal of a run that injects faults: the first signal says `first` and stops the
/// run (its guards undo the fault in place); a second runs every armed undo and exits.
pub fn stop_undoing_faults(
    first: &'static str,
) -> anyhow::Result<tokio::sync::watch::Receiver<bool>> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    patroni_lab_common::signals::stop_on_signals(stop_tx, first, || {
        for e in undo_all() {
            eprintln!("could not undo: {e}");
        }
    })?;
    Ok(stop_rx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    fn counting(counter: &Arc<AtomicUsize>) -> Undo {
        let c = counter.clone();
        Undo::new("count", move || {
            c.fetch_add(1, Ordering::SeqCst);
            Ok(())
        })
    }

    #[test]
    fn undo_runs_once_whether_disarmed_dropped_or_unwound() {
        let n = Arc::new(AtomicUsize::new(0));
        Guard::arm(counting(&n)).undo().unwrap();
        assert_eq!(n.load(Ordering::SeqCst), 1);
        drop(Guard::arm(counting(&n)));
        assert_eq!(n.load(Ordering::SeqCst), 2);
        let m = n.clone();
        let unwound = std::panic::catch_unwind(move || {
            let _g = Guard::arm(counting(&m));
            panic!("a failed assertion");
        });
        assert!(unwound.is_err());
        assert_eq!(n.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn undo_all_runs_what_is_armed_and_disarms_it() {
        let n = Arc::new(AtomicUsize::new(0));
        let g = Guard::arm(counting(&n));
        assert!(undo_all().is_empty());
        assert_eq!(n.load(Ordering::SeqCst), 1);
        drop(g); // already undone: not again
        assert_eq!(n.load(Ordering::SeqCst), 1);
    }
}
