//! A Patroni cluster as seen from outside, and the hosts its parts run on: the members and
//! their REST APIs (`lab`, `cluster`), where a step acts on a machine (`host`: the one seam,
//! Docker today), direct SQL to one member (`direct`), the observer's timeline of what was
//! done and seen (`timeline`), the leader lease and where in its loop a moment falls
//! (`lease`), settings profiles applied live (`profiles`, and the `profile` subcommand in
//! `command`), a bandwidth cap's tc commands (`shaping`), what is left undone when a run stops (`guard`) and the shape of a finding
//! (`findings`).
//!
//! It must never import the crates above it: faults, the doctor, the scenario runner or the
//! campaigns. They act on the cluster only through what this crate exposes.

pub mod cluster;
pub mod command;
pub mod direct;
pub mod findings;
pub mod guard;
pub mod host;
pub mod lab;
pub mod lease;
pub mod profiles;
pub mod shaping;
pub mod timeline;
