//! SQL on a member's own PostgreSQL, not through PgBouncer or HAProxy: one query with a whole
//! time-out, and the WAL comparison between a replica and the leader that tells a member on
//! its own timeline with the leader's timeline ID (the doctor's `diverged-timeline`, and part
//! of "whole").

use std::str::FromStr;
use std::time::Duration;

use patroni_lab_common::pg::query_rows;
use patroni_lab_probe::workload::connect;
use tokio_postgres::Config;

fn config(url: &str, password: &str) -> Result<Config, String> {
    let mut c = Config::from_str(url).map_err(|e| format!("{url}: {e}"))?;
    c.password(password);
    c.application_name("patroni-lab-scenario");
    Ok(c)
}

/// Runs one simple query against `url` with a whole time-out.
pub async fn query(
    url: &str,
    password: &str,
    sql: &str,
) -> Result<Vec<Vec<Option<String>>>, String> {
    let c = config(url, password)?;
    let limit = Duration::from_secs(3);
    let session = connect(&c, limit).await.map_err(|f| f.message)?;
    match tokio::time::timeout(limit, query_rows(&session.client, sql)).await {
        Ok(Ok(rows)) => Ok(rows),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

/// One replica as read on its own direct connection.
#[derive(Debug, Clone, Default)]
pub struct ReplicaState {
    pub in_recovery: bool,
    /// `pg_stat_wal_receiver`'s status (`None`: no WAL receiver at all).
    pub receiver: Option<String>,
    pub checkpoint_tli: u32,
    pub checkpoint_lsn: u64,
    /// Where replay from that checkpoint starts (the checkpoint's redo pointer).
    pub redo_lsn: u64,
    pub replay_lsn: Option<u64>,
    pub segment_size: u64,
}

/// A replica's recovery state, WAL receiver and last checkpoint.
pub async fn replica_state(url: &str, password: &str) -> Result<ReplicaState, String> {
    let rows = query(
        url,
        password,
        "SELECT pg_is_in_recovery()::text, timeline_id::text, checkpoint_lsn::text, \
           pg_last_wal_replay_lsn()::text, \
           (SELECT setting FROM pg_settings WHERE name = 'wal_segment_size'), redo_lsn::text \
         FROM pg_control_checkpoint(); \
         SELECT status FROM pg_stat_wal_receiver",
    )
    .await?;
    let cell = |r: usize, c: usize| rows.get(r).and_then(|x| x.get(c).cloned().flatten());
    Ok(ReplicaState {
        in_recovery: cell(0, 0).as_deref() == Some("true"),
        receiver: cell(1, 0),
        checkpoint_tli: cell(0, 1).and_then(|s| s.parse().ok()).unwrap_or(0),
        checkpoint_lsn: cell(0, 2).and_then(|s| parse_lsn(&s)).unwrap_or(0),
        replay_lsn: cell(0, 3).and_then(|s| parse_lsn(&s)),
        segment_size: cell(0, 4).and_then(|s| s.parse().ok()).unwrap_or(16 << 20),
        redo_lsn: cell(0, 5).and_then(|s| parse_lsn(&s)).unwrap_or(0),
    })
}

/// A member's state from `pg_controldata`'s text: read while its PostgreSQL is down (no WAL
/// receiver, no replay position then).
pub fn from_controldata(text: &str) -> Option<ReplicaState> {
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(':').map(str::trim))
    };
    Some(ReplicaState {
        in_recovery: field("Database cluster state")?.contains("recovery"),
        receiver: None,
        checkpoint_tli: field("Latest checkpoint's TimeLineID")?.parse().ok()?,
        checkpoint_lsn: parse_lsn(field("Latest checkpoint location")?)?,
        redo_lsn: parse_lsn(field("Latest checkpoint's REDO location")?)?,
        replay_lsn: None,
        segment_size: field("Bytes per WAL segment")?.parse().ok()?,
    })
}

/// Whether the replica's last checkpoint is in the leader's WAL on the same timeline: the
/// leader's record at that LSN must be a checkpoint record (resource manager XLOG) whose redo
/// pointer and timeline are the replica's. Its own file cannot be compared: its WAL receiver
/// overwrites it with the leader's WAL while replay stays stuck on its own history.
/// `Ok(Some(evidence))`: not in the leader's WAL (two timelines with one ID); `Ok(None)`: it
/// is, or the timelines differ (Patroni's own pg_rewind case); `Err`: cannot tell.
pub async fn diverged(
    leader_url: &str,
    password: &str,
    r: &ReplicaState,
    leader_lsn: u64,
) -> Result<Option<String>, String> {
    // The leader's current timeline: the first 8 hex digits of its current WAL file's name.
    let leader_tli = query(
        leader_url,
        password,
        "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int::text",
    )
    .await?
    .first()
    .and_then(|row| row.first().cloned().flatten())
    .and_then(|s| s.parse::<u32>().ok())
    .ok_or("the leader's timeline could not be read")?;
    if leader_tli != r.checkpoint_tli || r.checkpoint_lsn == 0 {
        return Ok(None);
    }
    let at = format!(
        "its last checkpoint at {} on timeline {}",
        lsn_text(r.checkpoint_lsn),
        r.checkpoint_tli
    );
    if r.checkpoint_lsn >= leader_lsn {
        return Ok(Some(format!(
            "{at} lies beyond the leader's WAL on that timeline (the leader is at {})",
            lsn_text(leader_lsn)
        )));
    }
    let (file, offset, len) = wal_place(r.checkpoint_tli, r.checkpoint_lsn, r.segment_size);
    if offset % WAL_PAGE + len > WAL_PAGE {
        return Err(format!("{at} crosses a WAL page; not compared"));
    }
    let read =
        format!("SELECT encode(pg_read_binary_file('pg_wal/{file}', {offset}, {len}), 'hex')");
    let hex = query(leader_url, password, &read)
        .await
        .map_err(|e| format!("the leader's {file}: {e}"))?
        .first()
        .and_then(|row| row.first().cloned().flatten())
        .unwrap_or_default();
    match checkpoint_in(&hex) {
        Some((redo, tli)) if redo == r.redo_lsn && tli == r.checkpoint_tli => Ok(None),
        Some((redo, tli)) => Ok(Some(format!(
            "{at} is another checkpoint in the leader's WAL (redo {}, timeline {tli}; the replica's: redo {})",
            lsn_text(redo),
            lsn_text(r.redo_lsn)
        ))),
        None => Ok(Some(format!(
            "{at} is not a checkpoint record in the leader's WAL ({file} at byte {offset})"
        ))),
    }
}

/// PostgreSQL's WAL page size (the default build's XLOG_BLCKSZ).
const WAL_PAGE: u64 = 8192;

/// A checkpoint record's redo pointer and timeline, from its first bytes (hex): the 24-byte
/// record header (resource manager 0, XLOG; info 0x00 shutdown or 0x10 online), a short main
/// data block (0xFF, length), then the CheckPoint struct (redo, ThisTimeLineID). `None`: not a
/// checkpoint record.
fn checkpoint_in(hex: &str) -> Option<(u64, u32)> {
    let bytes: Vec<u8> = (0..hex.len() / 2)
        .map(|i| u8::from_str_radix(hex.get(2 * i..2 * i + 2)?, 16).ok())
        .collect::<Option<_>>()?;
    if bytes.len() < 38 {
        return None;
    }
    let (info, rmid) = (bytes[16] & 0xF0, bytes[17]);
    if rmid != 0 || !matches!(info, 0x00 | 0x10) || bytes[24] != 0xFF {
        return None;
    }
    let redo = u64::from_le_bytes(bytes[26..34].try_into().ok()?);
    let tli = u32::from_le_bytes(bytes[34..38].try_into().ok()?);
    Some((redo, tli))
}

/// The WAL file of `tli` holding `lsn`, the offset in it, and how much of the record header
/// (and what follows) to compare without running past the file's end.
fn wal_place(tli: u32, lsn: u64, segment_size: u64) -> (String, u64, u64) {
    let segment = lsn / segment_size;
    let per_xlogid = 0x1_0000_0000 / segment_size;
    let file = format!(
        "{tli:08X}{:08X}{:08X}",
        segment / per_xlogid,
        segment % per_xlogid
    );
    let offset = lsn % segment_size;
    (file, offset, 64.min(segment_size - offset))
}

/// `0/3039348` → 0x3039348.
pub fn parse_lsn(s: &str) -> Option<u64> {
    let (hi, lo) = s.split_once('/')?;
    Some((u64::from_str_radix(hi, 16).ok()? << 32) | u64::from_str_radix(lo, 16).ok()?)
}

pub fn lsn_text(lsn: u64) -> String {
    format!("{:X}/{:X}", lsn >> 32, lsn & 0xFFFF_FFFF)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_lsn_names_its_wal_file_and_offset() {
        assert_eq!(parse_lsn("0/303C8F8"), Some(0x303C8F8));
        assert_eq!(parse_lsn("1/0"), Some(1 << 32));
        assert_eq!(parse_lsn("nope"), None);
        assert_eq!(lsn_text(0x303C8F8), "0/303C8F8");
        // 16 MiB segments: 0/303C8F8 is in segment 3 of timeline 2, 0x3C8F8 into it.
        assert_eq!(
            wal_place(2, 0x303C8F8, 16 << 20),
            ("000000020000000000000003".into(), 0x3C8F8, 64)
        );
        assert_eq!(
            wal_place(1, (1 << 32) + 0xFFFF_FFF0, 16 << 20),
            ("0000000100000001000000FF".into(), 0xFF_FFF0, 16)
        );
    }

    #[test]
    fn a_checkpoint_record_gives_its_redo_and_timeline_anything_else_none() {
        // Header: tot_len, xid, prev, info 0x10 (online), rmid 0 (XLOG), pad, crc; then 0xFF,
        // the main data's length, redo 0/4000028, timeline 3.
        let mut b = vec![0u8; 24];
        b[16] = 0x10;
        b.extend([0xFF, 88]);
        b.extend(0x400_0028u64.to_le_bytes());
        b.extend(3u32.to_le_bytes());
        b.extend([0u8; 26]);
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(checkpoint_in(&hex), Some((0x400_0028, 3)));
        // Another resource manager (heap, 10) at that place: not a checkpoint.
        let mut heap = b.clone();
        heap[17] = 10;
        let hex: String = heap.iter().map(|x| format!("{x:02x}")).collect();
        assert_eq!(checkpoint_in(&hex), None);
        assert_eq!(checkpoint_in("00ff"), None);
        assert_eq!(checkpoint_in(""), None);
    }

    #[test]
    fn pg_controldata_gives_the_checkpoint_of_a_member_that_is_down() {
        let text = "Database cluster state:               in archive recovery
Latest checkpoint location:           0/700AF78
Latest checkpoint's REDO location:    0/700AF70
Latest checkpoint's TimeLineID:       5
Latest checkpoint's PrevTimeLineID:   5
Bytes per WAL segment:                16777216
";
        let r = from_controldata(text).unwrap();
        assert!(r.in_recovery);
        assert_eq!(
            (
                r.checkpoint_tli,
                r.checkpoint_lsn,
                r.redo_lsn,
                r.segment_size
            ),
            (5, 0x700_AF78, 0x700_AF70, 16 << 20)
        );
        assert!(from_controldata("Database cluster state: in production").is_none());
    }
}
