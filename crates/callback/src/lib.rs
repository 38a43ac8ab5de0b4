//! The Patroni callback that keeps PgBouncer pointed at the leader.
//!
//! Patroni runs `patroni-lab callback <action> <role> <scope>` on every node for every
//! lifecycle event. When the node reports itself primary, the callback confirms through the
//! local REST API that this node holds the leader lock, rewrites the `[databases]` section of
//! the shared `pgbouncer.ini` atomically, and asks PgBouncer to `RELOAD`. Every other role is
//! a no-op. It never sends `PAUSE`, so it can never leave PgBouncer paused.

pub mod args;
pub mod ini;
pub mod pgbouncer;
mod run;

pub use run::{Config, ConfigError, Outcome, Reload, RunError, handle};
