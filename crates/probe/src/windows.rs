//! Unavailability windows: a client's window from its first failure to its next success, and
//! the merged, all-clients windows (the union of their spans).

use std::collections::{BTreeMap, BTreeSet};

use crate::model::Window;
use crate::percentile::ms;

/// Merges per-client windows into all-clients windows (the union of their spans).
pub(crate) fn merge(client_windows: &[Window]) -> Vec<Window> {
    let mut sorted: Vec<&Window> = client_windows.iter().collect();
    sorted.sort_by_key(|w| w.start_us);
    let mut merged: Vec<(Window, BTreeSet<u32>)> = Vec::new();
    for w in sorted {
        match merged.last_mut() {
            Some((m, clients)) if w.start_us <= m.end_us => {
                m.end_us = m.end_us.max(w.end_us);
                m.errors += w.errors;
                m.open_at_end |= w.open_at_end;
                for (k, v) in &w.classes {
                    *m.classes.entry(k.clone()).or_default() += v;
                }
                clients.extend(w.client);
            }
            _ => {
                let mut m = w.clone();
                m.client = None;
                merged.push((m, w.client.into_iter().collect()));
            }
        }
    }
    merged
        .into_iter()
        .map(|(mut m, clients)| {
            m.duration_ms = ms(m.end_us - m.start_us);
            m.clients = Some(clients.len() as u32);
            m
        })
        .collect()
}

#[derive(Default)]
pub(crate) struct OpenWindow {
    pub(crate) start_us: u64,
    pub(crate) errors: u64,
    pub(crate) classes: BTreeMap<String, u64>,
}

impl OpenWindow {
    /// The client's window, ended at `end_us` (by a success, or by the run's end).
    pub(crate) fn closed(self, client: u32, end_us: u64, open_at_end: bool) -> Window {
        Window {
            client: Some(client),
            start_us: self.start_us,
            end_us,
            duration_ms: ms(end_us - self.start_us),
            errors: self.errors,
            classes: self.classes,
            clients: None,
            open_at_end,
        }
    }
}
