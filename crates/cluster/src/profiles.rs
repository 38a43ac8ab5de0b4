//! Profiles on the running lab: applies one to the services that run (Patroni's `PATCH
//! /config`; PgBouncer's included settings file and `RELOAD`; HAProxy's settings file and a
//! reload) and reads the active settings back from the services themselves — `GET /config`,
//! `SHOW CONFIG`, HAProxy's `show env` — never from a file that may lie.

use std::time::{Duration, Instant};

use patroni_lab_common::patroni;
use patroni_lab_profile::keys::{self, Section};
use patroni_lab_profile::profile::{self, Settings, Value};

use crate::host::{Action, Service, Signal};
use crate::lab::{self, Lab};

#[derive(Debug, thiserror::Error)]
pub enum ProfileLabError {
    #[error("cannot read the lab's {service} settings: {detail}")]
    Read {
        service: &'static str,
        detail: String,
    },
    #[error("cannot apply the profile to {service}: {detail}")]
    Apply {
        service: &'static str,
        detail: String,
    },
    #[error("the profile was applied but the running lab differs: {0}")]
    NotTaken(String),
}

fn read_err(service: &'static str) -> impl Fn(String) -> ProfileLabError {
    move |detail| ProfileLabError::Read { service, detail }
}

fn apply_err(service: &'static str) -> impl Fn(String) -> ProfileLabError {
    move |detail| ProfileLabError::Apply { service, detail }
}

/// One setting's value from a service's text.
fn value_of(section: Section, name: &'static str, text: &str) -> Result<Value, String> {
    let key = keys::find(section, name).expect("a key of the vocabulary");
    Value::parse(key, text)
}

/// Patroni's dynamic settings (`GET /config` of the first member that answers).
fn live_patroni(lab: &Lab) -> Result<Settings, ProfileLabError> {
    let err = read_err("Patroni");
    let config = lab::patroni_config(lab, lab::ConfigReader::Profile).map_err(&err)?;
    let mut out = Settings::new();
    for key in keys::KEYS.iter().filter(|k| k.section == Section::Patroni) {
        let text = match &config[key.name] {
            serde_json::Value::Null => keys::patroni_default(key.name)
                .ok_or_else(|| err(format!("GET /config has no {}", key.name)))?
                .to_string(),
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let value = value_of(Section::Patroni, key.name, &text)
            .map_err(|e| err(format!("GET /config: {e}")))?;
        out.insert((Section::Patroni, key.name), value);
    }
    Ok(out)
}

/// PgBouncer's settings (`SHOW CONFIG` on its admin console).
fn live_pgbouncer(lab: &Lab) -> Result<Settings, ProfileLabError> {
    let err = read_err("PgBouncer");
    let rows = admin(lab, "SHOW CONFIG").map_err(&err)?;
    let mut out = Settings::new();
    for key in keys::KEYS
        .iter()
        .filter(|k| k.section == Section::PgBouncer)
    {
        let text = rows
            .iter()
            .find(|r| r.first().and_then(|c| c.as_deref()) == Some(key.name))
            .and_then(|r| r.get(1).cloned().flatten())
            .ok_or_else(|| err(format!("SHOW CONFIG has no {}", key.name)))?;
        let value = value_of(Section::PgBouncer, key.name, &text)
            .map_err(|e| err(format!("SHOW CONFIG: {e}")))?;
        out.insert((Section::PgBouncer, key.name), value);
    }
    Ok(out)
}

/// HAProxy's check settings (`show env` on its runtime API).
fn live_haproxy() -> Result<Settings, ProfileLabError> {
    let err = read_err("HAProxy");
    // One `show env` for every variable: each runtime call is a `docker exec`.
    let answer = lab::haproxy_runtime("show env").map_err(|e| err(e.to_string()))?;
    let mut out = Settings::new();
    for key in keys::KEYS.iter().filter(|k| k.section == Section::HaProxy) {
        let var = keys::haproxy_variable(key.name);
        let text = answer
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{var}=")))
            .ok_or_else(|| err(format!("show env has no {var}")))?;
        let value = value_of(Section::HaProxy, key.name, text.trim())
            .map_err(|e| err(format!("{var}: {e}")))?;
        out.insert((Section::HaProxy, key.name), value);
    }
    Ok(out)
}

/// HAProxy's live checks, as a run needs them: how soon it routes to a new primary (inter,
/// rise) and when a lagging replica leaves the reader pool (inter, fall, the lag threshold).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HaproxyLive {
    pub inter_ms: f64,
    pub rise: u32,
    pub fall: u32,
    pub replica_max_lag_bytes: u64,
}

/// HAProxy's live checks, read once.
pub fn haproxy_live() -> Result<HaproxyLive, String> {
    let live = live_haproxy().map_err(|e| e.to_string())?;
    let int = |name: &str| match live.get(&(Section::HaProxy, name)) {
        Some(Value::Int(n)) if *n > 0 => Ok(*n as u64),
        other => Err(format!(
            "HAProxy's {name} is {other:?}, not a positive number"
        )),
    };
    Ok(HaproxyLive {
        inter_ms: int("check_inter_ms")? as f64,
        rise: int("check_rise")? as u32,
        fall: int("check_fall")? as u32,
        replica_max_lag_bytes: int("replica_max_lag_bytes")?,
    })
}

fn admin(lab: &Lab, command: &str) -> Result<patroni_lab_common::pg::Rows, String> {
    patroni_lab_callback::pgbouncer::admin_command_blocking(
        lab.pgbouncer()?,
        command,
        Duration::from_secs(10),
    )
    .map_err(|e| e.to_string())
}

/// Every setting of the vocabulary, as the running services have it.
pub fn live(lab: &Lab) -> Result<Settings, ProfileLabError> {
    let mut all = live_patroni(lab)?;
    all.extend(live_pgbouncer(lab)?);
    all.extend(live_haproxy()?);
    Ok(all)
}

/// The profiles whose settings are exactly `live`, by name.
pub fn matching<'a>(
    profiles: impl IntoIterator<Item = (&'a String, &'a Settings)>,
    live: &Settings,
) -> Vec<String> {
    profiles
        .into_iter()
        .filter(|(_, s)| *s == live)
        .map(|(n, _)| n.clone())
        .collect()
}

/// HAProxy's profile file for these settings.
fn haproxy_file(name: &str, settings: &Settings) -> String {
    let mut text = format!(
        "# Written by `patroni-lab profile apply {name}`; read before haproxy.cfg.\nglobal\n"
    );
    for (key, value) in profile::section(settings, Section::HaProxy) {
        text.push_str(&format!(
            "    setenv {} {value}\n",
            keys::haproxy_variable(key)
        ));
    }
    text
}

/// Writes `text` to `path` inside `container`, atomically (a temporary file, then a rename).
fn write_in(container: &str, path: &str, text: &str) -> Result<(), String> {
    let script = format!("cat > {path}.tmp && mv {path}.tmp {path}");
    lab::container(container)
        .run_with_input(&["sh", "-c", &script], text)
        .map(|_| ())
        .map_err(|e| e.to_string())
}

/// How long a reload may take to show in the running services.
const SETTLE: Duration = Duration::from_secs(15);

/// Applies `settings` (profile `name`, completed from `default`) to the running lab and waits
/// until the services report them. Returns what was done, one line per service.
pub fn apply(
    lab: &Lab,
    name: &str,
    settings: &Settings,
    default: &Settings,
) -> Result<Vec<String>, ProfileLabError> {
    let mut done = Vec::new();

    // PgBouncer: only what differs from default goes into the included file, so the image's
    // pgbouncer.ini stays the source of every other value.
    let err = apply_err("PgBouncer");
    let differs: Settings = settings
        .iter()
        .filter(|(k, v)| k.0 == Section::PgBouncer && default.get(k) != Some(*v))
        .map(|(k, v)| (*k, v.clone()))
        .collect();
    let include = if differs.is_empty() {
        patroni_lab_callback::refresh::EMPTY_PROFILE.to_string()
    } else {
        profile::pgbouncer_lines(name, &differs)
    };
    write_in(
        lab::PGBOUNCER,
        patroni_lab_callback::paths::PROFILE_INI,
        &include,
    )
    .map_err(&err)?;
    admin(lab, "RELOAD").map_err(&err)?;
    done.push(format!(
        "PgBouncer: {} written, RELOAD",
        patroni_lab_callback::paths::PROFILE_INI
    ));

    // HAProxy: its profile file, then SIGUSR2 to the master process, which re-reads both files.
    let err = apply_err("HAProxy");
    write_in(
        lab::HAPROXY,
        lab::HAPROXY_PROFILE,
        &haproxy_file(name, settings),
    )
    .map_err(&err)?;
    lab::container(lab::HAPROXY)
        .act(&Action::Service(Service::Signal(Signal::Usr2)))
        .map_err(|e| err(e.to_string()))?;
    done.push(format!(
        "HAProxy: {} written, reloaded",
        lab::HAPROXY_PROFILE
    ));

    // Patroni: every dynamic setting of the profile, in one PATCH.
    let node = patch_patroni(lab, settings)?;
    done.push(format!("Patroni: PATCH /config through {node}"));

    // Wait until every service reports the profile.
    let started = Instant::now();
    loop {
        let now = live(lab);
        match &now {
            Ok(l) if l == settings => return Ok(done),
            _ if started.elapsed() < SETTLE => std::thread::sleep(Duration::from_millis(250)),
            Ok(l) => {
                let diff: Vec<String> = profile::differences(settings, l)
                    .into_iter()
                    .map(|(s, k, want, got)| {
                        format!(
                            "{s}.{k} is {} (wanted {})",
                            got.map_or("-".into(), |v| v.to_string()),
                            want.map_or("-".into(), |v| v.to_string())
                        )
                    })
                    .collect();
                return Err(ProfileLabError::NotTaken(diff.join(", ")));
            }
            Err(_) => return now.map(|_| done),
        }
    }
}

/// Every dynamic setting of the profile in one `PATCH /config`, through the first member
/// that answers; which one did.
fn patch_patroni(lab: &Lab, settings: &Settings) -> Result<String, ProfileLabError> {
    let err = apply_err("Patroni");
    let body = profile::patroni_patch(settings).to_string();
    let mut last = String::from("no member given");
    let mut patched = None;
    for node in &lab.nodes {
        let reply = patroni::send_json(
            &node.api_url,
            "PATCH",
            "/config",
            &body,
            Some(&lab.auth),
            lab::REST_TIMEOUT,
        );
        match reply {
            Ok((200, _)) => {
                patched = Some(node.name.clone());
                break;
            }
            Ok((status, reply)) => {
                return Err(err(format!(
                    "PATCH /config answered {status}: {}",
                    reply.trim()
                )));
            }
            Err(e) => last = e.to_string(),
        }
    }
    patched.ok_or_else(|| err(last))
}

/// Every profile completed from `default`, by name (a profile that does not complete is left
/// out; `profile list` says why).
pub fn completed(
    all: &std::collections::BTreeMap<String, patroni_lab_profile::profile::Profile>,
) -> std::collections::BTreeMap<String, Settings> {
    all.iter()
        .filter_map(|(n, p)| p.complete(&all["default"], n).ok().map(|s| (n.clone(), s)))
        .collect()
}
