//! `haproxy-restart`: HAProxy restarted (its service restarted on its host), proven by a new start time.

use std::time::Duration;

use crate::fault::steps::restart_service;
use crate::fault::{Ctx, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;
use patroni_lab_cluster::lab;

pub struct HaproxyRestart;

impl FaultKind for HaproxyRestart {
    fn name(&self) -> &'static str {
        "haproxy-restart"
    }
    fn describe(&self, _: Option<u64>) -> String {
        "HAProxy's service restarted".into()
    }
    fn needs(&self) -> Needs {
        Needs::Containers
    }
    /// Clients reconnect once it listens again; the bound is 2x the worst measured with the test
    /// build of the probe (docs/measurements/).
    fn expectations(&self, _: Option<u64>, _: Timing) -> Expectations {
        Expectations {
            max_window: Some(Duration::from_secs(5)),
            ..Expectations::base()
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        restart_service(ctx, lab::HAPROXY)
    }
}
