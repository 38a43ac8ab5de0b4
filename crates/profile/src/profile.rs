//! One profile: a small commented file read into checked settings, completed from `default`,
//! and turned into what each service takes (Patroni's `PATCH /config` body, PgBouncer's
//! settings lines, HAProxy's check settings).
//!
//! File format (`profiles/<name>.ini`): the leading `;;` comment block says what the profile
//! is for (its first line is the summary `profile list` prints); then `[patroni]`,
//! `[pgbouncer]` and `[haproxy]` sections of `key = value` lines, from the vocabulary in
//! `keys`. `default` sets every key; any other profile sets only what it changes.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::keys::{self, Key, Kind, Section};

/// A setting's value, checked against its key's kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Value {
    Int(i64),
    /// Seconds, held as milliseconds (`Kind::Seconds`).
    Millis(i64),
    Bool(bool),
    Word(String),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Millis(ms) if ms % 1000 == 0 => write!(f, "{}", ms / 1000),
            Value::Millis(ms) => {
                let text = format!("{}.{:03}", ms / 1000, ms % 1000);
                f.write_str(text.trim_end_matches('0'))
            }
            Value::Bool(b) => write!(f, "{b}"),
            Value::Word(w) => f.write_str(w),
        }
    }
}

impl Value {
    /// Reads `text` as a value of `key`'s kind.
    pub fn parse(key: &Key, text: &str) -> Result<Self, String> {
        match key.kind {
            Kind::Int { min, max } => {
                let n: i64 = text
                    .parse()
                    .map_err(|_| format!("{} takes a whole number, not '{text}'", key.name))?;
                if n < min || n > max {
                    return Err(format!(
                        "{} = {n} is out of range: allowed {min} to {max}",
                        key.name
                    ));
                }
                Ok(Value::Int(n))
            }
            Kind::Seconds { min_ms, max_ms } => {
                let secs: f64 = text
                    .parse()
                    .ok()
                    .filter(|v: &f64| v.is_finite())
                    .ok_or_else(|| {
                        format!("{} takes seconds (e.g. 1 or 0.1), not '{text}'", key.name)
                    })?;
                let ms = (secs * 1000.0).round() as i64;
                if ms < min_ms || ms > max_ms || (secs * 1000.0 - ms as f64).abs() > 1e-6 {
                    return Err(format!(
                        "{} = {text} is out of range: allowed {} to {} s, to the millisecond",
                        key.name,
                        Value::Millis(min_ms),
                        Value::Millis(max_ms)
                    ));
                }
                Ok(Value::Millis(ms))
            }
            Kind::Bool => match text {
                "true" | "on" => Ok(Value::Bool(true)),
                "false" | "off" => Ok(Value::Bool(false)),
                _ => Err(format!("{} takes true or false, not '{text}'", key.name)),
            },
            Kind::Word(words) => {
                if words.contains(&text) {
                    Ok(Value::Word(text.to_string()))
                } else {
                    Err(format!(
                        "{} takes one of {}, not '{text}'",
                        key.name,
                        words.join(", ")
                    ))
                }
            }
        }
    }

    /// As JSON, for Patroni's REST API.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Int(n) => serde_json::json!(n),
            Value::Millis(ms) => serde_json::json!(*ms as f64 / 1000.0),
            Value::Bool(b) => serde_json::json!(b),
            Value::Word(w) => serde_json::json!(w),
        }
    }
}

/// Settings by (section, key name).
pub type Settings = BTreeMap<(Section, &'static str), Value>;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProfileError {
    #[error("{file}:{line}: {what}")]
    Syntax {
        file: String,
        line: usize,
        what: String,
    },
    #[error("{file}: {what}")]
    Invalid { file: String, what: String },
    #[error("cannot read {path}: {detail}")]
    Read { path: String, detail: String },
    #[error("unknown profile '{name}': known are {known}")]
    Unknown { name: String, known: String },
}

/// A profile as written in its file (only what it sets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    pub name: String,
    /// The first line of the leading comment block.
    pub summary: String,
    /// The rest of the leading comment block.
    pub about: Vec<String>,
    pub settings: Settings,
}

impl Profile {
    /// Reads a profile's text; `file` names it in error messages.
    pub fn parse(name: &str, file: &str, text: &str) -> Result<Self, ProfileError> {
        let syntax = |line: usize, what: String| ProfileError::Syntax {
            file: file.to_string(),
            line,
            what,
        };
        let mut comments = Vec::new();
        let mut in_header = true;
        let mut section = None;
        let mut settings = Settings::new();
        for (i, raw) in text.lines().enumerate() {
            let line_no = i + 1;
            let line = raw.trim();
            if let Some(comment) = line.strip_prefix(";;") {
                if in_header {
                    comments.push(comment.trim().to_string());
                }
                continue;
            }
            if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
                in_header &= line.is_empty() && comments.is_empty();
                continue;
            }
            in_header = false;
            if let Some(inner) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = Some(Section::from_name(inner.trim()).ok_or_else(|| {
                    syntax(
                        line_no,
                        format!(
                            "unknown section [{inner}]: use [patroni], [pgbouncer] or [haproxy]"
                        ),
                    )
                })?);
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                return Err(syntax(
                    line_no,
                    format!("'{line}' is neither [section] nor key = value"),
                ));
            };
            let Some(section) = section else {
                return Err(syntax(
                    line_no,
                    "a setting before any [section]".to_string(),
                ));
            };
            let key = key.trim();
            let known = keys::find(section, key).ok_or_else(|| {
                let names: Vec<&str> = keys::KEYS
                    .iter()
                    .filter(|k| k.section == section)
                    .map(|k| k.name)
                    .collect();
                syntax(
                    line_no,
                    format!(
                        "[{section}] has no setting '{key}': known are {}",
                        names.join(", ")
                    ),
                )
            })?;
            let value = Value::parse(known, value.trim()).map_err(|e| syntax(line_no, e))?;
            if settings.insert((section, known.name), value).is_some() {
                return Err(syntax(line_no, format!("{key} is set twice")));
            }
        }
        let mut comments = comments.into_iter();
        let summary =
            comments
                .next()
                .filter(|s| !s.is_empty())
                .ok_or_else(|| ProfileError::Invalid {
                    file: file.to_string(),
                    what: "no summary: start the file with a ';; what this profile is for' line"
                        .into(),
                })?;
        Ok(Self {
            name: name.to_string(),
            summary,
            about: comments.collect(),
            settings,
        })
    }

    /// Every setting: this profile's over `default`'s. Checks Patroni's rule between its
    /// timeouts and that every key has a value.
    pub fn complete(&self, default: &Profile, file: &str) -> Result<Settings, ProfileError> {
        let mut all = default.settings.clone();
        all.extend(self.settings.clone());
        check(&all).map_err(|what| ProfileError::Invalid {
            file: file.to_string(),
            what,
        })?;
        Ok(all)
    }
}

/// What must hold for a whole set of settings: every key set, and Patroni's rule
/// `loop_wait + 2 × retry_timeout ≤ ttl` (Patroni would otherwise change the values itself).
pub fn check(all: &Settings) -> Result<(), String> {
    let missing: Vec<String> = keys::KEYS
        .iter()
        .filter(|k| !all.contains_key(&(k.section, k.name)))
        .map(|k| format!("[{}] {}", k.section, k.name))
        .collect();
    if !missing.is_empty() {
        return Err(format!("no value for {}", missing.join(", ")));
    }
    let int = |name| match all.get(&(Section::Patroni, name)) {
        Some(Value::Int(n)) => *n,
        _ => 0,
    };
    let (ttl, loop_wait, retry) = (int("ttl"), int("loop_wait"), int("retry_timeout"));
    if loop_wait + 2 * retry > ttl {
        return Err(format!(
            "loop_wait + 2 × retry_timeout = {loop_wait} + 2 × {retry} = {} is more than ttl = {ttl}; Patroni requires it to be at most ttl",
            loop_wait + 2 * retry
        ));
    }
    Ok(())
}

/// The settings of one section, in vocabulary order.
pub fn section(all: &Settings, section: Section) -> Vec<(&'static str, &Value)> {
    keys::KEYS
        .iter()
        .filter(|k| k.section == section)
        .filter_map(|k| all.get(&(section, k.name)).map(|v| (k.name, v)))
        .collect()
}

/// The body of Patroni's `PATCH /config` for these settings.
pub fn patroni_patch(all: &Settings) -> serde_json::Value {
    let map: serde_json::Map<String, serde_json::Value> = section(all, Section::Patroni)
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_json()))
        .collect();
    serde_json::Value::Object(map)
}

/// PgBouncer's lines for these settings, which pgbouncer.ini includes (`%include`) at the end
/// of its `[pgbouncer]` section, so that they win. No section header: a second `[pgbouncer]`
/// header made PgBouncer drop the section's earlier settings here (its admin console then said
/// "not allowed" to every admin user).
pub fn pgbouncer_lines(profile: &str, all: &Settings) -> String {
    let mut text = format!(
        ";; Written by `patroni-lab profile apply {profile}`; included at the end of pgbouncer.ini's pgbouncer section.\n"
    );
    for (k, v) in section(all, Section::PgBouncer) {
        text.push_str(&format!("{k} = {v}\n"));
    }
    text
}

/// Where the profiles are: `PATRONI_LAB_PROFILES`, else `profiles/` in the working folder.
pub fn folder() -> PathBuf {
    std::env::var_os("PATRONI_LAB_PROFILES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("profiles"))
}

/// Every profile in `dir` (files `*.ini`), by name.
pub fn load_all(dir: &Path) -> Result<BTreeMap<String, Profile>, ProfileError> {
    let read_err = |path: &Path, e: std::io::Error| ProfileError::Read {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let mut all = BTreeMap::new();
    let entries = std::fs::read_dir(dir).map_err(|e| ProfileError::Read {
        path: dir.display().to_string(),
        detail: format!(
            "{e} (run from the repository root, or set PATRONI_LAB_PROFILES to the profiles folder)"
        ),
    })?;
    for entry in entries {
        let path = entry.map_err(|e| read_err(dir, e))?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("ini") {
            continue;
        }
        let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let text = std::fs::read_to_string(&path).map_err(|e| read_err(&path, e))?;
        all.insert(
            name.to_string(),
            Profile::parse(name, &path.display().to_string(), &text)?,
        );
    }
    let Some(default) = all.get("default").cloned() else {
        return Err(ProfileError::Read {
            path: dir.join("default.ini").display().to_string(),
            detail: "every other profile is completed from it".into(),
        });
    };
    for (name, p) in &all {
        p.complete(
            &default,
            &dir.join(format!("{name}.ini")).display().to_string(),
        )?;
    }
    Ok(all)
}

/// One profile by name, completed from `default`.
pub fn resolve(
    all: &BTreeMap<String, Profile>,
    name: &str,
) -> Result<(Profile, Settings), ProfileError> {
    let Some(p) = all.get(name) else {
        return Err(ProfileError::Unknown {
            name: name.to_string(),
            known: all.keys().cloned().collect::<Vec<_>>().join(", "),
        });
    };
    let settings = p.complete(&all["default"], name)?;
    Ok((p.clone(), settings))
}

/// Where two sets of settings differ: (section, key, in `a`, in `b`).
pub fn differences<'a>(
    a: &'a Settings,
    b: &'a Settings,
) -> Vec<(Section, &'static str, Option<&'a Value>, Option<&'a Value>)> {
    keys::KEYS
        .iter()
        .filter_map(|k| {
            let (x, y) = (a.get(&(k.section, k.name)), b.get(&(k.section, k.name)));
            (x != y).then_some((k.section, k.name, x, y))
        })
        .collect()
}

/// The settings of `b` where it differs from `a`, as `section.key = value` (`-`: unset).
pub fn differences_text(a: &Settings, b: &Settings) -> Vec<String> {
    differences(a, b)
        .into_iter()
        .map(|(section, key, _, to)| {
            format!(
                "{section}.{key} = {}",
                to.map_or("-".into(), |v| v.to_string())
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEFAULT: &str = "\
;; default: the lab as make up starts it
;; more words

[patroni]
ttl = 30
loop_wait = 10
retry_timeout = 10
primary_start_timeout = 300
maximum_lag_on_failover = 1048576
synchronous_mode = false
synchronous_mode_strict = false
failsafe_mode = false
check_timeline = false
[pgbouncer]
pool_mode = transaction
server_login_retry = 1
server_connect_timeout = 3
query_wait_timeout = 45
server_check_delay = 5
[haproxy]
check_inter_ms = 1000
check_fall = 2
check_rise = 1
replica_max_lag_bytes = 1048576
";

    fn default() -> Profile {
        Profile::parse("default", "default.ini", DEFAULT).unwrap()
    }

    #[test]
    fn reads_summary_about_and_settings() {
        let d = default();
        assert_eq!(d.summary, "default: the lab as make up starts it");
        assert_eq!(d.about, vec!["more words"]);
        assert_eq!(d.settings[&(Section::Patroni, "ttl")], Value::Int(30));
        assert_eq!(
            d.settings[&(Section::PgBouncer, "pool_mode")],
            Value::Word("transaction".into())
        );
        assert!(check(&d.settings).is_ok());
    }

    #[test]
    fn a_profile_is_completed_from_default_and_differs_only_where_it_says() {
        let fast = Profile::parse(
            "fast",
            "fast.ini",
            ";; fast\n[patroni]\nttl = 20\nloop_wait = 2\nretry_timeout = 3\n",
        )
        .unwrap();
        let all = fast.complete(&default(), "fast.ini").unwrap();
        let d = default().settings;
        let diff = differences(&d, &all);
        assert_eq!(
            diff.iter().map(|(_, k, _, _)| *k).collect::<Vec<_>>(),
            vec!["ttl", "loop_wait", "retry_timeout"]
        );
        assert_eq!(
            patroni_patch(&all)["ttl"],
            serde_json::json!(20),
            "{}",
            patroni_patch(&all)
        );
        assert_eq!(
            patroni_patch(&all)["synchronous_mode"],
            serde_json::json!(false)
        );
        let lines = pgbouncer_lines("fast", &all);
        assert!(lines.contains("\nserver_login_retry = 1\n"), "{lines}");
        assert!(!lines.contains('['), "no section header: {lines}");
    }

    #[test]
    fn seconds_take_fractions_and_read_back_as_pgbouncer_writes_them() {
        let key = keys::find(Section::PgBouncer, "server_login_retry").unwrap();
        for (text, ms, shown) in [
            ("0.1", 100, "0.1"),
            ("1", 1000, "1"),
            ("15.0", 15_000, "15"),
            ("0.25", 250, "0.25"),
        ] {
            let v = Value::parse(key, text).unwrap();
            assert_eq!(v, Value::Millis(ms), "{text}");
            assert_eq!(v.to_string(), shown);
        }
        assert_eq!(
            Value::parse(key, "0.1"),
            Value::parse(key, "0.100"),
            "PgBouncer's SHOW CONFIG and the file compare by value"
        );
        assert_eq!(
            Value::parse(key, "soon").unwrap_err(),
            "server_login_retry takes seconds (e.g. 1 or 0.1), not 'soon'"
        );
        assert_eq!(
            Value::parse(key, "0.0001").unwrap_err(),
            "server_login_retry = 0.0001 is out of range: allowed 0 to 3600 s, to the millisecond"
        );
        assert!(Value::parse(key, "-1").is_err());
        assert!(Value::parse(key, "NaN").is_err());
    }

    #[test]
    fn patroni_rule_is_checked() {
        let bad = Profile::parse(
            "bad",
            "bad.ini",
            ";; bad\n[patroni]\nttl = 20\nloop_wait = 10\n",
        )
        .unwrap();
        let err = bad.complete(&default(), "bad.ini").unwrap_err().to_string();
        assert_eq!(
            err,
            "bad.ini: loop_wait + 2 × retry_timeout = 10 + 2 × 10 = 30 is more than ttl = 20; Patroni requires it to be at most ttl"
        );
    }

    #[test]
    fn bad_files_get_one_line_with_file_and_line() {
        let cases = [
            (
                ";; x\n[patroni]\nttl = 19\n",
                "x.ini:3: ttl = 19 is out of range: allowed 20 to 3600",
            ),
            (
                ";; x\n[patroni]\nttl = soon\n",
                "x.ini:3: ttl takes a whole number, not 'soon'",
            ),
            (
                ";; x\n[pgbouncer]\npool_mode = lazy\n",
                "x.ini:3: pool_mode takes one of session, transaction, statement, not 'lazy'",
            ),
            (
                ";; x\n[etcd]\n",
                "x.ini:2: unknown section [etcd]: use [patroni], [pgbouncer] or [haproxy]",
            ),
            (
                ";; x\nttl = 30\n",
                "x.ini:2: a setting before any [section]",
            ),
            (
                ";; x\n[haproxy]\nttl = 30\n",
                "x.ini:3: [haproxy] has no setting 'ttl': known are check_inter_ms, check_fall, check_rise, replica_max_lag_bytes",
            ),
            (
                ";; x\n[patroni]\nttl = 30\nttl = 40\n",
                "x.ini:4: ttl is set twice",
            ),
            (
                ";; x\n[patroni]\nttl\n",
                "x.ini:3: 'ttl' is neither [section] nor key = value",
            ),
            (
                "[patroni]\nttl = 30\n",
                "x.ini: no summary: start the file with a ';; what this profile is for' line",
            ),
        ];
        for (text, wanted) in cases {
            let err = Profile::parse("x", "x.ini", text).unwrap_err().to_string();
            assert_eq!(err, wanted);
        }
    }

    #[test]
    fn default_must_set_everything() {
        let partial = Profile::parse("default", "d.ini", ";; d\n[patroni]\nttl = 30\n").unwrap();
        let err = check(&partial.settings).unwrap_err();
        assert!(err.starts_with("no value for [patroni] loop_wait"), "{err}");
    }

    #[test]
    fn the_repository_profiles_are_valid() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../profiles");
        let all = load_all(&dir).unwrap();
        for name in [
            "default",
            "seed",
            "fast",
            "sync",
            "failsafe",
            "session-pool",
        ] {
            assert!(all.contains_key(name), "profiles/{name}.ini is missing");
        }
        check(&all["default"].settings).unwrap();
        let unknown = resolve(&all, "nope").unwrap_err().to_string();
        assert!(
            unknown.starts_with("unknown profile 'nope': known are default, "),
            "{unknown}"
        );
    }
}
