//! What the leader's Patroni wrote about its DCS while a fault ran, from its own log (its lines
//! stamped at or after the injection, to the end of the run): how many of its requests to etcd
//! failed (of them, the lease keep-alives that name their URL: a read time-out does not),
//! leader-key updates that failed, loops that could not reach the DCS, and when it demoted
//! itself for want of it. The counts are lines of Patroni's own text, each named by what it
//! says; the log is read, never inferred.

use serde::Serialize;

/// The DCS trouble the leader's Patroni logged in a run.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DcsLog {
    pub member: String,
    /// `Request to server … failed: …`: a request to etcd that failed, whatever it was.
    pub etcd_requests_failed: u32,
    /// Of those, the ones that name `/v3/lease/keepalive`: a renewal of the leader's etcd
    /// lease that failed (a read time-out names no URL, so this is a lower bound).
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
        self.etcd_requests_failed + self.lock_updates_failed + self.dcs_errors > 0
            || self.demoted_at.is_some()
    }

    /// One line for the report.
    pub fn line(&self) -> String {
        let mut s = format!(
            "{}'s Patroni logged, from the injection on: {} failed requests to etcd ({} of them lease keep-alives that name it), {} failed leader-lock updates, {} loops without the DCS",
            self.member,
            self.etcd_requests_failed,
            self.keepalives_failed,
            self.lock_updates_failed,
            self.dcs_errors
        );
        if let Some(at) = &self.demoted_at {
            s.push_str(&format!("; demoted itself (DCS not accessible) at {at}"));
        }
        s
    }
}

/// A log line's own time (`2026-12-05 01:41:39,962 ...`, UTC) in milliseconds since the epoch.
fn stamped_ms(line: &str) -> Option<u64> {
    let s = line.get(..23)?;
    let n = |r: std::ops::Range<usize>| s.get(r)?.parse::<i64>().ok();
    let (y, mo, d) = (n(0..4)?, n(5..7)?, n(8..10)?);
    let (h, mi, se, ms) = (n(11..13)?, n(14..16)?, n(17..19)?, n(20..23)?);
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if mo <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (mo + if mo > 2 { -3 } else { 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    u64::try_from((((days * 24 + h) * 60 + mi) * 60 + se) * 1000 + ms).ok()
}

/// Reads `log` (Patroni's lines among others) for `member`: the lines stamped at or after
/// `since_ms` (a line whose stamp cannot be read is counted: it came in the read's span).
pub fn read(member: &str, log: &str, since_ms: u64) -> DcsLog {
    let mut d = DcsLog {
        member: member.to_string(),
        ..DcsLog::default()
    };
    for line in log
        .lines()
        .filter(|l| stamped_ms(l).is_none_or(|at| at >= since_ms))
    {
        if line.contains("Request to server") && line.contains("failed") {
            d.etcd_requests_failed += 1;
            if line.contains("/v3/lease/keepalive") {
                d.keepalives_failed += 1;
            }
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
        let d = read("patroni1", LOG, 0);
        assert_eq!(
            d,
            DcsLog {
                member: "patroni1".into(),
                etcd_requests_failed: 2,
                keepalives_failed: 1,
                lock_updates_failed: 1,
                dcs_errors: 2,
                demoted_at: Some("2026-12-05 01:41:39,962".into()),
            }
        );
        assert!(d.any());
        assert_eq!(
            d.line(),
            "patroni1's Patroni logged, from the injection on: 2 failed requests to etcd (1 of them lease keep-alives that name it), 1 failed leader-lock updates, 2 loops without the DCS; demoted itself (DCS not accessible) at 2026-12-05 01:41:39,962"
        );
        let quiet = read(
            "patroni2",
            "2026-12-05 01:41:52,100 INFO: no action. I am (patroni2), a secondary, and following a leader (patroni1)\n",
            0,
        );
        assert!(!quiet.any());
        // 2026-12-05 01:41:39,956 UTC, to the millisecond: what came before it is not counted.
        let at = 1_796_434_899_956;
        assert_eq!(
            stamped_ms("2026-12-05 01:41:39,956 ERROR: Error communicating with DCS"),
            Some(at)
        );
        let later = read("patroni1", LOG, at + 1);
        assert_eq!(
            (
                later.etcd_requests_failed,
                later.dcs_errors,
                later.demoted_at.as_deref()
            ),
            (0, 1, Some("2026-12-05 01:41:39,962"))
        );
    }
}
