//! What the leader's Patroni wrote about its DCS while a fault ran, from its own log (from the
//! injection's second to the end of the run): how many of its lease keep-alives to etcd and
//! leader-key updates failed, how many loops could not reach the DCS, and when it demoted
//! itself for want of it. The counts are lines of Patroni's own text, each named by what it
//! says; the log is read, never inferred.

use serde::Serialize;

/// The DCS trouble the leader's Patroni logged in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DcsLog {
    pub member: String,
    /// `Request to server … failed: … /v3/lease/keepalive …`: a renewal of the leader's etcd
    /// lease that failed (etcd v3).
    pub keepalives_failed: u32,
    /// `failed to update leader lock`: a loop whose update of the leader key failed.
    pub lock_updates_failed: u32,
    /// `Error communicating with DCS`: a loop that could not reach the DCS at all.
    pub dcs_errors: u32,
    /// When it demoted itself because the DCS was not accessible (its log's own timestamp).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub demoted_at: Option<String>,
}

impl DcsLog {
    /// Whether it logged anything of the kind.
    pub fn any(&self) -> bool {
        self.keepalives_failed + self.lock_updates_failed + self.dcs_errors > 0
            || self.demoted_at.is_some()
    }

    /// One line for the report.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{}'s Patroni logged, from the injection on: {} failed lease keep-alives, {} failed leader-lock updates, {} loops without the DCS",
            self.member, self.keepalives_failed, self.lock_updates_failed, self.dcs_errors
        );
        if let Some(at) = &self.demoted_at {
            s.push_str(&format!("; demoted itself (DCS not accessible) at {at}"));
        }
        s
    }
}

/// Reads `log` (Patroni's lines among others) for `member`.
pub fn read(member: &str, log: &str) -> DcsLog {
    let mut d = DcsLog {
        member: member.to_string(),
        ..DcsLog::default()
    };
    for line in log.lines() {
        if line.contains("Request to server") && line.contains("/v3/lease/keepalive") {
            d.keepalives_failed += 1;
        } else if line.contains("failed to update leader lock") {
            d.lock_updates_failed += 1;
        } else if line.contains("Error communicating with DCS") {
            d.dcs_errors += 1;
        } else if line.contains("demoting self because DCS is not accessible")
            && d.demoted_at.is_none()
        {
            // `2026-12-05 01:41:39,962 INFO: demoting self ...`
            d.demoted_at = line.get(..23).map(str::to_string);
        }
    }
    d
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lines as Patroni 4 wrote them here when the leader's link to etcd was capped at 8 kbit/s.
    const LOG: &str = "2026-12-05 01:41:28,532 ERROR: Request to server http://etcd:2379 failed: ReadTimeoutError(\"HTTPConnectionPool(host='etcd', port=2379): Read timed out. (read timeout=3.33)\")
2026-12-05 01:41:34,945 ERROR: Request to server http://etcd:2379 failed: MaxRetryError(\"HTTPConnectionPool(host='etcd', port=2379): Max retries exceeded with url: /v3/lease/keepalive (Caused by ConnectTimeoutError(...))\")
2026-12-05 01:41:39,956 ERROR: Error communicating with DCS
2026-12-05 01:41:39,962 INFO: demoting self because DCS is not accessible and I was a leader
2026-12-05 01:41:41,647 INFO: demoted self because DCS is not accessible and I was a leader
2026-12-05 01:41:51,651 ERROR: Error communicating with DCS
2026-12-05 01:41:52,001 ERROR: failed to update leader lock
2026-12-05 01:41:52,100 LOG:  checkpoint starting: time
";

    #[test]
    fn each_kind_of_dcs_trouble_is_counted_by_its_own_text() {
        let d = read("patroni1", LOG);
        assert_eq!(
            d,
            DcsLog {
                member: "patroni1".into(),
                keepalives_failed: 1,
                lock_updates_failed: 1,
                dcs_errors: 2,
                demoted_at: Some("2026-12-05 01:41:39,962".into()),
            }
        );
        assert!(d.any());
        assert_eq!(
            d.line(),
            "patroni1's Patroni logged, from the injection on: 1 failed lease keep-alives, 1 failed leader-lock updates, 2 loops without the DCS; demoted itself (DCS not accessible) at 2026-12-05 01:41:39,962"
        );
        let quiet = read(
            "patroni2",
            "2026-12-05 01:41:52,100 INFO: no action. I am (patroni2), a secondary, and following a leader (patroni1)\n",
        );
        assert!(!quiet.any());
    }
}
