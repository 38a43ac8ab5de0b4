//! `thin-link[:leader-etcd|leader-replica|clients-leader][:RATE]`: what the leader sends on one
//! of its links is capped at RATE for N s (htb as the root qdisc of the leader's device toward
//! the link's far end, one capped class and a u32 filter per far-end address: a tbf would cap
//! the whole device). A network that is thin, not cut (Patroni #1195, GitLab #7790): does
//! Patroni keep its lock, do clients fail or only slow down, how far the replica falls behind.
//! The device's previous root qdisc is saved and put back, and checked line for line
//! afterwards; one that would not come back is refused, nothing done. Proven from inside the
//! leader: the link's packets pass our class, at the rate asked as the kernel reads it back.

use crate::fault::steps::{LINK_BOUND_RULE, LinkShape, link_expectations, link_param, shape_link};
use crate::fault::{
    Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Param, ParamKind, Timing, Value,
};
use crate::grade::Expectations;
use patroni_lab_cluster::findings::leftover;
use patroni_lab_cluster::host::Host;
use patroni_lab_cluster::shaping;

pub struct ThinLink;

/// Which of the leader's links is capped.
const LINK: Param = link_param(
    "leader-replica",
    "the leader's link whose outgoing packets are capped (clients-leader: to PgBouncer)",
);

/// At how much.
const RATE: Param = Param {
    name: "rate",
    kind: ParamKind::Rate,
    default: Value::BitsPerSecond(DEFAULT_RATE),
    help: "what the leader may send on the link, in bits per second",
};

/// 256 kbit/s: under half of what the probe's writes make the leader send its replica here
/// (~0.6 Mbit/s of WAL at ~200 writes/s; at 1 Mbit/s the replica kept up), so its lag grows
/// (SCENARIOS.md "A thin link").
const DEFAULT_RATE: u64 = 256_000;

const DECLARED: Declared = Declared {
    name: "thin-link",
    default_secs: Some(30),
    needs: Needs::Containers,
    bound_rule: Some(LINK_BOUND_RULE),
    // Not drawn by the soak until its runs say what it costs.
    effects: Effects {
        in_soak: false,
        ..Effects::PLAIN
    },
    params: &[LINK, RATE],
    leftovers: &[leftover::QDISC_LEFT],
};

/// The written link and rate (their defaults when not given).
fn link_and_rate(args: &Args) -> (&'static str, u64) {
    let link = args.word_of(&LINK);
    let rate = match args.get(RATE.name) {
        Some(Value::BitsPerSecond(b)) => b,
        _ => DEFAULT_RATE,
    };
    (link, rate)
}

impl FaultKind for ThinLink {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, args: &Args) -> String {
        let (link, rate) = link_and_rate(args);
        format!(
            "what the leader sends on the {link} link capped at {} for {} s (htb in the leader's container, its previous root qdisc put back); `:leader-etcd`, `:clients-leader`, `:RATE` choose",
            Value::BitsPerSecond(rate),
            args.secs.unwrap_or_default()
        )
    }
    /// As a lossy link's: no worse than the link cut for the hold.
    fn expectations(&self, args: &Args, t: Timing) -> Expectations {
        link_expectations(link_and_rate(args).0, args, t)
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        let (link, rate) = link_and_rate(&ctx.args);
        let script = |device: &str, ips: &[&str]| shaping::cap_script(device, ips, rate);
        let proof = |h: &dyn Host, peers: &[(String, u16)], device: &str| {
            let ips: Vec<&str> = peers.iter().map(|(ip, _)| ip.as_str()).collect();
            capped_from(h, &ips, device, rate)
        };
        shape_link(
            ctx,
            link,
            LinkShape {
                does: format!("capped at {}", Value::BitsPerSecond(rate)),
                script: &script,
                proof_name: "the thin link",
                proof: &proof,
            },
        )
    }
}

/// From inside `host`: one 64-byte datagram to each far end (a port nobody listens on: nothing
/// there reads it) — not a burst, which would queue behind the cap for seconds and become part
/// of what the run measures —, then our class's counters and its rate as the kernel reads it
/// back; proof when the class carried the link's packets.
fn capped_from(host: &dyn Host, ips: &[&str], device: &str, asked: u64) -> Result<String, String> {
    let list = ips
        .iter()
        .map(|ip| format!("'{ip}'"))
        .collect::<Vec<_>>()
        .join(",");
    let script = format!(
        "import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\nfor a in [{list}]:\n    try:\n        s.sendto(b'x' * 64, (a, 9))\n    except OSError:\n        pass\n"
    );
    let stats = || {
        host.run_root(&[
            "tc", "-s", "class", "show", "dev", device, "classid", shaping::CLASS,
        ])
        .map_err(|e| e.to_string())
    };
    let counts = |s: &str| {
        shaping::class_counts(s).ok_or_else(|| format!("no counters for our class in: {s}"))
    };
    let (sent_before, _) = counts(&stats()?)?;
    host.run(&["python3", "-c", &script])
        .map_err(|e| e.to_string())?;
    let after = stats()?;
    let (sent, held) = counts(&after)?;
    let rate = shaping::class_rate(&after).unwrap_or("an unread rate");
    if shaping::tc_rate_bits(rate) != Some(asked) {
        return Err(format!(
            "from {}, our class's rate reads back as {rate}, not the {} asked",
            host.name(),
            Value::BitsPerSecond(asked)
        ));
    }
    let sent = sent.saturating_sub(sent_before);
    if sent == 0 {
        return Err(format!(
            "from {}, our class capped at {rate} carried no packet of the link yet",
            host.name()
        ));
    }
    Ok(format!(
        "from {}, the link's packets pass our class, capped at {rate} as the kernel reads it back ({sent} bytes meanwhile; held back {held} times so far)",
        host.name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn its_link_and_rate_are_read_from_the_written_fault() {
        let f = crate::faults::Fault::from_spec("thin-link:leader-etcd:64kbit:20").unwrap();
        assert_eq!(link_and_rate(&f.args()), ("leader-etcd", 64_000));
        assert_eq!(f.secs(), Some(20));
        let d = crate::faults::Fault::from_spec("thin-link").unwrap();
        assert_eq!(link_and_rate(&d.args()), ("leader-replica", 256_000));
        assert!(
            d.describe()
                .starts_with("what the leader sends on the leader-replica link capped at 256kbit"),
            "{}",
            d.describe()
        );
        let clients = crate::faults::Fault::from_spec("thin-link:clients-leader:60").unwrap();
        assert_eq!(clients.expectations().max_window, Some(Duration::from_secs(75)));
        assert!(crate::faults::Fault::from_spec("thin-link:30%").is_err());
    }
}
