//! `lossy-link[:leader-etcd|leader-replica|clients-leader][:N%]`: one link of the leader's
//! loses N % of its packets for N s, both ways (nftables' random number on each packet, in
//! patroni-lab's own table inside the leader's container; this kernel has no netem qdisc). A
//! network that is lossy, not cut (Patroni #1195, #3314): does Patroni keep its lock, how often
//! do clients fail. Proven from inside the leader: its own connects to the far end of the link,
//! and the rule's counter of packets dropped above zero.

use crate::fault::steps::{
    LINK_BOUND_RULE, PROOF_LIMIT, act_undoable, hold, host, link_expectations, link_param,
    link_peers, prove, python_addresses,
};
use crate::fault::{
    Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Param, ParamKind, Timing, Value,
};
use crate::grade::Expectations;
use patroni_lab_cluster::findings::leftover;
use patroni_lab_cluster::host::{Action, Host};
use patroni_lab_cluster::lab::FILTER_TABLE;

pub struct LossyLink;

/// Which of the leader's links loses packets.
const LINK: Param = link_param(
    "leader-etcd",
    "the leader's link that loses packets (clients-leader: PgBouncer to the leader)",
);

/// How many of its packets, each way.
const LOSS: Param = Param {
    name: "loss",
    kind: ParamKind::Percentage,
    default: Value::Percent(30),
    help: "the share of the link's packets dropped, each way",
};

const DECLARED: Declared = Declared {
    name: "lossy-link",
    default_secs: Some(30),
    needs: Needs::Containers,
    bound_rule: Some(LINK_BOUND_RULE),
    // Not drawn by the soak until its runs say what it costs.
    effects: Effects {
        in_soak: false,
        ..Effects::PLAIN
    },
    params: &[LINK, LOSS],
    leftovers: &[leftover::PACKET_FILTER_LEFT],
};

/// The written link and loss (their defaults when not given).
fn link_and_loss(args: &Args) -> (&'static str, u8) {
    let link = args.word_of(&LINK);
    let loss = match args.get(LOSS.name) {
        Some(Value::Percent(p)) => p,
        _ => 30,
    };
    (link, loss)
}

/// The nft script that drops `loss` % of the packets between this host and `peers`, each way,
/// counted.
pub fn rules(family: &str, table: &str, peers: &[&str], loss: u8) -> String {
    let set = peers.join(", ");
    format!(
        "add chain {family} {table} in {{ type filter hook input priority 0; }}\n\
         add chain {family} {table} out {{ type filter hook output priority 0; }}\n\
         add rule {family} {table} in ip saddr {{ {set} }} numgen random mod 100 < {loss} counter drop\n\
         add rule {family} {table} out ip daddr {{ {set} }} numgen random mod 100 < {loss} counter drop\n"
    )
}

/// The packets our table's rules dropped so far (the sum of their counters), from `nft list`.
pub fn dropped(listing: &str) -> u64 {
    listing
        .split_whitespace()
        .collect::<Vec<_>>()
        .windows(3)
        .filter(|w| w[0] == "counter" && w[1] == "packets")
        .filter_map(|w| w[2].parse::<u64>().ok())
        .sum()
}

impl FaultKind for LossyLink {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, args: &Args) -> String {
        let (link, loss) = link_and_loss(args);
        format!(
            "{loss} % of the packets of the {link} link dropped for {} s, both ways (nftables in the leader's container); `:leader-replica`, `:clients-leader`, `:N%` choose",
            args.secs.unwrap_or_default()
        )
    }
    /// No worse than the same link cut for the hold: a lossy link to etcd may cost the lock
    /// (retry_timeout + a loop, then the lease: `partition-leader`'s bound); where nobody fails
    /// over (the clients' link, the replica's under synchronous replication) it may last the
    /// whole hold.
    fn expectations(&self, args: &Args, t: Timing) -> Expectations {
        link_expectations(link_and_loss(args).0, args, t)
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        let (lab, leader, timeline, stopped) = (ctx.lab, ctx.leader, ctx.timeline, ctx.stopped);
        let (link, loss) = link_and_loss(&ctx.args);
        let peers = link_peers(lab, leader, link)?;
        let ips: Vec<&str> = peers.iter().map(|(ip, _)| ip.as_str()).collect();
        let (family, table) = FILTER_TABLE;
        let h = host(lab, leader)?;
        ctx.step(format!(
            "{leader}: {loss} % of the {link} link's packets dropped ({})",
            ips.join(", ")
        ));
        let guard = act_undoable(
            &h,
            Action::AddFilter {
                family,
                table,
                rules: rules(family, table, &ips, loss),
            },
        )?;
        let proven = prove(timeline, "the lossy link", PROOF_LIMIT, stopped, || {
            lossy_from(h.as_ref(), &peers, family, table)
        });
        let held = proven.and_then(|_| hold(ctx.duration(), stopped));
        ctx.step(guard.what().to_string());
        guard.undo().map_err(FaultError::Step)?;
        held
    }
}

/// From inside `host`: 20 connects (0.2 s each) to the link's far end, then our rules' counter;
/// proof when it counts a dropped packet.
fn lossy_from(
    host: &dyn Host,
    peers: &[(String, u16)],
    family: &str,
    table: &str,
) -> Result<String, String> {
    let list = python_addresses(peers);
    let script = format!(
        "import socket\nfailed = 0\nfor i in range(20):\n    for a in [{list}]:\n        try:\n            socket.create_connection(a, 0.2).close()\n        except OSError:\n            failed += 1\nprint(failed)\n"
    );
    let count = || {
        host.run_root(&["nft", "list", "table", family, table])
            .map(|l| dropped(&l))
            .map_err(|e| e.to_string())
    };
    // Counted from now: only what these rules drop while the proof's own traffic runs.
    let before = count()?;
    let failed = host
        .run(&["python3", "-c", &script])
        .map_err(|e| e.to_string())?;
    let n = count()?.saturating_sub(before);
    let tries = 20 * peers.len();
    if n == 0 {
        return Err(format!(
            "from {}, no packet of the link dropped yet ({} of {tries} connects failed)",
            host.name(),
            failed.trim()
        ));
    }
    Ok(format!(
        "from {}, {n} packets of the link dropped by our rules meanwhile; {} of {tries} connects to its far end failed",
        host.name(),
        failed.trim()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_rules_drop_the_share_both_ways_and_count() {
        let r = rules("inet", "plab", &["10.0.0.1", "10.0.0.2"], 30);
        assert!(r.contains(
            "add rule inet plab in ip saddr { 10.0.0.1, 10.0.0.2 } numgen random mod 100 < 30 counter drop"
        ));
        assert!(r.contains(
            "add rule inet plab out ip daddr { 10.0.0.1, 10.0.0.2 } numgen random mod 100 < 30 counter drop"
        ));
    }

    #[test]
    fn dropped_sums_the_counters_of_a_listing() {
        let listing = "table inet plab {\n\tchain in {\n\t\ttype filter hook input priority filter; policy accept;\n\t\tip saddr { 10.0.0.1 } numgen random mod 100 < 30 counter packets 7 bytes 420 drop\n\t}\n\tchain out {\n\t\tip daddr { 10.0.0.1 } numgen random mod 100 < 30 counter packets 5 bytes 300 drop\n\t}\n}\n";
        assert_eq!(dropped(listing), 12);
        assert_eq!(dropped("table inet plab {\n}\n"), 0);
    }

    #[test]
    fn its_link_and_loss_are_read_from_the_written_fault() {
        let f = crate::faults::Fault::from_spec("lossy-link:leader-replica:10%:20").unwrap();
        assert_eq!(link_and_loss(&f.args()), ("leader-replica", 10));
        assert_eq!(f.secs(), Some(20));
        let d = crate::faults::Fault::from_spec("lossy-link").unwrap();
        assert_eq!(link_and_loss(&d.args()), ("leader-etcd", 30));
        assert!(d.describe().starts_with("30 % of the packets of the leader-etcd link"));
        // Where nobody fails over, the bound is the hold's.
        let long = crate::faults::Fault::from_spec("lossy-link:clients-leader:100%:60").unwrap();
        assert_eq!(long.expectations().max_window, Some(Duration::from_secs(75)));
        let etcd = crate::faults::Fault::from_spec("lossy-link:60").unwrap();
        assert_eq!(etcd.expectations().max_window, Some(Duration::from_secs(45)));
    }
}
