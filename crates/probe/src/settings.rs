//! The probe's settings, checked before anything connects.

use std::path::PathBuf;
use std::time::Duration;

use serde::Serialize;

/// How clients use connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// A new connection for every transaction, like `pgbench -C`.
    PerTransaction,
    /// One connection per client, reopened after it fails.
    Persistent,
}

#[derive(Debug, Clone, Serialize)]
pub struct Settings {
    /// libpq-style connection string or URL (the password is never written to reports).
    #[serde(skip)]
    pub conninfo: String,
    /// Used when `conninfo` has no password (the binary passes PGPASSWORD).
    #[serde(skip)]
    pub password: Option<String>,
    /// The endpoint as reports show it (host:port/dbname user=...), without the password.
    pub endpoint: String,
    pub clients: u32,
    pub mode: Mode,
    /// Target transactions per second over all clients; `None` is flat out.
    pub rate: Option<f64>,
    /// Share of transactions that are reads (0.0 to 1.0).
    pub read_ratio: f64,
    /// `None` runs until Ctrl-C.
    #[serde(with = "opt_ms")]
    pub duration: Option<Duration>,
    #[serde(with = "ms")]
    pub connect_timeout: Duration,
    #[serde(with = "ms")]
    pub statement_timeout: Duration,
    #[serde(with = "ms")]
    pub backoff_max: Duration,
    /// No acknowledgement for longer than this counts as a stall.
    #[serde(with = "ms")]
    pub stall_threshold: Duration,
    /// How long the final lost-write check keeps trying to reach the primary.
    #[serde(with = "ms")]
    pub verify_timeout: Duration,
    /// Print a line per second on stderr.
    #[serde(skip)]
    pub live: bool,
    #[serde(skip)]
    pub history_path: Option<PathBuf>,
    /// Table the writes go to.
    pub table: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("--clients must be at least 1")]
    NoClients,
    #[error("--rate must be a positive number of transactions per second (omit it for flat out)")]
    BadRate,
    #[error("--read-ratio must be between 0 and 1, got {0}")]
    BadReadRatio(String),
    #[error("--{0} must be longer than zero")]
    ZeroDuration(&'static str),
    #[error("--table '{0}' must be a plain SQL identifier (letters, digits, _)")]
    BadTable(String),
}

impl Settings {
    /// Checks the settings; every problem is one line saying what to change.
    pub fn check(&self) -> Result<(), SettingsError> {
        if self.clients == 0 {
            return Err(SettingsError::NoClients);
        }
        if let Some(rate) = self.rate {
            if !(rate.is_finite() && rate > 0.0) {
                return Err(SettingsError::BadRate);
            }
        }
        if !(0.0..=1.0).contains(&self.read_ratio) {
            return Err(SettingsError::BadReadRatio(self.read_ratio.to_string()));
        }
        for (name, d) in [
            ("connect-timeout", self.connect_timeout),
            ("statement-timeout", self.statement_timeout),
            ("stall", self.stall_threshold),
        ] {
            if d.is_zero() {
                return Err(SettingsError::ZeroDuration(name));
            }
        }
        if self.duration.is_some_and(|d| d.is_zero()) {
            return Err(SettingsError::ZeroDuration("duration"));
        }
        let t = &self.table;
        let ok = !t.is_empty()
            && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !t.starts_with(|c: char| c.is_ascii_digit());
        if !ok {
            return Err(SettingsError::BadTable(t.clone()));
        }
        Ok(())
    }

    /// Settings with the lab's defaults for `conninfo`.
    pub fn lab_defaults(conninfo: &str) -> Self {
        Self {
            conninfo: conninfo.to_string(),
            endpoint: conninfo.to_string(),
            password: None,
            clients: 4,
            mode: Mode::PerTransaction,
            rate: None,
            read_ratio: 0.0,
            duration: Some(Duration::from_secs(60)),
            connect_timeout: Duration::from_secs(2),
            statement_timeout: Duration::from_secs(2),
            backoff_max: Duration::from_millis(200),
            stall_threshold: Duration::from_secs(1),
            verify_timeout: Duration::from_secs(60),
            live: false,
            history_path: None,
            table: "probe_writes".into(),
        }
    }
}

mod ms {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

mod opt_ms {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_u64(d.as_millis() as u64),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_pass_the_check() {
        Settings::lab_defaults("host=x").check().unwrap();
    }

    #[test]
    fn bad_values_are_refused_with_the_flag_name() {
        let base = Settings::lab_defaults("host=x");
        let mut s = base.clone();
        s.clients = 0;
        assert_eq!(s.check(), Err(SettingsError::NoClients));
        let mut s = base.clone();
        s.rate = Some(0.0);
        assert_eq!(s.check(), Err(SettingsError::BadRate));
        let mut s = base.clone();
        s.read_ratio = 1.5;
        assert!(s.check().unwrap_err().to_string().contains("--read-ratio"));
        let mut s = base.clone();
        s.table = "x; drop table y".into();
        assert!(matches!(s.check(), Err(SettingsError::BadTable(_))));
        let mut s = base;
        s.connect_timeout = Duration::ZERO;
        assert_eq!(
            s.check(),
            Err(SettingsError::ZeroDuration("connect-timeout"))
        );
    }
}

/// Parses a duration as people write it: `500ms`, `2s`, `1.5s`, `3m`, `1h` (a bare number is
/// seconds).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration (examples: 500ms, 2s, 1.5s, 3m, 1h)"))?;
    let seconds = match unit.trim() {
        "ms" => value / 1000.0,
        "" | "s" => value,
        "m" | "min" => value * 60.0,
        "h" => value * 3600.0,
        other => {
            return Err(format!(
                "'{text}': unknown unit '{other}' (use ms, s, m or h)"
            ));
        }
    };
    if !seconds.is_finite() || seconds < 0.0 {
        return Err(format!("'{text}' is not a duration"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

#[cfg(test)]
mod duration_tests {
    use super::*;

    #[test]
    fn durations_people_write() {
        assert_eq!(parse_duration("500ms"), Ok(Duration::from_millis(500)));
        assert_eq!(parse_duration("2s"), Ok(Duration::from_secs(2)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("3m"), Ok(Duration::from_secs(180)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("10"), Ok(Duration::from_secs(10)));
        assert!(
            parse_duration("ten")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
    }
}
