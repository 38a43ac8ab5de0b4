//! The SQL the probe sends: its table, the write and the read, and the columns every
//! transaction returns to say which server (address and timeline) answered it.

use crate::record::ServerId;
use patroni_lab_common::unix_us;

/// The probe's table: one row per write, keyed by run, client and sequence number.
pub fn table_ddl(table: &str) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {table} (run_id text NOT NULL, client_id int NOT NULL, \
         seq bigint NOT NULL, client_time timestamptz, server_time timestamptz DEFAULT now(), \
         PRIMARY KEY (run_id, client_id, seq))"
    )
}

/// The columns every transaction returns: who served it, and where its WAL stood (in bytes
/// from 0/0): a primary's current position (a write's, before its own commit record), a
/// replica's replayed one (what a read on it can see).
pub const SERVER_COLUMNS: &str = "host(inet_server_addr()), inet_server_port(), pg_is_in_recovery(), \
     CASE WHEN pg_is_in_recovery() THEN NULL \
     ELSE ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int END, \
     pg_wal_lsn_diff(CASE WHEN pg_is_in_recovery() THEN pg_last_wal_replay_lsn() \
     ELSE pg_current_wal_lsn() END, '0/0')::bigint";
/// How many columns [`SERVER_COLUMNS`] is: a query's own columns come after them.
pub const SERVER_COLUMN_COUNT: usize = 5;

pub(crate) fn write_sql(table: &str, run_id: &str, client: u32, seq: u64) -> String {
    format!(
        "INSERT INTO {table} (run_id, client_id, seq, client_time) \
         VALUES ('{run_id}', {client}, {seq}, to_timestamp({})) RETURNING {SERVER_COLUMNS}",
        unix_us() as f64 / 1e6
    )
}

pub(crate) fn read_sql(table: &str, run_id: &str, client: u32) -> String {
    format!(
        "SELECT {SERVER_COLUMNS}, (SELECT max(seq) FROM {table} WHERE run_id = '{run_id}' AND client_id = {client})"
    )
}

/// The newest of the client's rows a read saw (its column after the server's; 0 when it saw
/// none).
pub(crate) fn seen_seq(rows: &[Vec<Option<String>>]) -> u64 {
    rows.first()
        .and_then(|r| r.get(SERVER_COLUMN_COUNT).cloned().flatten())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// The server's WAL position the first row gives (the last server column), bytes from 0/0.
pub(crate) fn wal_position(rows: &[Vec<Option<String>>]) -> Option<u64> {
    rows.first()
        .and_then(|r| r.get(SERVER_COLUMN_COUNT - 1).cloned().flatten())
        .and_then(|v| v.parse().ok())
}

/// Reads the server columns of the first row.
pub(crate) fn served_by(rows: &[Vec<Option<String>>]) -> (Option<ServerId>, Option<bool>) {
    let Some(row) = rows.first() else {
        return (None, None);
    };
    let cell = |i: usize| row.get(i).cloned().flatten();
    let addr = match (cell(0), cell(1)) {
        (Some(a), Some(p)) => format!("{a}:{p}"),
        (Some(a), None) => a,
        _ => "local".into(),
    };
    let timeline = cell(3).and_then(|t| t.parse().ok());
    let in_recovery = cell(2).map(|v| v == "t" || v == "true");
    (Some(ServerId { addr, timeline }), in_recovery)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_column_count_is_the_columns_server_columns_has() {
        // Top-level commas: outside parentheses and quotes.
        let (mut depth, mut quoted, mut columns) = (0i32, false, 1);
        for c in SERVER_COLUMNS.chars() {
            match c {
                '\'' => quoted = !quoted,
                '(' if !quoted => depth += 1,
                ')' if !quoted => depth -= 1,
                ',' if !quoted && depth == 0 => columns += 1,
                _ => {}
            }
        }
        assert_eq!(columns, SERVER_COLUMN_COUNT);
    }

    #[test]
    fn server_columns_are_read() {
        let rows = vec![vec![
            Some("172.19.0.3".into()),
            Some("5432".into()),
            Some("f".into()),
            Some("2".into()),
        ]];
        let (server, rec) = served_by(&rows);
        assert_eq!(
            server,
            Some(ServerId {
                addr: "172.19.0.3:5432".into(),
                timeline: Some(2)
            })
        );
        assert_eq!(rec, Some(false));
    }
}
