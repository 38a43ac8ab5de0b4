//! The Patroni callback that keeps PgBouncer pointed at the leader.
//!
//! Patroni runs `patroni-lab callback <action> <role> <scope>` on every node for every
//! lifecycle event. When the node reports itself primary, the callback confirms through the
//! local REST API that this node holds the leader lock, rewrites the `[databases]` section of
//! the shared `pgbouncer.ini` atomically, and asks PgBouncer to `RELOAD`. Every other role is
//! a no-op. It never sends `PAUSE`, so it can never leave PgBouncer paused. At PgBouncer's
//! start, `refresh` renews the shared ini from the image and `userlist` writes the auth file.

pub mod args;
pub mod command;
pub mod ini;
pub mod pgbouncer;
pub mod refresh;
mod run;
pub mod userlist;

/// Where the lab keeps PgBouncer's files: the shared volume (also mounted in the Patroni
/// containers) and the image's template.
pub mod paths {
    /// The pgbouncer.ini PgBouncer reads and the callback rewrites.
    pub const SHARED_INI: &str = "/etc/pgbouncer/shared/pgbouncer.ini";
    /// The callback's lock file beside it.
    pub const SHARED_INI_LOCK: &str = "/etc/pgbouncer/shared/pgbouncer.ini.lock";
    /// The profile's PgBouncer settings, included last by pgbouncer.ini.
    pub const PROFILE_INI: &str = "/etc/pgbouncer/shared/profile.ini";
    /// pgbouncer.ini as the image has it.
    pub const TEMPLATE_INI: &str = "/etc/pgbouncer/pgbouncer.ini.template";
    /// PgBouncer's auth_file: the user's SCRAM secret, written at PgBouncer's start.
    pub const USERLIST: &str = "/etc/pgbouncer/userlist.txt";
}

pub use run::{Config, ConfigError, Outcome, Reload, RunError, handle};
