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

/// Which attempts a run keeps in memory besides the history file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Keep {
    /// None: the file is all (the command-line probe; its analysis reads the file back).
    #[default]
    Nothing,
    /// Every attempt: the analysis reads them, not the file (a scenario run: minutes long).
    All,
    /// Only acknowledged writes (a soak: hours long, so memory holds only what it attributes).
    AcknowledgedWrites,
}

impl Keep {
    /// Whether `a` is kept.
    pub fn keeps(self, a: &crate::record::Attempt) -> bool {
        match self {
            Self::Nothing => false,
            Self::All => true,
            Self::AcknowledgedWrites => {
                a.kind == crate::record::Kind::Write && a.outcome == crate::classify::Outcome::Ok
            }
        }
    }
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
    /// How long the final lost-write check (settling included) may take.
    #[serde(with = "ms")]
    pub verify_timeout: Duration,
    /// Whether to run the lost-write check at all.
    pub lost_check: bool,
    /// Patroni REST APIs: when given, the lost-write check also confirms that the node it reads
    /// is the member holding the leader lock.
    pub patroni: Vec<String>,
    /// Print a line per second on stderr.
    #[serde(skip)]
    pub live: bool,
    #[serde(skip)]
    pub history_path: Option<PathBuf>,
    /// Which attempts the run keeps in memory as well, in the order they ended, for the caller
    /// (`session::run_kept`): a scenario or a soak reads them there, not back from the file.
    #[serde(skip)]
    pub keep_attempts: Keep,
    /// Table the writes go to.
    pub table: String,
    /// Clients kept on one fixed server besides the others (e.g. a leader's own address, so
    /// its writes are seen after it lost the lock); `None`: every client uses the endpoint.
    pub pinned: Option<Pinned>,
    /// The reader endpoint: after its writes (acknowledged or not), the client's reader task reads its own newest row
    /// there (`None`: no reads there).
    pub reader: Option<Reader>,
}

/// The reader endpoint (the lab's HAProxy 5433: a replica within the lag threshold).
#[derive(Debug, Clone, Serialize)]
pub struct Reader {
    #[serde(skip)]
    pub conninfo: String,
    /// As reports show it (no password).
    pub endpoint: String,
}

/// Clients that always connect to one server, numbered after the endpoint's clients.
#[derive(Debug, Clone, Serialize)]
pub struct Pinned {
    #[serde(skip)]
    pub conninfo: String,
    /// The server as reports show it (no password).
    pub endpoint: String,
    pub clients: u32,
}

/// Every default, said once: the command line shows these (clap `default_value`) and
/// [`Settings::lab_defaults`] parses the same text.
pub mod defaults {
    /// The lab's HAProxy, from the host.
    pub const URL: &str = "postgres://postgres@127.0.0.1:5432/postgres";
    pub const CLIENTS: u32 = 4;
    /// `per-tx`: a new connection per transaction (the mode that shows logins failing).
    pub const MODE: &str = "per-tx";
    pub const DURATION: &str = "60s";
    pub const CONNECT_TIMEOUT: &str = "2s";
    pub const STATEMENT_TIMEOUT: &str = "2s";
    pub const BACKOFF_MAX: &str = "200ms";
    pub const STALL: &str = "1s";
    pub const VERIFY_TIMEOUT: &str = "60s";
    pub const TABLE: &str = "probe_writes";
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SettingsError {
    #[error("--{flag} {value} is out of range: allowed {range}")]
    OutOfRange {
        flag: &'static str,
        value: String,
        range: &'static str,
    },
    #[error("--table '{0}' must be a plain SQL identifier (letters, digits, _)")]
    BadTable(String),
}

/// The allowed ranges, each said once: the check uses them and the messages print them.
pub const CLIENTS: (u32, u32, &str) = (1, 10_000, "1 to 10000 clients");
pub const RATE: (f64, f64, &str) = (
    0.01,
    1_000_000.0,
    "0.01 to 1000000 transactions per second (omit it for flat out)",
);
/// Time-outs, the back-off cap and the stall threshold.
pub const SHORT_DURATION: (Duration, Duration, &str) = (
    Duration::from_millis(1),
    Duration::from_secs(3600),
    "1ms to 1h",
);
/// The run's duration (0 is also allowed: until stopped) and the lost-write check's limit.
pub const LONG_DURATION: (Duration, Duration, &str) = (
    Duration::from_millis(1),
    Duration::from_secs(30 * 86_400),
    "1ms to 30 days",
);

fn out_of_range(flag: &'static str, value: String, range: &'static str) -> SettingsError {
    SettingsError::OutOfRange { flag, value, range }
}

fn show(d: Duration) -> String {
    format!("{}ms", d.as_millis())
}

impl Settings {
    /// Checks the settings; every problem is one line naming the flag and the allowed range.
    pub fn check(&self) -> Result<(), SettingsError> {
        let (lo, hi, range) = CLIENTS;
        if !(lo..=hi).contains(&self.clients) {
            return Err(out_of_range("clients", self.clients.to_string(), range));
        }
        if let Some(rate) = self.rate {
            let (lo, hi, range) = RATE;
            if !(lo..=hi).contains(&rate) {
                return Err(out_of_range("rate", rate.to_string(), range));
            }
        }
        if !(0.0..=1.0).contains(&self.read_ratio) {
            return Err(out_of_range(
                "read-ratio",
                self.read_ratio.to_string(),
                "0 to 1",
            ));
        }
        let (lo, hi, range) = SHORT_DURATION;
        for (flag, d) in [
            ("connect-timeout", self.connect_timeout),
            ("statement-timeout", self.statement_timeout),
            ("backoff-max", self.backoff_max),
            ("stall", self.stall_threshold),
        ] {
            if !(lo..=hi).contains(&d) {
                return Err(out_of_range(flag, show(d), range));
            }
        }
        let (lo, hi, range) = LONG_DURATION;
        if !(lo..=hi).contains(&self.verify_timeout) {
            return Err(out_of_range(
                "verify-timeout",
                show(self.verify_timeout),
                range,
            ));
        }
        if let Some(d) = self.duration {
            if !(lo..=hi).contains(&d) {
                return Err(out_of_range(
                    "duration",
                    show(d),
                    "1ms to 30 days, or 0 to run until stopped",
                ));
            }
        }
        let t = &self.table;
        let ok = !t.is_empty()
            && t.len() <= 63
            && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !t.starts_with(|c: char| c.is_ascii_digit());
        if !ok {
            return Err(SettingsError::BadTable(t.clone()));
        }
        Ok(())
    }

    /// Settings with the defaults (`defaults`) for `conninfo`.
    pub fn lab_defaults(conninfo: &str) -> Self {
        let d = |text: &str| parse_duration(text).expect("the defaults are valid durations");
        Self {
            conninfo: conninfo.to_string(),
            endpoint: conninfo.to_string(),
            password: None,
            clients: defaults::CLIENTS,
            mode: Mode::PerTransaction,
            rate: None,
            read_ratio: 0.0,
            duration: Some(d(defaults::DURATION)),
            connect_timeout: d(defaults::CONNECT_TIMEOUT),
            statement_timeout: d(defaults::STATEMENT_TIMEOUT),
            backoff_max: d(defaults::BACKOFF_MAX),
            stall_threshold: d(defaults::STALL),
            verify_timeout: d(defaults::VERIFY_TIMEOUT),
            lost_check: true,
            patroni: Vec::new(),
            live: false,
            history_path: None,
            keep_attempts: Keep::Nothing,
            table: defaults::TABLE.into(),
            pinned: None,
            reader: None,
        }
    }
}

/// Serializes a duration as whole milliseconds (reports use `_ms` numbers).
pub mod ms {
    use serde::Serializer;
    use std::time::Duration;
    pub fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(d.as_millis() as u64)
    }
}

/// As [`ms`], `null` for none.
pub mod opt_ms {
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
    fn bad_values_are_refused_with_the_flag_name_and_range() {
        let base = Settings::lab_defaults("host=x");
        let refused = |change: &dyn Fn(&mut Settings)| {
            let mut s = base.clone();
            change(&mut s);
            s.check().unwrap_err().to_string()
        };
        assert_eq!(
            refused(&|s| s.clients = 0),
            "--clients 0 is out of range: allowed 1 to 10000 clients"
        );
        assert!(refused(&|s| s.clients = 1_000_000).contains("--clients"));
        assert!(refused(&|s| s.rate = Some(0.0)).contains("--rate 0 is out of range"));
        assert!(refused(&|s| s.rate = Some(1e-19)).contains("--rate"));
        assert!(refused(&|s| s.rate = Some(f64::NAN)).contains("--rate"));
        assert!(refused(&|s| s.rate = Some(-3.0)).contains("--rate -3"));
        assert!(refused(&|s| s.read_ratio = 1.5).contains("--read-ratio 1.5"));
        assert!(refused(&|s| s.table = "x; drop table y".into()).contains("--table"));
        assert!(refused(&|s| s.connect_timeout = Duration::ZERO).contains("--connect-timeout 0ms"));
        assert!(refused(&|s| s.backoff_max = Duration::ZERO).contains("--backoff-max"));
        assert!(refused(&|s| s.verify_timeout = Duration::ZERO).contains("--verify-timeout"));
        assert!(
            refused(&|s| s.duration = Some(Duration::from_secs(u64::MAX))).contains("--duration")
        );
    }
}

/// Parses a duration as people write it: `500ms`, `2s`, `1.5s`, `3m`, `1h` (a bare number is
/// seconds). Never panics: negative, non-finite and absurdly long values are refused, and so
/// is a value that is not zero but would round to zero milliseconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    const EXAMPLES: &str = "examples: 500ms, 2s, 1.5s, 3m, 1h";
    let t = text.trim();
    if t.starts_with('-') {
        return Err(format!(
            "'{text}' is negative; a duration is 0 or more ({EXAMPLES})"
        ));
    }
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (number, unit) = t.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("'{text}' is not a duration ({EXAMPLES})"))?;
    let ms = match unit.trim() {
        "ms" => value,
        "" | "s" => value * 1e3,
        "m" | "min" => value * 60e3,
        "h" => value * 3600e3,
        other => {
            return Err(format!(
                "'{text}': unknown unit '{other}' (use ms, s, m or h)"
            ));
        }
    };
    // A year in milliseconds: far beyond any limit a flag allows, far below an overflow.
    if !(0.0..=365.0 * 86_400e3).contains(&ms) {
        return Err(format!("'{text}' is too long (at most 365 days)"));
    }
    let whole_ms = ms.round() as u64;
    if whole_ms == 0 && ms > 0.0 {
        return Err(format!(
            "'{text}' rounds to zero; the smallest duration is 1ms"
        ));
    }
    Ok(Duration::from_millis(whole_ms))
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
        assert!(parse_duration("-5s").unwrap_err().contains("negative"));
        assert!(
            parse_duration("99999999999999999999s")
                .unwrap_err()
                .contains("too long")
        );
        assert!(
            parse_duration("9999999999999999h")
                .unwrap_err()
                .contains("too long")
        );
        assert!(
            parse_duration("0.0000000001")
                .unwrap_err()
                .contains("rounds to zero")
        );
        assert_eq!(parse_duration("0"), Ok(Duration::ZERO));
        assert!(
            parse_duration("inf")
                .unwrap_err()
                .contains("not a duration")
        );
    }
}
