//! `partition-leader`: the leader cut off from etcd and the other members for N s (nftables
//! rules inside its container); PgBouncer still reaches it. Proven from inside the leader: no
//! peer answers a TCP connect while the rules are in place.

use std::time::Duration;

use crate::fault::steps::{
    ETCD_PORT, PROOF_LIMIT, REST_PORT, container_ip, d, hold, prove, unreachable_from,
};
use crate::fault::{Ctx, FaultError, FaultKind, Needs, Timing};
use crate::grade::Expectations;
use crate::guard::{Guard, Undo};
use crate::lab::docker;

pub struct PartitionLeader;

impl FaultKind for PartitionLeader {
    fn name(&self) -> &'static str {
        "partition-leader"
    }
    fn describe(&self, secs: Option<u64>) -> String {
        format!(
            "the leader cut off from etcd and the replica for {} s (nftables in its container); PgBouncer still reaches it",
            secs.unwrap_or_default()
        )
    }
    fn default_secs(&self) -> Option<u64> {
        Some(45)
    }
    fn bound_rule(&self) -> Option<&'static str> {
        Some("min(secs, ttl) + 15 s")
    }
    fn lock_expires(&self) -> bool {
        true
    }
    fn needs(&self) -> Needs {
        Needs::Containers
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
        let etcd = lab
            .etcd
            .iter()
            .map(|e| container_ip(e).map(|ip| (ip, ETCD_PORT)))
            .collect::<Result<Vec<_>, _>>()?;
        let members = others
            .filter(|n| *n != leader)
            .map(|n| container_ip(n).map(|ip| (ip, REST_PORT)))
            .collect::<Result<Vec<_>, _>>()?;
        let targets: Vec<(String, u16)> = etcd.into_iter().chain(members).collect();
        let peers: Vec<&str> = targets.iter().map(|(ip, _)| ip.as_str()).collect();
        let set = peers.join(", ");
        let rules = format!(
            "add table inet plab\n\
             add chain inet plab in {{ type filter hook input priority 0; }}\n\
             add chain inet plab out {{ type filter hook output priority 0; }}\n\
             add rule inet plab in ip saddr {{ {set} }} drop\n\
             add rule inet plab out ip daddr {{ {set} }} drop\n"
        );
        let guard = Guard::arm({
            let leader = leader.to_string();
            Undo::new(
                format!("nft delete table inet plab in {leader}"),
                move || {
                    docker(&[
                        "exec", "--user", "root", &leader, "nft", "delete", "table",
                        "inet", "plab",
                    ])
                    .map(|_| ())
                    .map_err(|e| e.to_string())
                },
            )
        });
        step(format!(
            "{leader} cut off from etcd and the other members ({set})"
        ));
        d(&[
            "exec",
            "--user",
            "root",
            leader,
            "sh",
            "-c",
            &format!("printf '{rules}' | nft -f -"),
        ])?;
        let proven = prove(timeline, "the partition", PROOF_LIMIT, stopped, || {
            unreachable_from(leader, &targets)
        });
        let held = proven.and_then(|_| hold(ctx.duration(), stopped));
        step(guard.what().to_string());
        guard.undo().map_err(FaultError::Step)?;
        held
    }
}
