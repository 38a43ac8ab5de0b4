//! The building blocks faults are made of, each written once: steps on a host (`patroni_lab_cluster::host`)
//! and their undo guards, the hold that a signal cuts short, and the proofs that a fault took
//! effect (a service's state, a new start time, a port that refuses, the leader key moving).

use std::time::{Duration, Instant};

use std::sync::Arc;

use crate::fault::{Ctx, FaultError};
use patroni_lab_cluster::cluster;
use patroni_lab_cluster::guard::{Guard, Undo};
use patroni_lab_cluster::host::{Action, Host, Service, State};
use patroni_lab_cluster::lab::{self, Lab};
use patroni_lab_cluster::shaping::{self, RootQdisc};
use patroni_lab_cluster::timeline::{Source, Timeline};

pub fn err(e: impl ToString) -> FaultError {
    FaultError::Step(e.to_string())
}

/// Where `name` runs, as a fault step's error when it has no host.
pub fn host(lab: &Lab, name: &str) -> Result<Arc<dyn Host>, FaultError> {
    lab.host(name).map_err(FaultError::Step)
}

/// `action` on `host`, armed with its inverse first (the guard undoes it on any exit); the
/// caller says on the timeline what it does.
pub fn act_undoable(host: &Arc<dyn Host>, action: Action) -> Result<Guard, FaultError> {
    let undo = patroni_lab_cluster::host::undo(host.clone(), &action)
        .ok_or_else(|| FaultError::Step(format!("{} has no undo", host.describe(&action))))?;
    let guard = Guard::arm(undo);
    host.act(&action).map_err(err)?;
    Ok(guard)
}

/// A guard that starts `host`'s service again (a no-op when it runs).
pub fn start_again(host: &Arc<dyn Host>) -> Guard {
    let h = host.clone();
    Guard::arm(Undo::new(
        host.describe(&Action::Service(Service::Start)),
        move || {
            // A crash freezes the service before it kills it ([`leader_down`]): one left frozen
            // (its kill failed) is thawed first; anything else answers "not paused", ignored.
            let _ = h.act(&Action::Service(Service::Resume));
            h.act(&Action::Service(Service::Start))
                .map_err(|e| e.to_string())
        },
    ))
}

/// Holds a fault for `d`; a signal (`stopped`) cuts it short, which is an
/// [`FaultError::Interrupted`]: the fault did not last as planned.
pub fn hold(d: Duration, stopped: &dyn Fn() -> bool) -> Result<(), FaultError> {
    let start = Instant::now();
    let end = start + d;
    while Instant::now() < end {
        if stopped() {
            return Err(FaultError::Interrupted(format!(
                "{:.1} s into a hold of {} s",
                start.elapsed().as_secs_f64(),
                d.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100).min(end - Instant::now()));
    }
    Ok(())
}

/// Holds a fault for `d` as [`hold`] does, checking every second that it still holds
/// (`check`): a fault that something undid before its end (Patroni mending it, a process
/// gone) is [`FaultError::Unproven`] — it did not last as planned. The last check is recorded
/// as the proof that it held.
pub fn hold_checked(
    ctx: &Ctx,
    what: &str,
    check: impl Fn() -> Result<String, String>,
) -> Result<(), FaultError> {
    let d = ctx.duration();
    let start = Instant::now();
    loop {
        let left = d.saturating_sub(start.elapsed());
        hold(left.min(Duration::from_secs(1)), ctx.stopped)?;
        let seen = check().map_err(|e| {
            FaultError::Unproven(format!(
                "{what} no longer held {:.1} s into a hold of {} s: {e}",
                start.elapsed().as_secs_f64(),
                d.as_secs()
            ))
        })?;
        if start.elapsed() >= d {
            ctx.timeline.record(
                Source::Fault,
                format!(
                    "proof: {what} held {} s, checked every second: {seen}",
                    d.as_secs()
                ),
            );
            return Ok(());
        }
    }
}

/// How long a fault's effect may take to show (a container's state, a refused port, a new
/// postmaster after `POST /restart` returned): seconds at most, measured well under 1 s.
pub const PROOF_LIMIT: Duration = Duration::from_secs(10);
/// How long Patroni may take to notice a crashed postmaster: its next loop, at most loop_wait
/// (10 s by default, 14 s in the profiles here) plus a REST time-out or two.
pub const NOTICE_LIMIT: Duration = Duration::from_secs(30);
/// etcd's client port and Patroni's REST port inside the lab network.
pub const ETCD_PORT: u16 = lab::ETCD_CLIENT_PORT;
pub const REST_PORT: u16 = 8008;

/// Polls `check` until it sees the fault's effect (recorded as "proof: ..."), for at most
/// `limit`; else the fault is [`FaultError::Unproven`].
pub fn prove(
    timeline: &Timeline,
    what: &str,
    limit: Duration,
    stopped: &dyn Fn() -> bool,
    check: impl Fn() -> Result<String, String>,
) -> Result<(), FaultError> {
    let start = Instant::now();
    loop {
        let last = match check() {
            Ok(seen) => {
                timeline.record(Source::Fault, format!("proof: {seen}"));
                return Ok(());
            }
            Err(e) => e,
        };
        if stopped() {
            return Err(FaultError::Interrupted(format!("while waiting for {what}")));
        }
        if start.elapsed() >= limit {
            return Err(FaultError::Unproven(format!(
                "{what} not seen within {} s ({last})",
                limit.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Whether the process `pid` in `container` is stopped (state T): `Ok` naming it (`who`) and
/// its state, `Err` with the state it is in.
pub fn process_stopped(host: &dyn Host, pid: &str, who: &str) -> Result<String, String> {
    let status = host
        .read_file(&format!("/proc/{pid}/status"))
        .map_err(|e| format!("{who}'s status cannot be read: {e}"))?;
    let state = status
        .lines()
        .find_map(|l| l.strip_prefix("State:"))
        .map(str::trim)
        .unwrap_or("?");
    if state.starts_with('T') {
        Ok(format!("{who} (pid {pid}) is {state}"))
    } else {
        Err(format!("{who} is {state}"))
    }
}

/// Proves `host`'s service is in a state `wanted` accepts.
pub fn prove_status(
    timeline: &Timeline,
    host: &dyn Host,
    wanted: impl Fn(&State) -> bool,
    stopped: &dyn Fn() -> bool,
) -> Result<(), FaultError> {
    let name = host.name();
    prove(
        timeline,
        &format!("{name}'s state"),
        PROOF_LIMIT,
        stopped,
        || {
            let status = host.state().map_err(|e| e.to_string())?;
            if wanted(&status) {
                Ok(format!("{name} is {status} ({})", host.state_source()))
            } else {
                Err(format!("{name} is {status}"))
            }
        },
    )
}

/// The postmaster start time a member's Patroni reports.
pub fn postmaster_start(api_url: &str) -> Result<String, FaultError> {
    let me = cluster::member_status(api_url).map_err(FaultError::Step)?;
    me["postmaster_start_time"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| FaultError::Step(format!("{api_url}/patroni has no postmaster_start_time")))
}

/// Proves another member than `old` holds the leader key.
pub fn prove_new_holder(
    lab: &Lab,
    old: &str,
    timeline: &Timeline,
    stopped: &dyn Fn() -> bool,
) -> Result<(), FaultError> {
    prove(
        timeline,
        "the leader key moving",
        PROOF_LIMIT,
        stopped,
        || match cluster::lock_holder(lab)? {
            Some(h) if h != old => Ok(format!("the leader key is held by {h}")),
            Some(h) => Err(format!("the leader key is still held by {h}")),
            None => Err("the leader key is free".into()),
        },
    )
}

/// Whether the TCP port at `url` (`http://host:port`) refuses a connection.
pub fn refuses(url: &str) -> Result<String, String> {
    use std::net::ToSocketAddrs;
    let host_port = url.trim_start_matches("http://").trim_end_matches('/');
    let addr = host_port
        .to_socket_addrs()
        .map_err(|e| e.to_string())?
        .next()
        .ok_or_else(|| format!("{host_port} has no address"))?;
    match std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)) {
        Ok(_) => Err(format!("{host_port} still accepts connections")),
        Err(e) => Ok(format!("etcd's client port {host_port} refuses: {e}")),
    }
}

/// The leader's links a link fault (lossy, thin) acts on: its `link` parameter's words.
pub const LEADER_LINKS: &[&str] = &["leader-etcd", "leader-replica", "clients-leader"];

/// The far end of the leader's `link` (one of [`LEADER_LINKS`]): each address, with a port
/// there that a proof connects to (etcd's client port, a replica's REST API, PgBouncer's).
pub fn link_peers(lab: &Lab, leader: &str, link: &str) -> Result<Vec<(String, u16)>, FaultError> {
    let address = |name: &str| host(lab, name)?.address().map_err(err);
    let peers: Vec<(String, u16)> = match link {
        "leader-replica" => lab
            .nodes
            .iter()
            .filter(|n| n.name != leader)
            .map(|n| address(&n.name).map(|ip| (ip, REST_PORT)))
            .collect::<Result<_, _>>()?,
        "clients-leader" => vec![(address(lab::PGBOUNCER)?, lab::PGBOUNCER_PORT)],
        _ => lab
            .etcd
            .iter()
            .map(|e| address(e).map(|ip| (ip, ETCD_PORT)))
            .collect::<Result<_, _>>()?,
    };
    if peers.is_empty() {
        return Err(FaultError::Step(format!(
            "the {link} link has no far end here"
        )));
    }
    Ok(peers)
}

/// A link fault's `link` parameter: one of [`LEADER_LINKS`], `default` when not written.
pub const fn link_param(default: &'static str, help: &'static str) -> crate::fault::Param {
    crate::fault::Param {
        name: "link",
        kind: crate::fault::ParamKind::Link(LEADER_LINKS),
        default: crate::fault::Value::Word(default),
        help,
    }
}

/// A link fault's expectations: the base ones, the window bounded by [`link_window_bound`].
pub fn link_expectations(
    link: &str,
    args: &crate::fault::Args,
    t: crate::fault::Timing,
) -> crate::grade::Expectations {
    crate::grade::Expectations {
        max_window: Some(link_window_bound(link, args.secs.unwrap_or(0), t)),
        ..crate::grade::Expectations::base()
    }
}

/// [`link_window_bound`] in words, for a link fault's declaration.
pub const LINK_BOUND_RULE: &str = "min(secs, ttl) + 15 s; secs + 15 s where nobody fails over";

/// A link fault's bound on the window: no worse than the link cut for the hold — the lock may
/// be lost (retry_timeout + a loop, then the lease: `min(secs, ttl)`) —, the whole hold where
/// nobody fails over (the clients' link; the replica's under synchronous replication); plus
/// 15 s.
pub fn link_window_bound(link: &str, secs: u64, t: crate::fault::Timing) -> Duration {
    let whole_hold = link == "clients-leader" || (link == "leader-replica" && t.synchronous);
    let bound = if whole_hold { secs } else { secs.min(t.ttl) };
    Duration::from_secs(bound + 15)
}

/// What a link fault that shapes the leader's outgoing packets puts on its device, and how it
/// is proven: thin-link's cap, delay-link's delay.
pub struct LinkShape<'a> {
    /// What it does to the link, for the step's line (`capped at 256kbit`).
    pub does: String,
    /// The `tc -batch` lines for the device and the far-end addresses.
    pub script: &'a dyn Fn(&str, &[&str]) -> String,
    /// The proof's name on the timeline (`the thin link`).
    pub proof_name: &'a str,
    /// The proof, from the leader: its host, the far ends, the device.
    pub proof: &'a LinkProof<'a>,
}

/// A link fault's proof, from the leader: its host, the far ends (address, port), the device.
pub type LinkProof<'a> = dyn Fn(&dyn Host, &[(String, u16)], &str) -> Result<String, String> + 'a;

/// A link fault's course on the leader: our root slot on its device toward `link`'s far end,
/// `shape` on it (armed with its undo), the proof, the hold, the undo, and the check that the
/// device's root qdisc is back exactly as it was.
pub fn shape_link(ctx: &Ctx, link: &str, shape: LinkShape) -> Result<(), FaultError> {
    let (lab, leader) = (ctx.lab, ctx.leader);
    let peers = link_peers(lab, leader, link)?;
    let ips: Vec<&str> = peers.iter().map(|(ip, _)| ip.as_str()).collect();
    let h = host(lab, leader)?;
    let slot = RootSlot::toward(h.as_ref(), ips[0])?;
    let device = slot.device.clone();
    ctx.step(format!(
        "{leader}: what {device} sends to the {link} link ({}) {}",
        ips.join(", "),
        shape.does
    ));
    let guard = act_undoable(
        &h,
        Action::Shape {
            device: device.clone(),
            script: (shape.script)(&device, &ips),
            saved: slot.saved.clone(),
        },
    )?;
    let proven = prove(
        ctx.timeline,
        shape.proof_name,
        PROOF_LIMIT,
        ctx.stopped,
        || (shape.proof)(h.as_ref(), &peers, &device),
    );
    let held = proven.and_then(|_| hold(ctx.duration(), ctx.stopped));
    ctx.step(guard.what().to_string());
    guard.undo().map_err(FaultError::Step)?;
    slot.check_put_back(h.as_ref())?;
    held
}

/// The root qdisc slot of the device a host reaches a link's far end through: what a cap or
/// a delay of ours replaces there, and puts back.
pub struct RootSlot {
    pub host: String,
    pub device: String,
    /// The root qdisc found (`None`: `tc` printed none).
    pub before: Option<RootQdisc>,
    /// What ours replaces and must put back (`None`: the kernel's default).
    pub saved: Option<RootQdisc>,
}

impl RootSlot {
    /// The slot of `host`'s device toward `address`; refused, nothing done, when its root is
    /// a cap of ours already (a leftover) or someone else's classful qdisc.
    pub fn toward(host: &dyn Host, address: &str) -> Result<Self, FaultError> {
        let name = host.name().to_string();
        let route = host
            .run_root(&["ip", "-o", "route", "get", address])
            .map_err(err)?;
        let device = shaping::device_for(&route).ok_or_else(|| {
            FaultError::Step(format!("{name}: no device toward {address}: {route}"))
        })?;
        let show = host
            .run_root(&["tc", "qdisc", "show", "dev", &device])
            .map_err(err)?;
        let before = shaping::root_qdisc(&show);
        let saved = replaceable(&name, &device, before.as_ref())?;
        // A qdisc under someone else's root (a netem under a tbf, say) would not come back with
        // the root's one line.
        if let Some(q) = saved.as_ref().filter(|q| shaping::has_children(&show, q)) {
            return Err(FaultError::Step(format!(
                "{name}: {device}'s root qdisc `{}` has a qdisc of its own under it, which would not come back, so it is not replaced; nothing was done",
                q.line
            )));
        }
        Ok(Self {
            host: name,
            device,
            before,
            saved,
        })
    }

    /// Touch only what we added: after the undo, the root qdisc is again exactly the one found.
    pub fn check_put_back(&self, host: &dyn Host) -> Result<(), FaultError> {
        let after = root_of(host, &self.device)?;
        if after.as_ref().map(|q| &q.line) == self.before.as_ref().map(|q| &q.line) {
            return Ok(());
        }
        Err(FaultError::Step(format!(
            "{}: {}'s root qdisc was not put back as it was: was `{}`, now `{}`",
            self.host,
            self.device,
            self.before.as_ref().map_or("none", |q| q.line.as_str()),
            after.as_ref().map_or("none", |q| q.line.as_str())
        )))
    }
}

/// `device`'s root qdisc on `host`.
fn root_of(host: &dyn Host, device: &str) -> Result<Option<RootQdisc>, FaultError> {
    host.run_root(&["tc", "qdisc", "show", "dev", device])
        .map(|show| shaping::root_qdisc(&show))
        .map_err(err)
}

/// What our cap replaces and puts back (`None`: the kernel's default); refused, nothing done,
/// when the root is a cap of ours already (a leftover) or someone else's classful qdisc.
fn replaceable(
    leader: &str,
    device: &str,
    root: Option<&RootQdisc>,
) -> Result<Option<RootQdisc>, FaultError> {
    match root {
        None => Ok(None),
        Some(q) if q.is_default() => Ok(None),
        Some(q) if q.is_ours() => Err(FaultError::Step(format!(
            "{leader}: {device} still has a fault's cap ({}): `patroni-lab doctor --repair` takes it off",
            q.line
        ))),
        Some(q) if q.is_classful() => Err(FaultError::Step(format!(
            "{leader}: {device}'s root qdisc is a classful {} of its own (`{}`): its classes and filters could not be put back, so it is not replaced; nothing was done",
            q.kind, q.line
        ))),
        Some(q) if !q.replays() => Err(FaultError::Step(format!(
            "{leader}: {device}'s root qdisc `{}` would not come back as tc prints it (only a tbf or the kernel's default is put back), so it is not replaced; nothing was done",
            q.line
        ))),
        Some(q) => Ok(Some(q.clone())),
    }
}

/// Addresses as a Python list's items, for a script a proof runs on a host: `('ip',port),...`.
pub fn python_addresses(peers: &[(String, u16)]) -> String {
    peers
        .iter()
        .map(|(ip, port)| format!("('{ip}',{port})"))
        .collect::<Vec<_>>()
        .join(",")
}

/// A partition's proof, from inside `host`: none of `cut` answers a TCP connect (1 s each)
/// and every one of `kept` does (a selective partition cuts only what it says).
pub fn cut_off_from(
    host: &dyn Host,
    cut: &[(String, u16)],
    kept: &[(String, u16)],
) -> Result<String, String> {
    let container = host.name();
    let all: Vec<(String, u16)> = cut.iter().chain(kept).cloned().collect();
    let list = python_addresses(&all);
    let script = format!(
        "import socket\nfor a in [{list}]:\n    try:\n        socket.create_connection(a, 1).close(); print('%s:%d' % a)\n    except OSError:\n        pass\n"
    );
    let reached = host
        .run(&["python3", "-c", &script])
        .map_err(|e| e.to_string())?;
    let reached: Vec<&str> = reached.split_whitespace().collect();
    let said = |list: &[(String, u16)]| -> Vec<String> {
        list.iter().map(|(ip, p)| format!("{ip}:{p}")).collect()
    };
    let (cut, kept) = (said(cut), said(kept));
    let answering: Vec<String> = cut
        .iter()
        .filter(|a| reached.contains(&a.as_str()))
        .cloned()
        .collect();
    let silent: Vec<String> = kept
        .iter()
        .filter(|a| !reached.contains(&a.as_str()))
        .cloned()
        .collect();
    if !answering.is_empty() {
        return Err(format!(
            "from {container}, {} still answer",
            answering.join(", ")
        ));
    }
    if !silent.is_empty() {
        return Err(format!(
            "from {container}, {} do not answer, and they are not cut",
            silent.join(", ")
        ));
    }
    let mut proof = format!("from {container}, {} do not answer", cut.join(", "));
    if !kept.is_empty() {
        proof.push_str(&format!("; {} still answer", kept.join(", ")));
    }
    Ok(proof)
}

/// Waits until a member other than `old` holds the leader lock and runs.
pub fn wait_new_leader(
    lab: &Lab,
    old: &str,
    limit: Duration,
    stopped: &dyn Fn() -> bool,
) -> Result<String, FaultError> {
    let start = Instant::now();
    loop {
        if stopped() {
            return Err(FaultError::Interrupted(
                "while waiting for a new leader".into(),
            ));
        }
        if let Ok(l) = cluster::leader(lab) {
            if l != old {
                return Ok(l);
            }
        }
        if start.elapsed() >= limit {
            return Err(FaultError::NoFailover(format!(
                "no other member took the lead within {} s",
                limit.as_secs()
            )));
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// A fault on one service that lasts: `action` on its host, proven by its state (`proven`),
/// held for the fault's duration, then undone by `undo` (armed before the step).
pub fn hold_service(
    ctx: &Ctx,
    host: &Arc<dyn Host>,
    action: Service,
    undo: Guard,
    proven: impl Fn(&State) -> bool,
) -> Result<(), FaultError> {
    let action = Action::Service(action);
    ctx.step(host.describe(&action));
    let done = host
        .act(&action)
        .map_err(err)
        .and_then(|_| prove_status(ctx.timeline, host.as_ref(), proven, ctx.stopped))
        .and_then(|_| hold(ctx.duration(), ctx.stopped));
    ctx.step(undo.what().to_string());
    let undone = undo.undo();
    match (done, undone) {
        // The first failure is the cause (an undo of a fault that never took fails too): keep
        // it, and put the undo's failure on the timeline.
        (Err(e), Err(u)) => {
            ctx.step(format!("undo failed as well: {u}"));
            Err(e)
        }
        (Err(e), Ok(())) => Err(e),
        (Ok(()), Err(u)) => Err(FaultError::Step(u)),
        (Ok(()), Ok(())) => Ok(()),
    }
}

/// The leader's service taken down by `steps` in order (stop, or pause then kill), each on the
/// timeline, proven not running, started again once another member leads.
pub fn leader_down(ctx: &Ctx, steps: &[Service]) -> Result<(), FaultError> {
    let leader = host(ctx.lab, ctx.leader)?;
    let guard = start_again(&leader);
    for s in steps {
        let action = Action::Service(*s);
        ctx.step(leader.describe(&action));
        leader.act(&action).map_err(err)?;
    }
    prove_status(
        ctx.timeline,
        leader.as_ref(),
        |s| *s != State::Running,
        ctx.stopped,
    )?;
    wait_new_leader(ctx.lab, ctx.leader, Duration::from_secs(120), ctx.stopped)?;
    ctx.step(guard.what().to_string());
    guard.undo().map_err(FaultError::Step)
}

/// A restart of a service, proven by a new start time.
pub fn restart_service(ctx: &Ctx, name: &str) -> Result<(), FaultError> {
    let h = host(ctx.lab, name)?;
    let guard = start_again(&h);
    let before = h.started_at().map_err(err)?;
    let restart = Action::Service(Service::Restart);
    ctx.step(h.describe(&restart));
    h.act(&restart).map_err(err)?;
    ctx.step(format!("{name} restarted"));
    drop(guard);
    let now = h.started_at().map_err(err)?;
    if now == before {
        return Err(FaultError::Unproven(format!(
            "{name} still has the start time {before}"
        )));
    }
    ctx.step(format!(
        "proof: {name} started anew at {now} (was {before})"
    ));
    Ok(())
}

/// `POST {path}` with `body` to the leader's REST API (authenticated); its answer when 200.
pub fn post_to_leader(
    ctx: &Ctx,
    path: &str,
    body: &str,
    limit: Duration,
) -> Result<String, FaultError> {
    let node = ctx
        .lab
        .node(ctx.leader)
        .ok_or_else(|| FaultError::Step(format!("no REST API for {}", ctx.leader)))?;
    let (status, reply) = patroni_lab_common::patroni::send_json(
        &node.api_url,
        "POST",
        path,
        body,
        Some(&ctx.lab.auth),
        limit,
    )
    .map_err(err)?;
    if status != 200 {
        return Err(FaultError::Step(format!(
            "POST {path} answered {status}: {}",
            reply.trim()
        )));
    }
    Ok(reply.trim().to_string())
}

/// The REST API URL of `member`.
pub fn api_url<'a>(lab: &'a Lab, member: &str) -> Result<&'a str, FaultError> {
    lab.node(member)
        .map(|n| n.api_url.as_str())
        .ok_or_else(|| FaultError::Step(format!("no REST API for {member}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_is_on_the_timeline_and_an_effect_never_seen_is_unproven() {
        let t = Timeline::default();
        let seen = std::cell::Cell::new(0);
        // Seen on the third look: one proof line.
        let ok = prove(&t, "the effect", Duration::from_secs(5), &|| false, || {
            seen.set(seen.get() + 1);
            if seen.get() < 3 {
                Err("not yet".into())
            } else {
                Ok("the effect, seen".into())
            }
        });
        assert_eq!(ok, Ok(()));
        let lines: Vec<String> = t.events(0).into_iter().map(|e| e.what).collect();
        assert_eq!(lines, vec!["proof: the effect, seen".to_string()]);
        // Never seen: Unproven (exit 5 in the binary), with the last thing seen.
        let never = prove(&t, "the effect", Duration::ZERO, &|| false, || {
            Err("still running".into())
        });
        assert_eq!(
            never,
            Err(FaultError::Unproven(
                "the effect not seen within 0 s (still running)".into()
            ))
        );
        // A signal while waiting: Interrupted, not Unproven.
        let cut = prove(&t, "the effect", Duration::from_secs(5), &|| true, || {
            Err("still running".into())
        });
        assert!(matches!(cut, Err(FaultError::Interrupted(_))), "{cut:?}");
    }

    #[test]
    fn only_the_default_or_a_classless_root_of_someone_elses_is_replaced() {
        let q = |line: &str| shaping::root_qdisc(line).unwrap();
        let default = q("qdisc noqueue 0: root refcnt 2");
        assert_eq!(replaceable("p1", "eth0", Some(&default)).unwrap(), None);
        assert_eq!(replaceable("p1", "eth0", None).unwrap(), None);
        let tbf = q("qdisc tbf 8001: root refcnt 2 rate 8Mbit burst 16Kb lat 50ms");
        assert_eq!(
            replaceable("p1", "eth0", Some(&tbf)).unwrap(),
            Some(tbf.clone())
        );
        let theirs = q("qdisc htb 1: root refcnt 2 r2q 10 default 0x10");
        let e = replaceable("p1", "eth0", Some(&theirs))
            .unwrap_err()
            .to_string();
        assert!(e.contains("classful htb of its own"), "{e}");
        // `limit 10240p` as fq_codel prints it is not what its parser takes.
        let fq =
            q("qdisc fq_codel 8001: root refcnt 2 limit 10240p flows 1024 quantum 1514 target 5ms");
        let e = replaceable("p1", "eth0", Some(&fq))
            .unwrap_err()
            .to_string();
        assert!(e.contains("would not come back as tc prints it"), "{e}");
        let ours = q("qdisc htb 7a1: root refcnt 2 r2q 10 default 0");
        let e = replaceable("p1", "eth0", Some(&ours))
            .unwrap_err()
            .to_string();
        assert!(e.contains("still has a fault's cap"), "{e}");
    }
}
