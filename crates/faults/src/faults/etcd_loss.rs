//! `etcd-loss`: etcd stopped for N s, then started (in the 3-node topology, one of three
//! members). Proven: etcd not running and its client port refusing.

use std::time::Duration;

use crate::fault::steps::{PROOF_LIMIT, err, hold, host, prove, prove_status, refuses, start_again};
use patroni_lab_cluster::host::{Action, Service, State};
use patroni_lab_cluster::findings::leftover;
use crate::fault::{Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;
use patroni_lab_cluster::lab;

pub struct EtcdLoss;

/// What it is, as data: its name, how long it lasts, what it needs and does beyond its steps,
/// what it can leave behind.
const DECLARED: Declared = Declared {
    name: "etcd-loss",
    default_secs: Some(25),
    needs: Needs::Containers,
    bound_rule: None,
    effects: Effects {
        in_matrix: true,
        ..Effects::PLAIN
    },
    params: &[],
    leftovers: &[leftover::CONTAINER_NOT_RUNNING],
};

impl FaultKind for EtcdLoss {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, args: &Args) -> String {
        let secs = args.secs;
        format!("etcd stopped for {} s, then started", secs.unwrap_or_default())
    }
    /// The primary demotes itself ~retry_timeout + a loop after etcd goes, and leads again once
    /// etcd is back.
    fn expectations(&self, args: &Args, _: Timing) -> Expectations {
        let secs = args.secs;
        Expectations {
            max_window: Some(Duration::from_secs(secs.unwrap_or(0) + 10)),
            // After the hold (the default 25 s hold: 120 s from the injection, as before).
            whole_within: Duration::from_secs(95),
            ..Expectations::base()
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        let (lab, timeline, stopped) = (ctx.lab, ctx.timeline, ctx.stopped);
        let step = |what: String| ctx.step(what);
        let etcd = host(lab, lab::ETCD)?;
        let guard = start_again(&etcd);
        let stop = Action::Service(Service::Stop);
        step(etcd.describe(&stop));
        etcd.act(&stop).map_err(err)?;
        let proven = prove_status(timeline, etcd.as_ref(), |s| *s != State::Running, stopped)
            .and_then(|_| match &lab.etcd_url {
                Some(url) => prove(timeline, "etcd refusing", PROOF_LIMIT, stopped, || {
                    refuses(url)
                }),
                None => Ok(()),
            });
        let held = proven.and_then(|_| hold(ctx.duration(), stopped));
        step(guard.what().to_string());
        guard.undo().map_err(FaultError::Step)?;
        held
    }
}
