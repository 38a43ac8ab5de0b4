//! A minimal client for the Patroni REST API over plain HTTP/1.0: `GET` (`/cluster`,
//! `/patroni`) and, with Basic authentication, `POST`/`PATCH` of a JSON body (`/switchover`).
//!
//! Patroni's REST API answers one request per connection when asked with HTTP/1.0, so a
//! blocking `TcpStream` with time-outs is all that is needed; no HTTP library is pulled in.

use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum PatroniError {
    #[error("'{0}' is not an http://host:port address of a Patroni REST API")]
    BadUrl(String),
    #[error("cannot reach the Patroni REST API at {url}: {source}")]
    Unreachable { url: String, source: std::io::Error },
    #[error("the Patroni REST API at {url} answered HTTP {status}")]
    Status { url: String, status: u16 },
    #[error("the Patroni REST API at {url} sent a reply that is not the expected JSON: {detail}")]
    BadReply { url: String, detail: String },
}

/// One member of `GET /cluster`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    pub role: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub host: String,
    #[serde(default)]
    pub port: u16,
    #[serde(default)]
    pub timeline: Option<u64>,
}

/// The body of `GET /cluster`.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
pub struct ClusterView {
    pub members: Vec<Member>,
    #[serde(default)]
    pub scope: Option<String>,
}

impl ClusterView {
    /// The member that holds the leader lock (`leader` or `standby_leader`).
    pub fn leader(&self) -> Option<&Member> {
        self.members
            .iter()
            .find(|m| m.role == "leader" || m.role == "standby_leader")
    }
}

/// Splits `http://host:port[/...]` into the host:port part.
fn authority(url: &str) -> Result<&str, PatroniError> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| PatroniError::BadUrl(url.to_string()))?;
    let host_port = rest.split('/').next().unwrap_or_default();
    if host_port.is_empty() || !host_port.contains(':') {
        return Err(PatroniError::BadUrl(url.to_string()));
    }
    Ok(host_port)
}

/// Credentials for Patroni's unsafe endpoints (`restapi.authentication`).
#[derive(Debug, Clone)]
pub struct Auth {
    pub user: String,
    pub password: String,
}

/// `GET {base}{path}` and returns the status code and body.
pub fn get(base: &str, path: &str, timeout: Duration) -> Result<(u16, String), PatroniError> {
    request(base, "GET", path, None, None, timeout)
}

/// `GET /patroni`: its status code and the member name it gives (`None`: no name in the body).
pub fn member_name(base: &str, timeout: Duration) -> Result<(u16, Option<String>), PatroniError> {
    let (status, body) = get(base, "/patroni", timeout)?;
    let value: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    Ok((
        status,
        value["patroni"]["name"].as_str().map(str::to_string),
    ))
}

/// `{method} {base}{path}` with a JSON body and Basic authentication; returns the status code
/// and body.
pub fn send_json(
    base: &str,
    method: &str,
    path: &str,
    body: &str,
    auth: Option<&Auth>,
    timeout: Duration,
) -> Result<(u16, String), PatroniError> {
    request(base, method, path, Some(body), auth, timeout)
}

fn request(
    base: &str,
    method: &str,
    path: &str,
    body: Option<&str>,
    auth: Option<&Auth>,
    timeout: Duration,
) -> Result<(u16, String), PatroniError> {
    let host_port = authority(base)?;
    let url = format!("{}{}", base.trim_end_matches('/'), path);
    let unreachable = |source| PatroniError::Unreachable {
        url: url.clone(),
        source,
    };
    let addr = host_port
        .to_socket_addrs()
        .map_err(unreachable)?
        .next()
        .ok_or_else(|| PatroniError::BadUrl(base.to_string()))?;
    let mut stream = TcpStream::connect_timeout(&addr, timeout).map_err(unreachable)?;
    stream
        .set_read_timeout(Some(timeout))
        .map_err(unreachable)?;
    stream
        .set_write_timeout(Some(timeout))
        .map_err(unreachable)?;
    let mut request = format!(
        "{method} {path} HTTP/1.0\r\nHost: {host_port}\r\nAccept: application/json\r\nConnection: close\r\n"
    );
    if let Some(a) = auth {
        let token = crate::base64::encode(format!("{}:{}", a.user, a.password).as_bytes());
        request.push_str(&format!("Authorization: Basic {token}\r\n"));
    }
    if let Some(body) = body {
        request.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body.unwrap_or_default());
    stream.write_all(request.as_bytes()).map_err(unreachable)?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).map_err(unreachable)?;
    parse_reply(&reply).ok_or_else(|| PatroniError::BadReply {
        url,
        detail: "not an HTTP response".into(),
    })
}

fn parse_reply(reply: &[u8]) -> Option<(u16, String)> {
    let text = String::from_utf8_lossy(reply);
    let (head, body) = text.split_once("\r\n\r\n")?;
    let status = head
        .lines()
        .next()?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some((status, body.to_string()))
}

/// `GET /cluster` of the API at `base` (e.g. `http://127.0.0.1:8008`).
pub fn cluster(base: &str, timeout: Duration) -> Result<ClusterView, PatroniError> {
    let (status, body) = get(base, "/cluster", timeout)?;
    let url = format!("{}/cluster", base.trim_end_matches('/'));
    if status != 200 {
        return Err(PatroniError::Status { url, status });
    }
    serde_json::from_str(&body).map_err(|e| PatroniError::BadReply {
        url,
        detail: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cluster_json_and_finds_the_leader() {
        let body = r#"{"members": [
            {"name": "patroni1", "role": "replica", "state": "streaming", "api_url": "http://patroni1:8008/patroni", "host": "patroni1", "port": 5432, "timeline": 2, "lag": 0},
            {"name": "patroni2", "role": "leader", "state": "running", "api_url": "http://patroni2:8008/patroni", "host": "patroni2", "port": 5432, "timeline": 2}
        ], "scope": "postgres-cluster"}"#;
        let view: ClusterView = serde_json::from_str(body).unwrap();
        let leader = view.leader().unwrap();
        assert_eq!(leader.name, "patroni2");
        assert_eq!(leader.host, "patroni2");
        assert_eq!(leader.port, 5432);
    }

    #[test]
    fn no_leader_while_the_lock_is_free() {
        let body = r#"{"members": [{"name": "patroni1", "role": "replica", "state": "stopped"}]}"#;
        let view: ClusterView = serde_json::from_str(body).unwrap();
        assert!(view.leader().is_none());
    }

    #[test]
    fn parses_status_and_body() {
        let reply =
            b"HTTP/1.0 503 Service Unavailable\r\nContent-Type: application/json\r\n\r\n{\"x\":1}";
        assert_eq!(parse_reply(reply), Some((503, "{\"x\":1}".to_string())));
        assert_eq!(parse_reply(b"garbage"), None);
    }

    #[test]
    fn rejects_urls_it_cannot_use() {
        assert!(matches!(
            authority("https://x:1"),
            Err(PatroniError::BadUrl(_))
        ));
        assert!(matches!(
            authority("http://x"),
            Err(PatroniError::BadUrl(_))
        ));
        assert_eq!(
            authority("http://127.0.0.1:8008/").unwrap(),
            "127.0.0.1:8008"
        );
    }
}
