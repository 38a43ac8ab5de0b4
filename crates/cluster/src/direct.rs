//! SQL on a member's own PostgreSQL, not through PgBouncer or HAProxy: one query with a whole
//! time-out, and the WAL comparison between a replica and the leader that tells a member on
//! its own timeline with the leader's timeline ID (the doctor's `diverged-timeline`, and part
//! of "whole").

use std::str::FromStr;
use std::time::Duration;

use patroni_lab_common::pg::query_rows;
use patroni_lab_probe::workload::connect;
use tokio_postgres::Config;

/// The `application_name` of these direct connections (the runner's and the doctor's checks).
pub const APPLICATION_NAME: &str = "patroni-lab-scenario";

fn config(url: &str, password: &str) -> Result<Config, String> {
    let mut c = Config::from_str(url).map_err(|e| format!("{url}: {e}"))?;
    c.password(password);
    c.application_name(APPLICATION_NAME);
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
        // A server's error by its own message ("db error" alone says nothing).
        Ok(Err(e)) => Err(e
            .as_db_error()
            .map_or_else(|| e.to_string(), |d| d.message().to_string())),
        Err(_) => Err(format!("no answer within {limit:?}")),
    }
}

/// One replica as read on its own direct connection.
#[derive(Debug, Clone, Default)]
pub struct ReplicaState {
    pub in_recovery: bool,
    /// `pg_stat_wal_receiver`'s status (`None`: no WAL receiver at all).
    pub receiver: Option<String>,
    /// The timeline its WAL receiver receives (`None`: no receiver, or not read).
    pub received_tli: Option<u32>,
    pub checkpoint_tli: u32,
    pub checkpoint_lsn: u64,
    /// Where replay from that checkpoint starts (the checkpoint's redo pointer).
    pub redo_lsn: u64,
    pub replay_lsn: Option<u64>,
    pub segment_size: u64,
    /// Where it was read (`None`: from its control file, PostgreSQL down).
    pub url: Option<String>,
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
         SELECT status, received_tli::text FROM pg_stat_wal_receiver",
    )
    .await?;
    let cell = |r: usize, c: usize| rows.get(r).and_then(|x| x.get(c).cloned().flatten());
    Ok(ReplicaState {
        in_recovery: cell(0, 0).as_deref() == Some("true"),
        receiver: cell(1, 0),
        received_tli: cell(1, 1).and_then(|s| s.parse().ok()),
        checkpoint_tli: cell(0, 1).and_then(|s| s.parse().ok()).unwrap_or(0),
        checkpoint_lsn: cell(0, 2).and_then(|s| parse_lsn(&s)).unwrap_or(0),
        replay_lsn: cell(0, 3).and_then(|s| parse_lsn(&s)),
        segment_size: cell(0, 4).and_then(|s| s.parse().ok()).unwrap_or(16 << 20),
        redo_lsn: cell(0, 5).and_then(|s| parse_lsn(&s)).unwrap_or(0),
        url: Some(url.to_string()),
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
        received_tli: None,
        checkpoint_tli: field("Latest checkpoint's TimeLineID")?.parse().ok()?,
        checkpoint_lsn: parse_lsn(field("Latest checkpoint location")?)?,
        redo_lsn: parse_lsn(field("Latest checkpoint's REDO location")?)?,
        replay_lsn: None,
        segment_size: field("Bytes per WAL segment")?.parse().ok()?,
        url: None,
    })
}

/// Whether a replica holds WAL the leader never had, read in this order: the replica's state
/// (given, read first), then the leader's position (read here, last: a healthy replica read
/// after the leader could look ahead of it). Two tests, either one names it:
/// - its last checkpoint must be in the leader's WAL on the same timeline (a checkpoint record
///   with its redo pointer and timeline at that LSN; [`checkpoint_diverged`]);
/// - past the fork point of the leader's timeline, the record its replay ended with must end at
///   the same LSN in the leader's WAL ([`replay_diverged`]): a fork after its last checkpoint
///   (a member frozen within a second of its promotion writes no checkpoint on its new
///   timeline, and both members' history files for that ID are then the same).
///
/// `Ok(Some(evidence))`: diverged; `Ok(None)`: it is not, as far as both could tell;
/// `Err`: cannot tell.
pub async fn diverged(
    leader_url: &str,
    password: &str,
    r: &ReplicaState,
) -> Result<Option<String>, String> {
    let l = LeaderWal::read(leader_url, password).await?;
    if let Some(evidence) = checkpoint_diverged(leader_url, password, r, &l).await? {
        return Ok(Some(evidence));
    }
    match replay_diverged(leader_url, password, r, &l).await {
        Err(ReplayCheck::NoWalinspect) => Ok(None),
        Err(ReplayCheck::Failed(e)) => Err(e),
        Ok(found) => Ok(found),
    }
}

/// The doctor's reading of [`diverged`]: the same, but a leader without pg_walinspect is said
/// (the replay test was not made), not passed over.
pub async fn diverged_or_unchecked(
    leader_url: &str,
    password: &str,
    r: &ReplicaState,
) -> (Result<Option<String>, String>, Option<String>) {
    let l = match LeaderWal::read(leader_url, password).await {
        Ok(l) => l,
        Err(e) => return (Err(e), None),
    };
    match checkpoint_diverged(leader_url, password, r, &l).await {
        Ok(Some(evidence)) => return (Ok(Some(evidence)), None),
        Ok(None) => {}
        Err(e) => return (Err(e), None),
    }
    match replay_diverged(leader_url, password, r, &l).await {
        Ok(found) => (Ok(found), None),
        Err(ReplayCheck::NoWalinspect) => (
            Ok(None),
            Some(
                "a fork after the replica's last checkpoint: pg_walinspect is not installed on the leader (CREATE EXTENSION pg_walinspect; the lab makes it at bootstrap)"
                    .into(),
            ),
        ),
        Err(ReplayCheck::Failed(e)) => (Err(e), None),
    }
}

/// The leader's WAL as the replicas are compared with it.
pub struct LeaderWal {
    /// Its flushed position (what a replica can have received at most).
    pub flush_lsn: u64,
    pub tli: u32,
    /// Where its timeline forked off the one before (its history file's last switch point;
    /// 0 on timeline 1).
    pub fork_lsn: u64,
    /// Whether pg_walinspect is installed in the database the doctor connects to.
    pub walinspect: bool,
}

impl LeaderWal {
    pub async fn read(leader_url: &str, password: &str) -> Result<Self, String> {
        let rows = query(
            leader_url,
            password,
            "SELECT pg_current_wal_flush_lsn()::text, \
               ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int::text, \
               (SELECT count(*) FROM pg_extension WHERE extname = 'pg_walinspect')::text",
        )
        .await?;
        let cell = |c: usize| rows.first().and_then(|r| r.get(c).cloned().flatten());
        let flush_lsn = cell(0)
            .and_then(|s| parse_lsn(&s))
            .ok_or("the leader's position could not be read")?;
        let tli: u32 = cell(1)
            .and_then(|s| s.parse().ok())
            .ok_or("the leader's timeline could not be read")?;
        let fork_lsn = if tli > 1 {
            let history = query(
                leader_url,
                password,
                &format!("SELECT pg_read_file('pg_wal/{tli:08X}.history')"),
            )
            .await
            .map_err(|e| format!("the leader's {tli:08X}.history: {e}"))?;
            let text = history
                .first()
                .and_then(|r| r.first().cloned().flatten())
                .unwrap_or_default();
            fork_of(&text).ok_or(format!(
                "the leader's {tli:08X}.history names no switch point"
            ))?
        } else {
            0
        };
        Ok(Self {
            flush_lsn,
            tli,
            fork_lsn,
            walinspect: cell(2).as_deref() == Some("1"),
        })
    }
}

/// The last switch point in a timeline history file ("2\t0/3365BA8\tno recovery target").
fn fork_of(history: &str) -> Option<u64> {
    history
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .filter_map(|l| parse_lsn(l.split_whitespace().nth(1)?))
        .next_back()
}

/// Why the replay test could not be made.
enum ReplayCheck {
    NoWalinspect,
    Failed(String),
}

/// How long a replica that looks stuck on the old timeline is watched before it is called
/// diverged: a healthy one whose WAL receiver is only reconnecting (it retries every
/// `wal_retrieve_retry_interval`, 5 s by default) streams the leader's timeline again, or
/// replays further, within it. Its last restartpoint can stay on the old timeline for a whole
/// `checkpoint_timeout` after it followed the new one.
const RECONNECT_WATCH: Duration = Duration::from_secs(7);

/// Whether the replica, read again every second for [`RECONNECT_WATCH`], streams the leader's
/// timeline (replay moving alone proves nothing: it may replay its own WAL on the old
/// timeline). A replica that cannot be read again is not cleared.
async fn reconnects(
    r: &ReplicaState,
    password: &str,
    receiving: impl Fn(&ReplicaState) -> bool,
) -> bool {
    let Some(url) = &r.url else { return false };
    let until = std::time::Instant::now() + RECONNECT_WATCH;
    while std::time::Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let Ok(again) = replica_state(url, password).await else {
            continue;
        };
        if receiving(&again) {
            return true;
        }
    }
    false
}

/// Past the leader's fork point, the replica's last replayed record must end where one of the
/// leader's records ends (pg_walinspect on the leader, the record before that LSN). A replica
/// short of the fork point is not judged here (Patroni's own pg_rewind case is the timelines'
/// business, and its WAL before the fork is the leader's by definition).
async fn replay_diverged(
    leader_url: &str,
    password: &str,
    r: &ReplicaState,
    l: &LeaderWal,
) -> Result<Option<String>, ReplayCheck> {
    let Some(replay) = r.replay_lsn else {
        return Ok(None);
    };
    if replay <= l.fork_lsn {
        return Ok(None);
    }
    let at = format!(
        "its replay ended at {}, past the fork point {} of the leader's timeline {}",
        lsn_text(replay),
        lsn_text(l.fork_lsn),
        l.tli
    );
    // Still on the timeline the leader's forked from, replayed past the fork, and not
    // receiving the leader's timeline: PostgreSQL cannot switch it over ("forked off ... before
    // the current recovery point"); only a pg_rewind mends it (seen: the soak's storm, seed 11,
    // "record with incorrect prev-link" every 5 s, its last record ending where one of the
    // leader's happened to end).
    let receiving = |r: &ReplicaState| {
        r.receiver.as_deref() == Some("streaming") && r.received_tli == Some(l.tli)
    };
    if r.checkpoint_tli + 1 == l.tli && !receiving(r) && !reconnects(r, password, receiving).await {
        return Ok(Some(format!(
            "{at}, still on timeline {} and not receiving timeline {}: it replayed its own WAL past the fork (a pg_rewind or a reinit mends it)",
            r.checkpoint_tli, l.tli
        )));
    }
    if replay > l.flush_lsn {
        return Ok(Some(format!(
            "{at}, beyond the leader's WAL (flushed up to {})",
            lsn_text(l.flush_lsn)
        )));
    }
    if !l.walinspect {
        return Err(ReplayCheck::NoWalinspect);
    }
    // The records that start in the 64 KiB before the replay position (none is that long
    // here): the last one must end at it. Where no record can be found from there (the rest
    // of a segment after a WAL switch is empty), from the replica's last restartpoint's redo
    // pointer, a record boundary short of it.
    let near = replay.saturating_sub(REPLAY_LOOKBACK).max(l.fork_lsn);
    let mut starts = lookup_starts(replay, near, r.segment_size);
    if r.redo_lsn > l.fork_lsn && r.redo_lsn < replay && !starts.contains(&r.redo_lsn) {
        // The closer first: fewer records to read.
        let at = starts
            .iter()
            .position(|s| r.redo_lsn > *s)
            .unwrap_or(starts.len());
        starts.insert(at, r.redo_lsn);
    }
    let mut last_error = String::new();
    let mut found = None;
    for from in starts {
        let sql = format!(
            "SELECT start_lsn::text, end_lsn::text, resource_manager, record_type \
             FROM pg_get_wal_records_info('{}', '{}') ORDER BY start_lsn DESC LIMIT 1",
            lsn_text(from),
            lsn_text(replay)
        );
        match query(leader_url, password, &sql).await {
            Ok(rows) if !rows.is_empty() => {
                found = Some(rows);
                break;
            }
            Ok(_) => {
                last_error = format!(
                    "no record of the leader's WAL starts between {} and {}",
                    lsn_text(from),
                    lsn_text(replay)
                )
            }
            Err(e) => {
                last_error = format!(
                    "the leader's WAL from {} to {}: {e}",
                    lsn_text(from),
                    lsn_text(replay)
                )
            }
        }
    }
    let rows = found.ok_or(ReplayCheck::Failed(last_error))?;
    let cell = |c: usize| rows.first().and_then(|r| r.get(c).cloned().flatten());
    let (Some(start), Some(end)) = (cell(0), cell(1)) else {
        return Err(ReplayCheck::Failed(format!(
            "the leader's record before {} could not be read",
            lsn_text(replay)
        )));
    };
    if parse_lsn(&end) == Some(replay) {
        return Ok(None);
    }
    Ok(Some(format!(
        "{at}; no record of the leader's ends there (its record from {start} ends at {end}: {} {})",
        cell(2).unwrap_or_default(),
        cell(3).unwrap_or_default()
    )))
}

/// How far back from a replica's replay position its last record is looked for.
const REPLAY_LOOKBACK: u64 = 64 * 1024;

/// Where to look for the record a replay position ends, closest first: the start of its own
/// WAL segment when that is after `near` — a replay just past a WAL switch (a base backup, as
/// a reinit takes, ends with one) has the rest of the previous segment empty, and the leader's
/// WAL read from there shows the switch record as the last one —, then `near` (a record that
/// began in the previous segment and ends in this one).
fn lookup_starts(replay: u64, near: u64, segment_size: u64) -> Vec<u64> {
    let segment_start = replay - replay % segment_size.max(1);
    if segment_start > near && segment_start < replay {
        vec![segment_start, near]
    } else {
        vec![near]
    }
}

/// The replica's last checkpoint must be in the leader's WAL on the same timeline: the
/// leader's record at that LSN must be a checkpoint record (resource manager XLOG) whose redo
/// pointer and timeline are the replica's. Its own file cannot be compared: its WAL receiver
/// overwrites it with the leader's WAL while replay stays stuck on its own history.
/// `Ok(Some(evidence))`: not in the leader's WAL (two timelines with one ID); `Ok(None)`: it
/// is, or the timelines differ (Patroni's own pg_rewind case); `Err`: cannot tell.
async fn checkpoint_diverged(
    leader_url: &str,
    password: &str,
    r: &ReplicaState,
    l: &LeaderWal,
) -> Result<Option<String>, String> {
    let (leader_tli, leader_lsn) = (l.tli, l.flush_lsn);
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
    fn a_replay_just_past_a_wal_switch_is_looked_up_from_its_own_segment_first() {
        let seg = 16 << 20;
        // 0/10001B40: 6976 bytes into segment 0x10; the 64 KiB before reach back into 0x0F,
        // whose rest after a switch is empty.
        let replay = 0x1000_1B40;
        let near = replay - REPLAY_LOOKBACK;
        assert_eq!(lookup_starts(replay, near, seg), vec![0x1000_0000, near]);
        // Deep in a segment: the 64 KiB before are in it.
        let replay = 0x1080_0000;
        let near = replay - REPLAY_LOOKBACK;
        assert_eq!(lookup_starts(replay, near, seg), vec![near]);
        // The fork point after the segment's start: from there only.
        assert_eq!(
            lookup_starts(0x1000_1B40, 0x1000_1000, seg),
            vec![0x1000_1000]
        );
    }

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

    #[test]
    fn a_history_file_gives_its_last_switch_point() {
        assert_eq!(
            fork_of(
                "1\t0/3000000\tno recovery target specified\n\n2\t0/3365BA8\tno recovery target specified\n"
            ),
            Some(0x336_5BA8)
        );
        assert_eq!(fork_of(""), None);
    }
}
