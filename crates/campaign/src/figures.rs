//! The current headline figures, said once: each dated measurement file
//! (`docs/measurements/YYYY-MM-DD-*.md`) may carry a `## Headline figures` table (event,
//! profile, what clients could not do, lost, runs); for each event under each profile the
//! latest file's row is current. `patroni-lab bench figures` prints them as one table, which
//! README, SCENARIOS.md and PROFILES.md include (a test fails when a copy drifts).

use std::collections::BTreeMap;
use std::path::Path;

/// The heading a dated file puts its figures under.
pub const HEADING: &str = "## Headline figures";

/// The profiles in the order the table shows them; others follow by name.
const PROFILE_ORDER: &[&str] = &["seed", "default", "fast", "sync", "failsafe"];

/// One figure: an event under a profile, as a dated file gives it.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    pub event: String,
    pub profile: String,
    pub window: String,
    pub lost: String,
    pub runs: String,
    /// The file it is from (its name starts with the date).
    pub file: String,
}

/// The figures one file gives under [`HEADING`] (a line of its own); `Err` names a row that is
/// not five cells.
pub fn parse(file: &str, text: &str) -> Result<Vec<Figure>, String> {
    let mut lines = text.lines().map(str::trim_end);
    if !lines.any(|l| l == HEADING) {
        return Ok(Vec::new());
    }
    // The first table under the heading (prose may come first; the next heading ends it).
    let rows = lines
        .take_while(|l| !l.starts_with('#'))
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2);
    let mut out = Vec::new();
    for (i, row) in rows.enumerate() {
        let cells: Vec<&str> = row
            .trim()
            .trim_matches('|')
            .split('|')
            .map(str::trim)
            .collect();
        let [event, profile, window, lost, runs] = cells[..] else {
            return Err(format!(
                "{file}: figure row {} has {} cells, not 5 (event | profile | clients could not write | lost | runs)",
                i + 1,
                cells.len()
            ));
        };
        out.push(Figure {
            event: event.trim_matches('`').to_string(),
            profile: profile.trim_matches('`').to_string(),
            window: window.to_string(),
            lost: lost.to_string(),
            runs: runs.to_string(),
            file: file.to_string(),
        });
    }
    Ok(out)
}

/// The current figure of each event under each profile: the latest file's (files compared by
/// the date their name starts with; two files of one date giving the same figure is an error,
/// for neither is later).
pub fn current(files: &[(String, String)]) -> Result<Vec<Figure>, String> {
    let mut sorted: Vec<&(String, String)> = files.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let mut latest: BTreeMap<(String, String), Figure> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for (name, text) in sorted.iter().rev() {
        for f in parse(name, text)? {
            if !order.contains(&f.event) {
                order.push(f.event.clone());
            }
            let key = (f.event.clone(), f.profile.clone());
            if let Some(kept) = latest.get(&key) {
                if kept.file.get(..10) == f.file.get(..10) {
                    return Err(format!(
                        "{} and {} both give {} under {} on one date: keep it in one",
                        kept.file, f.file, f.event, f.profile
                    ));
                }
                continue;
            }
            latest.insert(key, f);
        }
    }
    let rank = |p: &str| {
        PROFILE_ORDER
            .iter()
            .position(|x| *x == p)
            .unwrap_or(PROFILE_ORDER.len())
    };
    let mut all: Vec<Figure> = latest.into_values().collect();
    all.sort_by(|a, b| {
        let ea = order.iter().position(|e| *e == a.event);
        let eb = order.iter().position(|e| *e == b.event);
        (ea, rank(&a.profile), &a.profile).cmp(&(eb, rank(&b.profile), &b.profile))
    });
    Ok(all)
}

/// The dated files of `dir` (`YYYY-MM-DD-*.md`) with their text.
pub fn read_dir(dir: &Path) -> Result<Vec<(String, String)>, String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    let mut out = Vec::new();
    for e in entries {
        let path = e.map_err(|e| e.to_string())?.path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let dated = name.len() > 11
            && name.as_bytes()[..10].iter().enumerate().all(|(i, b)| {
                if i == 4 || i == 7 {
                    *b == b'-'
                } else {
                    b.is_ascii_digit()
                }
            });
        if dated && name.ends_with(".md") {
            let text = std::fs::read_to_string(&path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            out.push((name, text));
        }
    }
    Ok(out)
}

/// The table: one row per event and profile, each linked to the file it is from (`link_dir`:
/// the files' folder as the including documents reach it).
pub fn markdown(figures: &[Figure], link_dir: &str) -> String {
    let mut out = String::from(
        "| event | profile | clients could not write | lost | runs | measured |\n|---|---|---|---|---|---|\n",
    );
    for f in figures {
        let date = f.file.get(..10).unwrap_or(&f.file);
        out.push_str(&format!(
            "| {} | `{}` | {} | {} | {} | [{date}]({link_dir}/{}) |\n",
            f.event, f.profile, f.window, f.lost, f.runs, f.file
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(name: &str, rows: &[&str]) -> (String, String) {
        let mut text = format!(
            "# A campaign\n\nprose\n\n{HEADING}\n\nWhat the figures are.\n\n| event | profile | clients could not write | lost | runs |\n|---|---|---|---|---|\n"
        );
        for r in rows {
            text.push_str(r);
            text.push('\n');
        }
        text.push_str("\nmore prose\n| not | a figure |\n");
        (name.to_string(), text)
    }

    #[test]
    fn the_latest_file_gives_each_events_figure_under_each_profile() {
        let files = vec![
            file(
                "2026-12-04-b.md",
                &["| switchover | default | 1.5 s | 0 | 5 |"],
            ),
            file(
                "2026-11-29-a.md",
                &[
                    "| switchover | default | 1.6 s | 0 | 3 |",
                    "| switchover | fast | 0.0 s | 0 | 3 |",
                    "| kill-leader | `seed` | 30.6 s | 0 | 3 |",
                ],
            ),
        ];
        let now = current(&files).unwrap();
        let said: Vec<(&str, &str, &str, &str)> = now
            .iter()
            .map(|f| {
                (
                    f.event.as_str(),
                    f.profile.as_str(),
                    f.window.as_str(),
                    &f.file[..10],
                )
            })
            .collect();
        assert_eq!(
            said,
            [
                ("switchover", "default", "1.5 s", "2026-12-04"),
                ("switchover", "fast", "0.0 s", "2026-11-29"),
                ("kill-leader", "seed", "30.6 s", "2026-11-29"),
            ]
        );
        let table = markdown(&now, "docs/measurements");
        assert!(table.contains(
            "| switchover | `default` | 1.5 s | 0 | 5 | [2026-12-04](docs/measurements/2026-12-04-b.md) |"
        ));
        assert_eq!(table.lines().count(), 2 + 3);
    }

    #[test]
    fn one_figure_in_two_files_of_one_date_is_refused() {
        let files = vec![
            file(
                "2026-12-04-a.md",
                &["| switchover | default | 1.5 s | 0 | 5 |"],
            ),
            file(
                "2026-12-04-b.md",
                &["| switchover | default | 1.6 s | 0 | 5 |"],
            ),
        ];
        let e = current(&files).unwrap_err();
        assert!(e.contains("both give switchover under default"), "{e}");
    }

    #[test]
    fn a_deeper_heading_of_the_same_words_is_not_it() {
        let (name, text) = file(
            "2026-12-04-a.md",
            &["| switchover | default | 1.5 s | 0 | 5 |"],
        );
        let deeper = text.replace(HEADING, &format!("#{HEADING}"));
        assert!(current(&[(name.clone(), deeper)]).unwrap().is_empty());
        let crlf = text.replace('\n', "\r\n");
        assert_eq!(current(&[(name, crlf)]).unwrap().len(), 1);
    }

    #[test]
    fn a_row_that_is_not_five_cells_is_named() {
        let files = vec![file(
            "2026-12-04-b.md",
            &["| switchover | default | 1.5 s |"],
        )];
        let e = current(&files).unwrap_err();
        assert!(
            e.contains("2026-12-04-b.md: figure row 1 has 3 cells"),
            "{e}"
        );
    }

    #[test]
    fn a_file_without_the_heading_gives_none() {
        let files = vec![
            ("2026-12-04-x.md".to_string(), "# nothing\n".to_string()),
            (
                "2026-12-04-y.md".to_string(),
                format!(
                    "{HEADING}\n\nnone yet\n\n## Next\n\n| a | b | c | d | e |\n|-|-|-|-|-|\n| 1 | 2 | 3 | 4 | 5 |\n"
                ),
            ),
        ];
        assert!(current(&files).unwrap().is_empty());
    }
}
