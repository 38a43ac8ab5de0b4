//! PgBouncer's userlist with the server's own SCRAM secret in place of the password: read from
//! `pg_authid` on the first node that answers (a replica's catalog is the primary's), written
//! readable by PgBouncer's user only. With the secret PgBouncer checks a client's proof without
//! deriving a key (no PBKDF2 per login) and logs into the server with the keys the client
//! proved (SCRAM pass-through, which needs the very secret the server has); no password is kept
//! in plain text on disk.

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use patroni_lab_common::pg;
use tokio_postgres::Config;

/// Why no userlist was written.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum UserlistError {
    #[error("no node gave {user}'s SCRAM secret within {secs} s (last: {last})")]
    NoSecret {
        user: String,
        secs: u64,
        last: String,
    },
    #[error(
        "{user}'s stored password on {host} is not a SCRAM-SHA-256 secret (password_encryption must be scram-sha-256)"
    )]
    NotScram { user: String, host: String },
    #[error("cannot write {path}: {detail}")]
    Write { path: String, detail: String },
}

/// A SCRAM-SHA-256 secret as PostgreSQL stores it:
/// `SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>`.
pub fn is_scram_secret(s: &str) -> bool {
    let Some(rest) = s.strip_prefix("SCRAM-SHA-256$") else {
        return false;
    };
    let Some((head, keys)) = rest.split_once('$') else {
        return false;
    };
    let base64 = |t: &str| {
        !t.is_empty()
            && t.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'/' | b'='))
    };
    matches!(head.split_once(':'), Some((iter, salt)) if iter.parse::<u32>().is_ok_and(|n| n > 0) && base64(salt))
        && matches!(keys.split_once(':'), Some((stored, server)) if base64(stored) && base64(server))
}

/// One userlist line: `"user" "secret"`, double quotes inside doubled as PgBouncer reads them.
pub fn line(user: &str, secret: &str) -> String {
    format!(
        "\"{}\" \"{}\"\n",
        user.replace('"', "\"\""),
        secret.replace('"', "\"\"")
    )
}

/// Where to read the secret: nodes (host names) on `port`, as `user` with `password`.
#[derive(Debug, Clone)]
pub struct Source {
    pub hosts: Vec<String>,
    pub port: u16,
    pub user: String,
    pub password: String,
}

/// Asks each host in turn, again every second, until one gives `user`'s secret or `limit`
/// passes (at start the nodes may still be starting).
pub async fn fetch_secret(source: &Source, limit: Duration) -> Result<String, UserlistError> {
    let started = Instant::now();
    let mut last = String::from("no host given");
    loop {
        for host in &source.hosts {
            let mut config = Config::new();
            config
                .host(host)
                .port(source.port)
                .user(&source.user)
                .password(&source.password)
                .dbname("postgres")
                .application_name("patroni-lab pgbouncer-start");
            match pg::connect_within(&config, Duration::from_secs(3)).await {
                Ok((client, _)) => {
                    let sql = "SELECT rolpassword FROM pg_authid WHERE rolname = current_user";
                    match pg::query_rows(&client, sql).await {
                        Ok(rows) => match rows.first().and_then(|r| r.first().cloned().flatten()) {
                            Some(secret) if is_scram_secret(&secret) => return Ok(secret),
                            _ => {
                                return Err(UserlistError::NotScram {
                                    user: source.user.clone(),
                                    host: host.clone(),
                                });
                            }
                        },
                        Err(e) => last = format!("{host}: {}", pg::error_text(&e)),
                    }
                }
                Err(pg::ConnectError::TimedOut(d)) => {
                    last = format!("{host}: no answer within {} s", d.as_secs())
                }
                Err(pg::ConnectError::Failed(e)) => {
                    last = format!("{host}: {}", pg::error_text(&e))
                }
            }
        }
        if started.elapsed() >= limit {
            return Err(UserlistError::NoSecret {
                user: source.user.clone(),
                secs: limit.as_secs(),
                last,
            });
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Writes the userlist (mode 0600) with one line for `user`.
pub fn write(path: &Path, user: &str, secret: &str) -> Result<(), UserlistError> {
    let failed = |e: std::io::Error| UserlistError::Write {
        path: path.display().to_string(),
        detail: e.to_string(),
    };
    let tmp = path.with_extension("tmp");
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(failed)?;
    file.write_all(line(user, secret).as_bytes())
        .map_err(failed)?;
    file.sync_all().map_err(failed)?;
    fs::rename(&tmp, path).map_err(failed)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "SCRAM-SHA-256$4096:c2FsdHNhbHRzYWx0c2FsdA==$dGhlU3RvcmVkS2V5dGhlU3RvcmVkS2V5dGhlU3Q=:dGhlU2VydmVyS2V5dGhlU2VydmVyS2V5dGhlU2U=";

    #[test]
    fn a_scram_secret_is_told_from_a_password_and_an_md5_hash() {
        assert!(is_scram_secret(SECRET));
        for not in [
            "postgres",
            "md5a3556571e93b0d20722ba62be61e8c2d",
            "SCRAM-SHA-256$4096:salt",
            "SCRAM-SHA-256$0:c2FsdA==$a:b",
            "SCRAM-SHA-256$4096:c2FsdA==$a b:c",
            "",
        ] {
            assert!(!is_scram_secret(not), "{not}");
        }
    }

    #[test]
    fn a_line_quotes_user_and_secret() {
        assert_eq!(
            line("postgres", SECRET),
            format!("\"postgres\" \"{SECRET}\"\n")
        );
        assert_eq!(line("a\"b", "x"), "\"a\"\"b\" \"x\"\n");
    }

    #[test]
    fn the_userlist_is_owner_only_and_holds_the_secret() {
        use std::os::unix::fs::PermissionsExt as _;
        let dir = std::env::temp_dir().join(format!("plab-userlist-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap();
        let path = dir.join("userlist.txt");
        write(&path, "postgres", SECRET).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), line("postgres", SECRET));
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let _ = fs::remove_dir_all(&dir);
    }
}
