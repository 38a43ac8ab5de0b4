//! PgBouncer's start: the shared pgbouncer.ini becomes the image's template again, keeping only
//! the leader the callback last wrote into `[databases]`, so that a changed template reaches a
//! lab whose volume already exists (Docker copies a file into a named volume only once). The
//! profile's settings file, which pgbouncer.ini includes last, is made empty when missing.
//! Runs under the callback's file lock.

use std::fs;
use std::path::Path;

use crate::ini;
use crate::run::{FileLock, RunError, file_error, replace_atomically};

/// What a refresh did.
#[derive(Debug, PartialEq, Eq)]
pub struct Refreshed {
    /// The leader kept from the shared copy, or `None` when it named none (the template's).
    pub kept_target: Option<ini::Target>,
    /// The profile file was missing and was made empty.
    pub made_profile: bool,
}

/// The template with the `[databases]` targets of `current` (the first one it names), or the
/// template as it is when `current` names none.
pub fn merge(
    template: &str,
    current: Option<&str>,
) -> Result<(String, Option<ini::Target>), ini::IniError> {
    let target = current.and_then(|c| ini::targets(c).into_iter().map(|(_, t)| t).next());
    match &target {
        Some(t) => Ok((ini::retarget(template, t)?, target)),
        None => Ok((template.to_string(), None)),
    }
}

/// An empty profile file: PgBouncer's own settings stand until `patroni-lab profile apply`.
pub const EMPTY_PROFILE: &str =
    ";; Written by `patroni-lab profile apply`; empty: pgbouncer.ini's own settings stand.\n";

/// Refreshes `shared` from `template` and makes `profile` when it is missing.
pub fn refresh(template: &Path, shared: &Path, profile: &Path) -> Result<Refreshed, RunError> {
    let template_text = fs::read_to_string(template).map_err(file_error(template))?;
    let _lock = FileLock::take(shared)?;
    let current = match fs::read_to_string(shared) {
        Ok(text) => Some(text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(file_error(shared)(e)),
    };
    let (text, kept_target) =
        merge(&template_text, current.as_deref()).map_err(|source| RunError::Ini {
            path: template.display().to_string(),
            source,
        })?;
    if current.as_deref() != Some(text.as_str()) {
        if current.is_none() {
            fs::write(shared, "").map_err(file_error(shared))?;
        }
        replace_atomically(shared, &text)?;
    }
    let made_profile = !profile.exists();
    if made_profile {
        fs::write(profile, EMPTY_PROFILE).map_err(file_error(profile))?;
    }
    Ok(Refreshed {
        kept_target,
        made_profile,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = "\
[databases]
* = host=patroni1 port=5432

[pgbouncer]
pool_mode = transaction
server_login_retry = 1

%include /etc/pgbouncer/shared/profile.ini
";

    #[test]
    fn keeps_the_leader_and_takes_everything_else_from_the_template() {
        let old =
            "[databases]\n* = host=patroni2 port=5432\n\n[pgbouncer]\nserver_login_retry = 15\n";
        let (text, kept) = merge(TEMPLATE, Some(old)).unwrap();
        assert_eq!(kept.unwrap().host, "patroni2");
        assert!(text.contains("* = host=patroni2 port=5432"), "{text}");
        assert!(text.contains("server_login_retry = 1\n"), "{text}");
        assert!(!text.contains("= 15"), "{text}");
        assert!(text.ends_with("%include /etc/pgbouncer/shared/profile.ini\n"));
    }

    #[test]
    fn without_a_leader_in_the_shared_copy_the_template_stands() {
        assert_eq!(merge(TEMPLATE, None).unwrap(), (TEMPLATE.to_string(), None));
        let (text, kept) = merge(TEMPLATE, Some("[pgbouncer]\n")).unwrap();
        assert_eq!((text.as_str(), kept), (TEMPLATE, None));
    }

    #[test]
    fn files_are_refreshed_and_the_profile_made_once() {
        let dir = std::env::temp_dir().join(format!("plab-refresh-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let (template, shared, profile) = (
            dir.join("template.ini"),
            dir.join("pgbouncer.ini"),
            dir.join("profile.ini"),
        );
        fs::write(&template, TEMPLATE).unwrap();
        fs::write(&shared, "[databases]\n* = host=patroni2 port=5432\n").unwrap();
        let r = refresh(&template, &shared, &profile).unwrap();
        assert!(r.made_profile);
        assert_eq!(r.kept_target.unwrap().host, "patroni2");
        assert!(
            fs::read_to_string(&shared)
                .unwrap()
                .contains("host=patroni2")
        );
        fs::write(&profile, "[pgbouncer]\npool_mode = session\n").unwrap();
        let again = refresh(&template, &shared, &profile).unwrap();
        assert!(!again.made_profile, "an applied profile is kept");
        assert_eq!(
            fs::read_to_string(&profile).unwrap(),
            "[pgbouncer]\npool_mode = session\n"
        );
        fs::remove_dir_all(&dir).unwrap();
    }
}
