//! `delay-link[:leader-etcd|leader-replica|clients-leader][:Nms]`: what the leader sends on one
//! of its links is delayed by N ms for N s (a netem qdisc under our htb class, as thin-link
//! lays it out: the previous root qdisc saved, put back and checked). A network that is slow,
//! not cut. Where the kernel has no netem qdisc (this machine's has none) the run is refused
//! before anything is done, in one line naming the host and the missing qdisc: the kernel is
//! asked on a veth pair of our own, made and removed at once. Proven from inside the leader:
//! its TCP connects to the far end take the delay.

use crate::fault::steps::{
    LINK_BOUND_RULE, LinkShape, link_expectations, link_param, python_addresses, shape_link,
};
use crate::fault::{
    Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Param, ParamKind, Timing, Value,
};
use crate::grade::Expectations;
use patroni_lab_cluster::findings::leftover;
use patroni_lab_cluster::host::{Host, HostError};
use patroni_lab_cluster::lab::Lab;
use patroni_lab_cluster::shaping;

pub struct DelayLink;

/// Which of the leader's links is delayed.
const LINK: Param = link_param(
    "leader-etcd",
    "the leader's link whose outgoing packets are delayed (clients-leader: to PgBouncer)",
);

/// By how much.
const DELAY: Param = Param {
    name: "delay",
    kind: ParamKind::Delay,
    default: Value::Millis(DEFAULT_DELAY_MS),
    help: "how long each packet the leader sends on the link waits",
};

/// 200 ms: a slow WAN link's round trip, far below Patroni's retry_timeout (10 s).
const DEFAULT_DELAY_MS: u32 = 200;

const DECLARED: Declared = Declared {
    name: "delay-link",
    default_secs: Some(30),
    needs: Needs::Containers,
    bound_rule: Some(LINK_BOUND_RULE),
    // Never measured here (no netem in this kernel): not drawn by the soak, not in the matrix.
    effects: Effects {
        in_soak: false,
        ..Effects::PLAIN
    },
    params: &[LINK, DELAY],
    leftovers: &[leftover::QDISC_LEFT],
};

/// The written link and delay (their defaults when not given).
fn link_and_delay(args: &Args) -> (&'static str, u32) {
    let link = args.word_of(&LINK);
    let ms = match args.get(DELAY.name) {
        Some(Value::Millis(ms)) => ms,
        _ => DEFAULT_DELAY_MS,
    };
    (link, ms)
}

/// What a netem probe's outcome says: `Ok` when the kernel made one, or when it cannot be
/// told (the veth pair could not be made: then the fault's own step fails if netem is missing
/// after all); the refusal otherwise.
fn netem_answer(host: &str, probe: Result<String, String>) -> Result<(), String> {
    match probe {
        Ok(_) => Ok(()),
        Err(e) => Err(format!(
            "delay-link needs the netem qdisc, and {host}'s kernel has none ({}); nothing was done",
            e.lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("tc refused it")
                .trim()
        )),
    }
}

impl FaultKind for DelayLink {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, args: &Args) -> String {
        let (link, ms) = link_and_delay(args);
        format!(
            "what the leader sends on the {link} link delayed by {ms} ms for {} s (netem under htb in the leader's container, its previous root qdisc put back; refused where the kernel has no netem); `:leader-replica`, `:clients-leader`, `:Nms` choose",
            args.secs.unwrap_or_default()
        )
    }
    /// As a lossy link's: no worse than the link cut for the hold.
    fn expectations(&self, args: &Args, t: Timing) -> Expectations {
        link_expectations(link_and_delay(args).0, args, t)
    }
    /// Every member could be the leader when the fault lands: each kernel is asked.
    fn preflight(&self, lab: &Lab, _args: &Args) -> Result<(), String> {
        for node in &lab.nodes {
            let h = lab.host(&node.name)?;
            // tc's own words, not the whole probe script; a host that did not answer is not
            // a kernel without netem.
            let probe = match h.run_root(&["sh", "-c", shaping::NETEM_PROBE]) {
                Ok(out) => Ok(out),
                Err(HostError::Failed { detail, .. }) => Err(format!("tc: {detail}")),
                Err(e) => {
                    return Err(format!(
                        "delay-link could not ask {} whether its kernel has the netem qdisc: {e}",
                        node.name
                    ));
                }
            };
            netem_answer(&node.name, probe)?;
        }
        Ok(())
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        let (link, ms) = link_and_delay(&ctx.args);
        let script = |device: &str, ips: &[&str]| shaping::delay_script(device, ips, ms);
        let proof =
            |h: &dyn Host, peers: &[(String, u16)], _device: &str| delayed_from(h, peers, ms);
        shape_link(
            ctx,
            link,
            LinkShape {
                does: format!("delayed by {ms} ms"),
                script: &script,
                proof_name: "the delayed link",
                proof: &proof,
            },
        )
    }
}

/// From inside `host`: 5 TCP connects to each far end, timed; proof when their median took at
/// least 80 % of the delay (the SYN waits it out).
fn delayed_from(host: &dyn Host, peers: &[(String, u16)], ms: u32) -> Result<String, String> {
    let list = python_addresses(peers);
    let script = format!(
        "import socket, time\nts = []\nfor i in range(5):\n    for a in [{list}]:\n        t = time.monotonic()\n        try:\n            socket.create_connection(a, 5).close()\n        except OSError:\n            continue\n        ts.append((time.monotonic() - t) * 1000)\nts.sort()\nprint(round(ts[len(ts) // 2]) if ts else -1)\n"
    );
    let out = host
        .run(&["python3", "-c", &script])
        .map_err(|e| e.to_string())?;
    let median: i64 = out
        .trim()
        .parse()
        .map_err(|_| format!("the timed connects printed {out}"))?;
    if median < 0 {
        return Err(format!("from {}, no connect to the link's far end succeeded", host.name()));
    }
    if (median as f64) < f64::from(ms) * 0.8 {
        return Err(format!(
            "from {}, connects to the link's far end took {median} ms (median), not yet the {ms} ms delay",
            host.name()
        ));
    }
    Ok(format!(
        "from {}, connects to the link's far end took {median} ms (median of 5 each), the {ms} ms delay",
        host.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn its_link_and_delay_are_read_from_the_written_fault_and_a_hold_is_not_a_delay() {
        let f = crate::faults::Fault::from_spec("delay-link:leader-replica:150ms:20").unwrap();
        assert_eq!(link_and_delay(&f.args()), ("leader-replica", 150));
        assert_eq!(f.secs(), Some(20));
        let d = crate::faults::Fault::from_spec("delay-link").unwrap();
        assert_eq!(link_and_delay(&d.args()), ("leader-etcd", 200));
        let etcd = crate::faults::Fault::from_spec("delay-link:60").unwrap();
        assert_eq!(etcd.expectations().max_window, Some(Duration::from_secs(45)));
        assert!(crate::faults::Fault::from_spec("delay-link:0ms").is_err());
        assert!(crate::faults::Fault::from_spec("delay-link:70000ms").is_err());
        // A fraction of a second is still refused as a hold where no delay is taken.
        assert!(crate::faults::Fault::from_spec("freeze-leader:0.5s").is_err());
        assert!(crate::faults::Fault::from_spec("freeze-leader:500ms").is_err());
    }

    #[test]
    fn a_kernel_without_netem_is_a_refusal_naming_the_host_and_the_qdisc() {
        let e = netem_answer(
            "patroni1",
            Err("tc: Error: Specified qdisc kind is unknown.\n".into()),
        )
        .unwrap_err();
        assert_eq!(
            e,
            "delay-link needs the netem qdisc, and patroni1's kernel has none (tc: Error: Specified qdisc kind is unknown.); nothing was done"
        );
        assert_eq!(netem_answer("patroni1", Ok(String::new())), Ok(()));
        assert_eq!(
            netem_answer("patroni1", Ok(shaping::NETEM_UNKNOWN.into())),
            Ok(())
        );
    }
}
