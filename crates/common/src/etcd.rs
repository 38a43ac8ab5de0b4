//! What etcd itself says, through its v3 JSON API: who holds Patroni's leader key
//! (`POST /v3/kv/range`) and how long its lease has left (`POST /v3/lease/timetolive`). Both are
//! read from etcd, not from a member's REST view of them, so a frozen or cut-off member cannot
//! make the lock look held.

use std::time::Duration;

use crate::patroni::{PatroniError, send_json};

/// Patroni's leader key for a cluster: `<namespace><scope>/leader` (namespace `/service/` by
/// default).
pub fn leader_key(namespace: &str, scope: &str) -> String {
    format!("/{}/{scope}/leader", namespace.trim_matches('/'))
}

/// Patroni's status key: `<namespace><scope>/status`, where the leader writes its WAL position
/// (`optime`) every loop.
pub fn status_key(namespace: &str, scope: &str) -> String {
    format!("/{}/{scope}/status", namespace.trim_matches('/'))
}

/// The leader's WAL position as etcd has it (the status key's `optime`; `None`: no key or no
/// optime in it). Patroni compares a replica's position with this one, not with the leader's
/// live position, when it decides whether the replica may be promoted
/// (`maximum_lag_on_failover`).
pub fn leader_optime(url: &str, key: &str, timeout: Duration) -> Result<Option<u64>, PatroniError> {
    let value = read_leader(url, key, timeout)?.holder;
    Ok(value.as_deref().and_then(optime))
}

fn optime(status: &str) -> Option<u64> {
    serde_json::from_str::<serde_json::Value>(status).ok()?["optime"].as_u64()
}

/// The leader key as etcd has it now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaderKey {
    /// The member holding it (`None`: no key, the lock is free).
    pub holder: Option<String>,
    /// The key's lease, as etcd numbers it (decimal); `None` without a key.
    pub lease: Option<String>,
    /// etcd's revision when it answered.
    pub revision: u64,
}

/// Reads `key` from the etcd at `url` (`http://host:2379`): its value (for the leader key, the
/// holder), lease and etcd's revision.
pub fn read_leader(url: &str, key: &str, timeout: Duration) -> Result<LeaderKey, PatroniError> {
    let body = format!(r#"{{"key": "{}"}}"#, crate::base64::encode(key.as_bytes()));
    let (status, reply) = send_json(url, "POST", "/v3/kv/range", &body, None, timeout)?;
    let at = format!("{}/v3/kv/range", url.trim_end_matches('/'));
    if status != 200 {
        return Err(PatroniError::Status { url: at, status });
    }
    parse_range(&reply).ok_or_else(|| PatroniError::BadReply {
        url: at,
        detail: format!("not a range answer: {}", reply.trim()),
    })
}

/// A lease's time to live as etcd has it now. etcd gives whole seconds, truncated: `remaining_s`
/// is 24 for anything from 24.0 to 24.99 s left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaseTtl {
    /// Whole seconds left (`None`: the lease has expired or never existed).
    pub remaining_s: Option<u64>,
    /// The TTL the lease was granted (Patroni's `ttl`); every renewal starts it afresh.
    pub granted_s: u64,
}

/// Reads lease `id` (decimal, as the leader key names it) from the etcd at `url`.
pub fn lease_ttl(url: &str, id: &str, timeout: Duration) -> Result<LeaseTtl, PatroniError> {
    let at = format!("{}/v3/lease/timetolive", url.trim_end_matches('/'));
    if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) {
        return Err(PatroniError::BadReply {
            url: at,
            detail: format!("{id:?} is not a lease ID"),
        });
    }
    let body = format!(r#"{{"ID": "{id}"}}"#);
    let (status, reply) = send_json(url, "POST", "/v3/lease/timetolive", &body, None, timeout)?;
    if status != 200 {
        return Err(PatroniError::Status { url: at, status });
    }
    parse_ttl(&reply).ok_or_else(|| PatroniError::BadReply {
        url: at,
        detail: format!("not a timetolive answer: {}", reply.trim()),
    })
}

fn parse_ttl(reply: &str) -> Option<LeaseTtl> {
    let v: serde_json::Value = serde_json::from_str(reply).ok()?;
    // int64 fields come as strings; an expired lease has TTL -1 (and grantedTTL absent or 0).
    let number = |k: &str| -> Option<i64> {
        match &v[k] {
            serde_json::Value::String(s) => s.parse().ok(),
            serde_json::Value::Number(n) => n.as_i64(),
            serde_json::Value::Null => Some(0),
            _ => None,
        }
    };
    let ttl = number("TTL")?;
    v.get("header")?;
    Some(LeaseTtl {
        remaining_s: u64::try_from(ttl).ok(),
        granted_s: u64::try_from(number("grantedTTL")?).ok()?,
    })
}

fn parse_range(reply: &str) -> Option<LeaderKey> {
    let v: serde_json::Value = serde_json::from_str(reply).ok()?;
    let revision = v["header"]["revision"].as_str()?.parse().ok()?;
    let kv = v["kvs"].as_array().and_then(|k| k.first());
    let holder = match kv {
        Some(kv) => Some(String::from_utf8(crate::base64::decode(kv["value"].as_str()?)?).ok()?),
        None => None,
    };
    let lease = kv.and_then(|kv| kv["lease"].as_str().map(str::to_string));
    Some(LeaderKey {
        holder,
        lease,
        revision,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_keys_optime_is_read_and_anything_else_is_none() {
        let live =
            r#"{"optime":252415672,"slots":{"patroni2":252415672},"retain_slots":["patroni2"]}"#;
        assert_eq!(optime(live), Some(252415672));
        assert_eq!(optime(r#"{"slots":{}}"#), None);
        assert_eq!(optime("not json"), None);
        assert_eq!(
            status_key("/service/", "postgres-cluster"),
            "/service/postgres-cluster/status"
        );
    }

    #[test]
    fn reads_the_holder_lease_and_revision_or_a_free_lock() {
        let held = r#"{"header":{"cluster_id":"1","member_id":"2","revision":"917","raft_term":"3"},
            "kvs":[{"key":"L3NlcnZpY2UvcG9zdGdyZXMtY2x1c3Rlci9sZWFkZXI=","create_revision":"900",
            "mod_revision":"917","version":"3","value":"cGF0cm9uaTI=","lease":"7587883"}],"count":"1"}"#;
        assert_eq!(
            parse_range(held),
            Some(LeaderKey {
                holder: Some("patroni2".into()),
                lease: Some("7587883".into()),
                revision: 917
            })
        );
        let free =
            r#"{"header":{"cluster_id":"1","member_id":"2","revision":"918","raft_term":"3"}}"#;
        assert_eq!(
            parse_range(free),
            Some(LeaderKey {
                holder: None,
                lease: None,
                revision: 918
            })
        );
        assert_eq!(parse_range("{}"), None);
        let live = r#"{"header":{"revision":"930"},"ID":"7587883","TTL":"24","grantedTTL":"30"}"#;
        assert_eq!(
            parse_ttl(live),
            Some(LeaseTtl {
                remaining_s: Some(24),
                granted_s: 30
            })
        );
        let gone = r#"{"header":{"revision":"931"},"ID":"7587883","TTL":"-1"}"#;
        assert_eq!(
            parse_ttl(gone),
            Some(LeaseTtl {
                remaining_s: None,
                granted_s: 0
            })
        );
        assert_eq!(parse_ttl("{}"), None);
        assert_eq!(
            leader_key("/service/", "postgres-cluster"),
            "/service/postgres-cluster/leader"
        );
    }
}
