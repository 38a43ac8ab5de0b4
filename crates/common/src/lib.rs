//! Plumbing shared by the callback, the probe and the scenario runner, each piece written once:
//! the Patroni REST client (`patroni`) and the PostgreSQL helpers every part needs (`pg`: a
//! connect bounded as a whole, text rows from a simple query, an error's text), etcd's leader
//! key as etcd has it (`etcd`), base64, and random bits.

pub mod base64;
pub mod etcd;
pub mod exit;
pub mod patroni;
pub mod pg;
pub mod signals;

/// `println!` that stops quietly when stdout is closed (`| head`) instead of panicking.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

/// The JSON and HTML report paths a subcommand was given, made (empty) before anything slow so
/// a bad path fails at once, in one line.
pub fn reports_writable(
    json: &Option<std::path::PathBuf>,
    html: &Option<std::path::PathBuf>,
) -> Result<(), String> {
    for (path, what) in [(json, "JSON"), (html, "HTML")] {
        if let Some(p) = path {
            std::fs::File::create(p)
                .map_err(|e| format!("cannot write the {what} report to {}: {e}", p.display()))?;
        }
    }
    Ok(())
}

/// 64 bits from the operating system's random source (through the standard library's
/// `RandomState`, which is seeded from it): enough for run ids and injection jitter, no crate.
pub fn random_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0);
    h.finish()
}

/// The wall clock in microseconds since the Unix epoch (0 if the clock is before it).
pub fn unix_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}
