//! The rewrite of the `[databases]` section of `pgbouncer.ini`, as pure text-to-text functions.
//!
//! Only the `host=` and `port=` of each database entry change; comments, blank lines, the order
//! of entries, their other parameters and every other section are kept as they were.

use std::fmt;

/// Where a database entry sends its server connections.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum IniError {
    #[error(
        "line {line}: cannot read the [databases] entry '{text}': expected name = key=value ..."
    )]
    BadEntry { line: usize, text: String },
    #[error(
        "host '{0}' cannot be written into pgbouncer.ini: it must be a plain host name or address"
    )]
    BadHost(String),
}

/// One `key=value` pair of an entry's connection string, as written.
struct Param<'a> {
    key: &'a str,
    raw: &'a str,
}

fn section_name(line: &str) -> Option<&str> {
    let t = line.trim();
    t.strip_prefix('[')?.strip_suffix(']').map(str::trim)
}

fn is_comment_or_blank(line: &str) -> bool {
    let t = line.trim_start();
    t.is_empty() || t.starts_with(';') || t.starts_with('#')
}

/// Splits `host=a port=5 dbname='x y'` into pairs, keeping each pair's text as written.
fn split_params(connstr: &str) -> Option<Vec<Param<'_>>> {
    let bytes = connstr.as_bytes();
    let mut params = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        while i < bytes.len() && bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        if i == bytes.len() {
            break;
        }
        let start = i;
        while i < bytes.len() && bytes[i] != b'=' && !bytes[i].is_ascii_whitespace() {
            i += 1;
        }
        let key = &connstr[start..i];
        if key.is_empty() || i == bytes.len() || bytes[i] != b'=' {
            return None;
        }
        i += 1;
        if i < bytes.len() && bytes[i] == b'\'' {
            i += 1;
            loop {
                match bytes.get(i) {
                    None => return None,
                    Some(b'\\') => i += 2,
                    Some(b'\'') => {
                        i += 1;
                        break;
                    }
                    Some(_) => i += 1,
                }
            }
        } else {
            while i < bytes.len() && !bytes[i].is_ascii_whitespace() {
                i += 1;
            }
        }
        params.push(Param {
            key,
            raw: &connstr[start..i.min(bytes.len())],
        });
    }
    Some(params)
}

/// An entry line of `[databases]`: `name = connstr`, with the text before `connstr` kept.
fn split_entry(line: &str) -> Option<(&str, &str)> {
    let eq = line.find('=')?;
    let name = line[..eq].trim();
    if name.is_empty() {
        return None;
    }
    let after = &line[eq + 1..];
    let value_start = eq + 1 + (after.len() - after.trim_start().len());
    Some((&line[..value_start], line[value_start..].trim_end()))
}

fn retarget_connstr(connstr: &str, target: &Target) -> Option<String> {
    let params = split_params(connstr)?;
    let mut out: Vec<String> = Vec::with_capacity(params.len() + 2);
    let (mut host_done, mut port_done) = (false, false);
    for p in &params {
        match p.key {
            "host" if !host_done => {
                out.push(format!("host={}", target.host));
                host_done = true;
            }
            "port" if !port_done => {
                out.push(format!("port={}", target.port));
                port_done = true;
            }
            "host" | "port" => {}
            _ => out.push(p.raw.to_string()),
        }
    }
    if !port_done {
        let at = out
            .iter()
            .position(|p| p.starts_with("host="))
            .map_or(0, |i| i + 1);
        out.insert(at, format!("port={}", target.port));
    }
    if !host_done {
        out.insert(0, format!("host={}", target.host));
    }
    Some(out.join(" "))
}

fn check_host(host: &str) -> Result<(), IniError> {
    let ok = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_' | ':'));
    if ok {
        Ok(())
    } else {
        Err(IniError::BadHost(host.to_string()))
    }
}

/// Returns `text` with every `[databases]` entry sent to `target`. Without a `[databases]`
/// section, or with an empty one, a catch-all `* = host=… port=…` entry is added.
pub fn retarget(text: &str, target: &Target) -> Result<String, IniError> {
    check_host(&target.host)?;
    let wildcard = format!("* = host={} port={}", target.host, target.port);
    let mut out = String::with_capacity(text.len() + 64);
    let mut in_databases = false;
    let mut seen_databases = false;
    let mut entries = 0usize;
    let mut header_end: Option<usize> = None;
    for (idx, line) in text.split_inclusive('\n').enumerate() {
        let body = line.trim_end_matches(['\n', '\r']);
        let ending = &line[body.len()..];
        if let Some(name) = section_name(body) {
            in_databases = name == "databases";
            out.push_str(line);
            if in_databases {
                seen_databases = true;
                if !line.ends_with('\n') {
                    out.push('\n');
                }
                header_end = Some(out.len());
            }
            continue;
        }
        if !in_databases || is_comment_or_blank(body) || body.trim_start().starts_with('%') {
            out.push_str(line);
            continue;
        }
        let bad = || IniError::BadEntry {
            line: idx + 1,
            text: body.to_string(),
        };
        let (head, connstr) = split_entry(body).ok_or_else(bad)?;
        let new = retarget_connstr(connstr, target).ok_or_else(bad)?;
        out.push_str(head);
        out.push_str(&new);
        out.push_str(ending);
        entries += 1;
    }
    match (seen_databases, header_end) {
        (false, _) => Ok(format!("[databases]\n{wildcard}\n\n{out}")),
        (true, Some(at)) if entries == 0 => {
            out.insert_str(at, &format!("{wildcard}\n"));
            Ok(out)
        }
        _ => Ok(out),
    }
}

/// The targets of the `[databases]` entries, in file order (entries without a host are skipped).
pub fn targets(text: &str) -> Vec<(String, Target)> {
    let mut found = Vec::new();
    let mut in_databases = false;
    for line in text.lines() {
        if let Some(name) = section_name(line) {
            in_databases = name == "databases";
            continue;
        }
        if !in_databases || is_comment_or_blank(line) {
            continue;
        }
        let Some((head, connstr)) = split_entry(line) else {
            continue;
        };
        let Some(params) = split_params(connstr) else {
            continue;
        };
        let value = |key: &str| {
            params
                .iter()
                .find(|p| p.key == key)
                .map(|p| p.raw[key.len() + 1..].trim_matches('\''))
        };
        if let Some(host) = value("host") {
            let port = value("port").and_then(|p| p.parse().ok()).unwrap_or(5432);
            let name = head.trim_end().trim_end_matches('=').trim().to_string();
            found.push((
                name,
                Target {
                    host: host.to_string(),
                    port,
                },
            ));
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn to(host: &str, port: u16) -> Target {
        Target {
            host: host.into(),
            port,
        }
    }

    const SAMPLE: &str = "\
; PgBouncer for the lab
[databases]
; the leader, kept by the callback
* = host=patroni1 port=5432
postgres = host=patroni1 port=5432 dbname=postgres pool_size=10

[pgbouncer]
listen_port = 6432
; host=patroni1 in a comment of another section stays
admin_users = postgres
";

    #[test]
    fn rewrites_host_and_port_and_keeps_everything_else() {
        let out = retarget(SAMPLE, &to("patroni2", 5433)).unwrap();
        let expected = SAMPLE
            .replace("* = host=patroni1 port=5432", "* = host=patroni2 port=5433")
            .replace(
                "postgres = host=patroni1 port=5432 dbname",
                "postgres = host=patroni2 port=5433 dbname",
            );
        assert_eq!(out, expected);
    }

    #[test]
    fn rewrite_is_idempotent() {
        let once = retarget(SAMPLE, &to("patroni2", 5432)).unwrap();
        let twice = retarget(&once, &to("patroni2", 5432)).unwrap();
        assert_eq!(once, twice);
        let back = retarget(&once, &to("patroni1", 5432)).unwrap();
        assert_eq!(back, SAMPLE);
    }

    #[test]
    fn adds_missing_host_and_port() {
        let text = "[databases]\nappdb = dbname=app\n";
        let out = retarget(text, &to("patroni2", 5432)).unwrap();
        assert_eq!(
            out,
            "[databases]\nappdb = host=patroni2 port=5432 dbname=app\n"
        );
    }

    #[test]
    fn keeps_quoted_values() {
        let text = "[databases]\nx = host=a port=1 application_name='my app' user=u\n";
        let out = retarget(text, &to("b", 2)).unwrap();
        assert_eq!(
            out,
            "[databases]\nx = host=b port=2 application_name='my app' user=u\n"
        );
    }

    #[test]
    fn adds_a_section_when_there_is_none() {
        let text = "[pgbouncer]\nlisten_port = 6432\n";
        let out = retarget(text, &to("patroni1", 5432)).unwrap();
        assert_eq!(
            out,
            "[databases]\n* = host=patroni1 port=5432\n\n[pgbouncer]\nlisten_port = 6432\n"
        );
    }

    #[test]
    fn fills_an_empty_section() {
        let text = "[databases]\n; nothing yet\n\n[pgbouncer]\n";
        let out = retarget(text, &to("patroni2", 5432)).unwrap();
        assert_eq!(
            out,
            "[databases]\n* = host=patroni2 port=5432\n; nothing yet\n\n[pgbouncer]\n"
        );
    }

    #[test]
    fn keeps_crlf_line_endings() {
        let text = "[databases]\r\n* = host=a port=1\r\n";
        let out = retarget(text, &to("b", 2)).unwrap();
        assert_eq!(out, "[databases]\r\n* = host=b port=2\r\n");
    }

    #[test]
    fn malformed_entry_is_an_error_naming_the_line() {
        let text = "[databases]\n* = host=a port\n";
        let err = retarget(text, &to("b", 2)).unwrap_err();
        assert_eq!(
            err,
            IniError::BadEntry {
                line: 2,
                text: "* = host=a port".into()
            }
        );
    }

    #[test]
    fn hostile_host_is_refused() {
        let err = retarget(SAMPLE, &to("evil\n[pgbouncer]", 5432)).unwrap_err();
        assert!(matches!(err, IniError::BadHost(_)));
    }

    #[test]
    fn reads_targets() {
        assert_eq!(
            targets(SAMPLE),
            vec![
                ("*".to_string(), to("patroni1", 5432)),
                ("postgres".to_string(), to("patroni1", 5432)),
            ]
        );
    }
}
