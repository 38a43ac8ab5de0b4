//! `partition-leader[:etcd|replicas][:in|out][:reject]`: the leader cut off for N s (nftables
//! rules inside its container, in patroni-lab's own table) from etcd and the other members (the
//! default, `all`), from etcd only, or from the other members only; both ways (the default), or
//! only what comes `in` to it or goes `out` of it; packets dropped (the default: the far end
//! waits) or rejected (an ICMP error: the far end learns at once, Patroni #251). PgBouncer and
//! HAProxy still reach it. Proven
//! from inside the leader: no peer it is cut from answers a TCP connect while the rules are in
//! place, and every peer it is not cut from does.

use std::time::Duration;

use crate::fault::steps::{
    ETCD_PORT, PROOF_LIMIT, REST_PORT, act_undoable, err, hold, host, prove, cut_off_from,
};
use patroni_lab_cluster::findings::leftover;
use crate::fault::{
    Args, Ctx, Declared, Effects, FaultError, FaultKind, Needs, Param, ParamKind, Timing, Value,
};
use crate::grade::Expectations;
use patroni_lab_cluster::host::Action;
use patroni_lab_cluster::lab::FILTER_TABLE;

pub struct PartitionLeader;

/// Peers by address and the port a proof connects to.
type Peers = Vec<(String, u16)>;

/// What the leader is cut from: etcd and the other members, etcd only, the other members only.
const FROM: Param = Param {
    name: "from",
    kind: ParamKind::Target(&["all", "etcd", "replicas"]),
    default: Value::Word("all"),
    help: "what the leader is cut from",
};

/// Which way: both, or only the packets coming in to the leader, or only those going out.
const WAY: Param = Param {
    name: "way",
    kind: ParamKind::Target(&["both", "in", "out"]),
    default: Value::Word("both"),
    help: "which way packets are cut (in: to the leader, out: from it)",
};

/// What happens to a cut packet: dropped (silence) or rejected (an ICMP error at once).
const ACTION: Param = Param {
    name: "action",
    kind: ParamKind::Target(&["drop", "reject"]),
    default: Value::Word("drop"),
    help: "drop: the far end waits; reject: it is told at once",
};

/// What it is, as data: its name, how long it lasts, what it needs and does beyond its steps,
/// what it can leave behind.
const DECLARED: Declared = Declared {
    name: "partition-leader",
    default_secs: Some(45),
    needs: Needs::Containers,
    bound_rule: Some("min(secs, ttl) + 15 s"),
    effects: Effects {
        in_matrix: true,
        lock_expires: true,
        ..Effects::PLAIN
    },
    params: &[FROM, WAY, ACTION],
    leftovers: &[leftover::PACKET_FILTER_LEFT],
};

impl FaultKind for PartitionLeader {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, args: &Args) -> String {
        let secs = args.secs.unwrap_or_default();
        let from = match from(args) {
            "etcd" => "etcd only (the replica still reaches it)",
            "replicas" => "the other members only (etcd still reaches it)",
            _ => "etcd and the replica",
        };
        let way = match args.word(WAY.name) {
            Some("in") => ", only what comes in to it",
            Some("out") => ", only what goes out of it",
            _ => "",
        };
        let rejected = if args.word(ACTION.name) == Some("reject") {
            ", packets rejected"
        } else {
            ""
        };
        format!(
            "the leader cut off from {from}{way}{rejected} for {secs} s (nftables in its container); PgBouncer still reaches it; `:etcd` or `:replicas` cuts one side only, `:in` or `:out` one way, `:reject` rejects"
        )
    }
    /// Cut from etcd, the leader cannot renew its lock and demotes itself (retry_timeout + a
    /// loop); the replica takes over once the lock expires (ttl). Cut from its replicas only,
    /// it keeps the lock and clients see nothing under asynchronous replication; under
    /// `synchronous_mode` commits wait for the cut replica (not measured: no window bound).
    fn expectations(&self, args: &Args, t: Timing) -> Expectations {
        let secs = args.secs;
        let base = match from(args) {
            "replicas" if !t.synchronous => Expectations::writers_unaffected(),
            "replicas" => Expectations::base(),
            _ => Expectations {
                max_window: Some(Duration::from_secs(secs.unwrap_or(0).min(t.ttl) + 15)),
                ..Expectations::base()
            },
        };
        Expectations {
            // After the hold (the default 45 s hold: 150 s from the injection, as before).
            whole_within: Duration::from_secs(105),
            ..base
        }
    }
    /// Cut from its replicas only, the leader keeps renewing its lock. Cut only on the way in,
    /// its renewals still reach etcd for a while, so the lock does not leave it when the lease
    /// read at the injection runs out (measured: ~7 s later): no prediction is made.
    fn effects(&self, args: &Args) -> Effects {
        Effects {
            lock_expires: from(args) != "replicas" && args.word(WAY.name) != Some("in"),
            ..DECLARED.effects
        }
    }
    fn run(&self, ctx: &Ctx) -> Result<(), FaultError> {
        let (lab, leader, timeline, stopped) = (ctx.lab, ctx.leader, ctx.timeline, ctx.stopped);
        let step = |what: String| ctx.step(what);
        // Every etcd member and every other node.
        let others = lab.nodes.iter().map(|n| n.name.as_str());
        let address = |name: &str| host(lab, name)?.address().map_err(err);
        let etcd = lab
            .etcd
            .iter()
            .map(|e| address(e).map(|ip| (ip, ETCD_PORT)))
            .collect::<Result<Vec<_>, _>>()?;
        let members = others
            .filter(|n| *n != leader)
            .map(|n| address(n).map(|ip| (ip, REST_PORT)))
            .collect::<Result<Vec<_>, _>>()?;
        let (targets, kept): (Peers, Peers) = match from(&ctx.args) {
            "etcd" => (etcd, members),
            "replicas" => (members, etcd),
            _ => (etcd.into_iter().chain(members).collect(), Vec::new()),
        };
        if targets.is_empty() {
            return Err(FaultError::Step(format!(
                "{leader} has nothing to be cut from here (no {})",
                from(&ctx.args)
            )));
        }
        let peers: Vec<&str> = targets.iter().map(|(ip, _)| ip.as_str()).collect();
        let set = peers.join(", ");
        let (family, table) = FILTER_TABLE;
        let rules = rules(family, table, &set, &ctx.args);
        let h = host(lab, leader)?;
        let what = match from(&ctx.args) {
            "etcd" => "etcd",
            "replicas" => "the other members",
            _ => "etcd and the other members",
        };
        let mut how = String::new();
        if let Some(way) = ctx.args.word(WAY.name).filter(|w| *w != "both") {
            how.push_str(&format!(", {way} only"));
        }
        if ctx.args.word(ACTION.name) == Some("reject") {
            how.push_str(", rejected");
        }
        step(format!("{leader} cut off from {what} ({set}){how}"));
        let guard = act_undoable(
            &h,
            Action::AddFilter {
                family,
                table,
                rules,
            },
        )?;
        let proven = prove(timeline, "the partition", PROOF_LIMIT, stopped, || {
            cut_off_from(h.as_ref(), &targets, &kept)
        });
        let held = proven.and_then(|_| hold(ctx.duration(), stopped));
        step(guard.what().to_string());
        guard.undo().map_err(FaultError::Step)?;
        held
    }
}

/// The written `from` (its default when not given).
fn from(args: &Args) -> &'static str {
    args.word_of(&FROM)
}

/// The nft script for the cut: both chains always (an empty one passes everything), a rule in
/// each way that is cut, with its verdict.
pub fn rules(family: &str, table: &str, set: &str, args: &Args) -> String {
    let verdict = match args.word(ACTION.name) {
        Some("reject") => "reject",
        _ => "drop",
    };
    let way = args.word_of(&WAY);
    let mut script = format!(
        "add chain {family} {table} in {{ type filter hook input priority 0; }}\n\
         add chain {family} {table} out {{ type filter hook output priority 0; }}\n"
    );
    if way != "out" {
        script.push_str(&format!(
            "add rule {family} {table} in ip saddr {{ {set} }} {verdict}\n"
        ));
    }
    if way != "in" {
        script.push_str(&format!(
            "add rule {family} {table} out ip daddr {{ {set} }} {verdict}\n"
        ));
    }
    script
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::faults::Fault;

    fn rules_of(spec: &str) -> String {
        rules("inet", "plab", "10.0.0.1", &Fault::from_spec(spec).unwrap().args())
    }

    #[test]
    fn each_way_and_verdict_writes_its_rules() {
        let both = rules_of("partition-leader");
        assert!(both.contains("add rule inet plab in ip saddr { 10.0.0.1 } drop\n"));
        assert!(both.contains("add rule inet plab out ip daddr { 10.0.0.1 } drop\n"));
        let inward = rules_of("partition-leader:etcd:in");
        assert!(inward.contains("in ip saddr { 10.0.0.1 } drop"));
        assert!(!inward.contains("out ip daddr"));
        let outward = rules_of("partition-leader:out:reject");
        assert!(!outward.contains("in ip saddr"));
        assert!(outward.contains("add rule inet plab out ip daddr { 10.0.0.1 } reject\n"));
        // Both chains are made whatever the way (the undo deletes the table).
        for r in [&both, &inward, &outward] {
            assert!(r.contains("add chain inet plab in {") && r.contains("add chain inet plab out {"));
        }
        let d = Fault::from_spec("partition-leader:etcd:in:reject").unwrap().describe();
        assert!(d.contains("etcd only") && d.contains("only what comes in") && d.contains("rejected"), "{d}");
    }
}
