//! The subcommands that run against a cluster (`scenario`, `soak`, `matrix`, `doctor`,
//! `profile`, `bench`): each one's flags, defined once with their doc and default, the checks made
//! before anything slow, the reports written and the exit code. The engines they hand over to
//! are the crate's other modules; no subcommand imports another.

pub mod bench;
pub mod doctor;
pub mod matrix;
pub mod profile;
pub mod scenario;
pub mod soak;

/// The JSON and HTML report paths, made (empty) before anything slow so a bad path fails at
/// once, in one line.
fn reports_writable(
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
