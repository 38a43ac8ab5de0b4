//! `partition-leader`: the leader cut off from etcd and the other members for N s (nftables
//! rules inside its container); PgBouncer still reaches it. Proven from inside the leader: no
//! peer answers a TCP connect while the rules are in place.

use std::time::Duration;

use crate::fault::steps::{
    ETCD_PORT, PROOF_LIMIT, REST_PORT, act_undoable, err, hold, host, prove, unreachable_from,
};
use patroni_lab_cluster::findings::leftover;
use crate::fault::{Ctx, Declared, Effects, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;
use patroni_lab_cluster::host::Action;
use patroni_lab_cluster::lab::FILTER_TABLE;

pub struct PartitionLeader;

/// What it is, as data: its name, how long it lasts, what it needs and does beyond its steps,
/// what it can leave behind.
const DECLARED: Declared = Declared {
    name: "partition-leader",
    default_secs: Some(45),
    needs: Needs::Containers,
    bound_rule: Some("min(secs, ttl) + 15 s"),
    effects: Effects {
        lock_expires: true,
        ..Effects::PLAIN
    },
    leftovers: &[leftover::PACKET_FILTER_LEFT],
};

impl FaultKind for PartitionLeader {
    fn declared(&self) -> Declared {
        DECLARED
    }
    fn describe(&self, secs: Option<u64>) -> String {
        format!(
            "the leader cut off from etcd and the replica for {} s (nftables in its container); PgBouncer still reaches it",
            secs.unwrap_or_default()
        )
    }
    /// The cut-off leader cannot renew its lock and demotes itself (retry_timeout + a loop);
    /// the replica takes over once the lock expires (ttl).
    fn expectations(&self, secs: Option<u64>, t: Timing) -> Expectations {
        Expectations {
            max_window: Some(Duration::from_secs(secs.unwrap_or(0).min(t.ttl) + 15)),
            // After the hold (the default 45 s hold: 150 s from the injection, as before).
            whole_within: Duration::from_secs(105),
            ..Expectations::base()
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
        let targets: Vec<(String, u16)> = etcd.into_iter().chain(members).collect();
        let peers: Vec<&str> = targets.iter().map(|(ip, _)| ip.as_str()).collect();
        let set = peers.join(", ");
        let (family, table) = FILTER_TABLE;
        let rules = format!(
            "add chain {family} {table} in {{ type filter hook input priority 0; }}\n\
             add chain {family} {table} out {{ type filter hook output priority 0; }}\n\
             add rule {family} {table} in ip saddr {{ {set} }} drop\n\
             add rule {family} {table} out ip daddr {{ {set} }} drop\n"
        );
        let h = host(lab, leader)?;
        step(format!(
            "{leader} cut off from etcd and the other members ({set})"
        ));
        let guard = act_undoable(
            &h,
            Action::AddFilter {
                family,
                table,
                rules,
            },
        )?;
        let proven = prove(timeline, "the partition", PROOF_LIMIT, stopped, || {
            unreachable_from(h.as_ref(), &targets)
        });
        let held = proven.and_then(|_| hold(ctx.duration(), stopped));
        step(guard.what().to_string());
        guard.undo().map_err(FaultError::Step)?;
        held
    }
}
