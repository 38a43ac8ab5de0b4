//! `freeze-etcd`: every etcd process frozen at one instant for N s, then resumed — a DCS that
//! hangs rather than one that is gone (a stalled disk under etcd, a VM its hypervisor paused):
//! the kernel still accepts connections and nothing answers them, so Patroni waits out its own
//! time-outs instead of hearing a refusal. Proven: etcd's host paused, and a request to its
//! client port unanswered within 1 s. In the 3-node topology, one of three members.

use std::time::Duration;

use crate::fault::steps::{PROOF_LIMIT, act_undoable, hold, host, prove, prove_status};
use crate::fault::{Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;
use patroni_lab_cluster::findings::leftover;
use patroni_lab_cluster::host::{Action, Service, State};
use patroni_lab_cluster::lab;

pub struct FreezeEtcd;

/// What it is, as data: its name, how long it lasts, what it needs and does beyond its steps,
/// what it can leave behind.
const DECLARED: Declared = Declared {
    name: "freeze-etcd",
    default_secs: Some(25),
    needs: Needs::Containers,
    bound_rule: None,
    effects: Effects {
        // Not in the soak's draw until measured over many runs.
        in_soak: false,
        ..Effects::PLAIN
    },
    params: &[],
    leftovers: &[leftover::CONTAINER_NOT_RUNNING],
};

impl FaultKind for FreezeEtcd {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, args: &Args) -> String {
        let secs = args.secs;
        format!(
            "every etcd process frozen at one instant (its host paused: connections hang unanswered) for {} s, then resumed",
            secs.unwrap_or_default()
        )
    }
    /// The leader cannot renew its lock but, its requests to etcd hanging rather than
    /// refused, it goes on serving until Patroni's own time-outs run out, then demotes itself;
    /// it leads again once etcd answers. Clients lose only the part of the freeze after the
    /// demotion: the bound is the freeze less 7 s (3 s at least), under 2x the worst of the
    /// runs under the default profile (retry_timeout 10), and the cluster is whole within 30 s
    /// of the thaw (docs/measurements/2026-12-04-shape-second-step.md). Under another profile
    /// it is not measured: a shorter retry_timeout may demote sooner and fail this bound.
    fn expectations(&self, args: &Args, _: Timing) -> Expectations {
        let secs = args.secs;
        Expectations {
            max_window: Some(Duration::from_secs(secs.unwrap_or(0).saturating_sub(7).max(3))),
            whole_within: Duration::from_secs(30),
            ..Expectations::base()
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        let etcd = host(ctx.lab, lab::ETCD)?;
        let pause = Action::Service(Service::Pause);
        ctx.step(etcd.describe(&pause));
        let resume = act_undoable(&etcd, pause)?;
        let proven = prove_status(ctx.timeline, etcd.as_ref(), |s| *s == State::Paused, ctx.stopped)
            .and_then(|_| match &ctx.lab.etcd_url {
                Some(url) => prove(ctx.timeline, "etcd unanswered", PROOF_LIMIT, ctx.stopped, || {
                    unanswered(url)
                }),
                None => Ok(()),
            });
        let held = proven.and_then(|_| hold(ctx.duration(), ctx.stopped));
        ctx.step(resume.what().to_string());
        resume.undo().map_err(FaultError::Step)?;
        held
    }
}

/// A request to etcd's client port gets no answer within 1 s (a frozen process's connections
/// may still be accepted by the kernel): it must fail by running out of its time, not at once
/// (a refusal, a reset: a stopped etcd, not a frozen one).
fn unanswered(url: &str) -> Result<String, String> {
    let limit = Duration::from_secs(1);
    let asked = std::time::Instant::now();
    match patroni_lab_common::patroni::get(url, "/version", limit) {
        Ok((status, _)) => Err(format!("etcd answered GET /version ({status})")),
        Err(e) if asked.elapsed() < limit.mul_f64(0.9) => Err(format!(
            "etcd's client port failed at once ({} ms), as a stopped one does: {e}",
            asked.elapsed().as_millis()
        )),
        Err(_) => Ok("etcd's client port gave no answer to GET /version within 1 s".into()),
    }
}
