//! The benchmarks' arithmetic: what `scripts/bench-*.sh` collect (scenario reports, pgbench
//! and probe rounds, CPU ticks) turned into their tables — per round, then medians and ratios.
//! The scripts only run the programs and pass the figures on (`patroni-lab bench …`).

use std::path::Path;

use patroni_lab_scenario::report::Spread;

/// A figure the bench could not read: one line saying which and why.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BenchInput(pub String);

fn median(v: &[f64]) -> Option<f64> {
    let values: Vec<Option<f64>> = v.iter().map(|x| Some(*x)).collect();
    Spread::of("", &values).median
}

fn p95(v: &[f64]) -> Option<f64> {
    let values: Vec<Option<f64>> = v.iter().map(|x| Some(*x)).collect();
    Spread::of("", &values).p95
}

fn ms(v: Option<f64>) -> String {
    v.map_or("not measured".into(), |x| format!("{x:.0}"))
}

/// One scenario set's figures for the paused-switchover table.
#[derive(Debug, Default, PartialEq)]
pub struct SetFigures {
    /// Each run's longest window, ms.
    pub windows_ms: Vec<f64>,
    /// Each run's longest stall, ms (0 for a run with none: a stall not seen is a measured 0,
    /// the probe watched for it throughout).
    pub stalls_ms: Vec<f64>,
    pub failed: u64,
    pub in_doubt: u64,
}

/// The figures of one `scenario run --json` report.
pub fn set_figures(json: &str, what: &str) -> Result<SetFigures, BenchInput> {
    let bad = |why: &str| BenchInput(format!("{what}: {why}"));
    let v: serde_json::Value =
        serde_json::from_str(json).map_err(|e| bad(&format!("not a scenario report: {e}")))?;
    let runs = v["runs"]
        .as_array()
        .ok_or_else(|| bad("no \"runs\" in it: not a scenario report"))?;
    let mut f = SetFigures::default();
    for (i, run) in runs.iter().enumerate() {
        let probe = &run["probe"];
        let window = probe["longest_window_ms"]
            .as_f64()
            .ok_or_else(|| bad(&format!("run {} has no longest_window_ms", i + 1)))?;
        let stalls = probe["stalls"]
            .as_array()
            .ok_or_else(|| bad(&format!("run {} has no stalls list", i + 1)))?;
        let stall = stalls
            .iter()
            .filter_map(|s| s["duration_ms"].as_f64())
            .fold(0.0, f64::max);
        let count = |k: &str| probe["totals"][k].as_u64();
        let (Some(failed), Some(in_doubt)) = (count("failed"), count("in_doubt")) else {
            return Err(bad(&format!("run {} has no failed/in_doubt totals", i + 1)));
        };
        f.windows_ms.push(window);
        f.stalls_ms.push(stall);
        f.failed += failed;
        f.in_doubt += in_doubt;
    }
    Ok(f)
}

/// The paused-switchover table: per probe mode, the plain switchover's window and the paused
/// one's stall (median / p95), and their failed and in-doubt writes. Reads
/// `DIR/bench-{switchover,switchover-paused}-{per-tx,persistent}.json`.
pub fn paused_switchover(dir: &Path, runs: u32) -> Result<String, BenchInput> {
    let mut out = format!(
        "paused vs plain switchover, {runs} runs each, 4 clients (this machine)\n\
         {:<11} {:>27} {:>22} {:>27} {:>14} {:>16}\n",
        "mode",
        "plain window median/p95 ms",
        "plain failed+in doubt",
        "paused stall median/p95 ms",
        "paused failed",
        "paused in doubt"
    );
    for mode in ["per-tx", "persistent"] {
        let load = |scenario: &str| {
            let path = dir.join(format!("bench-{scenario}-{mode}.json"));
            let text = std::fs::read_to_string(&path)
                .map_err(|e| BenchInput(format!("cannot read {}: {e}", path.display())))?;
            set_figures(&text, &path.display().to_string())
        };
        let (plain, paused) = (load("switchover")?, load("switchover-paused")?);
        out += &format!(
            "{mode:<11} {:>15} / {:<9} {:>22} {:>15} / {:<9} {:>14} {:>16}\n",
            ms(median(&plain.windows_ms)),
            ms(p95(&plain.windows_ms)),
            plain.failed + plain.in_doubt,
            ms(median(&paused.stalls_ms)),
            ms(p95(&paused.stalls_ms)),
            paused.failed,
            paused.in_doubt
        );
    }
    Ok(out)
}

/// Splits a round's "N|order|a b|c d|…" as the scripts print it: the round, its order, and
/// each group's numbers (`widths` numbers per group).
fn round(row: &str, widths: &[usize]) -> Result<(String, String, Vec<Vec<f64>>), BenchInput> {
    let bad = |why: String| BenchInput(format!("round \"{row}\": {why}"));
    let parts: Vec<&str> = row.split('|').collect();
    if parts.len() != 2 + widths.len() {
        return Err(bad(format!(
            "{} parts separated by |, expected {}",
            parts.len(),
            2 + widths.len()
        )));
    }
    let mut groups = Vec::new();
    for (part, &n) in parts[2..].iter().zip(widths) {
        let nums: Vec<f64> = part
            .split_whitespace()
            .map(|x| {
                x.parse::<f64>()
                    .map_err(|_| bad(format!("\"{x}\" is not a number")))
            })
            .collect::<Result<_, _>>()?;
        if nums.len() != n || nums.iter().any(|x| !x.is_finite() || *x < 0.0) {
            return Err(bad(format!(
                "\"{part}\" should be {n} non-negative numbers"
            )));
        }
        groups.push(nums);
    }
    Ok((parts[0].to_string(), parts[1].to_string(), groups))
}

/// What one login costs PgBouncer. Each round: "N|order|secret_tps secret_ticks|plain_tps
/// plain_ticks|direct_tps direct_ticks" (ticks of PgBouncer's CPU, user + system, at `hz`).
pub fn login_cost(
    clients: u32,
    seconds: f64,
    hz: f64,
    leader_port: u16,
    rounds: &[String],
) -> Result<String, BenchInput> {
    if rounds.is_empty() || seconds <= 0.0 || hz <= 0.0 {
        return Err(BenchInput(
            "login-cost needs rounds, and seconds and hz above 0".into(),
        ));
    }
    let per_login_ms = |tps: f64, ticks: f64| 1000.0 * ticks / hz / (tps * seconds);
    let mut out = format!(
        "pgbench -C, SELECT 1, {clients} clients, {seconds:.0} s each; direct = the leader on 127.0.0.1:{leader_port}\n"
    );
    let (mut secret, mut plain, mut direct, mut cpu_s, mut cpu_p) =
        (vec![], vec![], vec![], vec![], vec![]);
    for row in rounds {
        let (n, order, g) = round(row, &[2, 2, 2])?;
        if g.iter().any(|x| x[0] == 0.0) {
            return Err(BenchInput(format!("round \"{row}\": a throughput of 0")));
        }
        let (cs, cp) = (
            per_login_ms(g[0][0], g[0][1]),
            per_login_ms(g[1][0], g[1][1]),
        );
        out += &format!(
            "  round {n} ({order}): 6432 secret {:6.1}/s ({cs:.2} ms PgBouncer CPU/login)   \
             6432 plain {:6.1}/s ({cp:.2} ms)   direct {:6.1}/s\n",
            g[0][0], g[1][0], g[2][0]
        );
        secret.push(g[0][0]);
        plain.push(g[1][0]);
        direct.push(g[2][0]);
        cpu_s.push(cs);
        cpu_p.push(cp);
    }
    let m = |v: &[f64]| median(v).unwrap_or(f64::NAN);
    let (ms_, mp) = (m(&cpu_s), m(&cpu_p));
    out += &format!(
        "median over {} rounds: PgBouncer CPU per login {ms_:.2} ms with the secret, {mp:.2} ms \
         with the password ({:.1}x); logins/s through 6432 {:.0} vs {:.0}; direct {:.0} \
         (6432/direct {:.2})\n",
        rounds.len(),
        mp / ms_,
        m(&secret),
        m(&plain),
        m(&direct),
        m(&secret) / m(&direct)
    );
    Ok(out)
}

/// Is the probe the bottleneck? Each round: "N|order|pgbench_tps user_s sys_s|probe_tps
/// user_s sys_s" (the CPU seconds of each program's process over the round).
pub fn probe_vs_pgbench(
    port: u16,
    clients: u32,
    seconds: f64,
    rounds: &[String],
) -> Result<String, BenchInput> {
    if rounds.is_empty() || seconds <= 0.0 {
        return Err(BenchInput(
            "probe-vs-pgbench needs rounds, and seconds above 0".into(),
        ));
    }
    let mut out = format!(
        "endpoint 127.0.0.1:{port}, {clients} clients, {seconds:.0} s each, new connection per \
         transaction, sslmode=disable for both\n"
    );
    let (mut ratios, mut cpu_ratios) = (vec![], vec![]);
    for row in rounds {
        let (n, order, g) = round(row, &[3, 3])?;
        let (pg_tps, pr_tps) = (g[0][0], g[1][0]);
        if pg_tps == 0.0 || pr_tps == 0.0 {
            return Err(BenchInput(format!("round \"{row}\": a throughput of 0")));
        }
        let (pg_cpu, pr_cpu) = (g[0][1] + g[0][2], g[1][1] + g[1][2]);
        let ratio = pr_tps / pg_tps;
        let cpu_ratio = (pr_cpu / pr_tps) / (pg_cpu / pg_tps);
        ratios.push(ratio);
        cpu_ratios.push(cpu_ratio);
        out += &format!(
            "  round {n} ({order}): pgbench -C {pg_tps:7.1} tx/s ({:.2} ms CPU/tx)   probe \
             {pr_tps:7.1} tx/s ({:.2} ms CPU/tx)   ratio {ratio:.2}\n",
            1000.0 * pg_cpu / (pg_tps * seconds),
            1000.0 * pr_cpu / (pr_tps * seconds)
        );
    }
    out += &format!(
        "median ratio probe/pgbench over {} rounds: throughput {:.2}, CPU per tx {:.2}\n",
        ratios.len(),
        median(&ratios).unwrap_or(f64::NAN),
        median(&cpu_ratios).unwrap_or(f64::NAN)
    );
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report(runs: &[(f64, &[f64], u64, u64)]) -> String {
        let runs: Vec<serde_json::Value> = runs
            .iter()
            .map(|(w, stalls, failed, in_doubt)| {
                serde_json::json!({"probe": {
                    "longest_window_ms": w,
                    "stalls": stalls.iter().map(|d| serde_json::json!({"duration_ms": d})).collect::<Vec<_>>(),
                    "totals": {"failed": failed, "in_doubt": in_doubt},
                }})
            })
            .collect();
        serde_json::json!({ "runs": runs }).to_string()
    }

    #[test]
    fn a_sets_figures_are_each_runs_longest_and_the_summed_errors() {
        let f = set_figures(
            &report(&[(2100.0, &[300.0, 900.0], 2, 1), (2300.0, &[], 0, 0)]),
            "x",
        )
        .unwrap();
        assert_eq!(f.windows_ms, vec![2100.0, 2300.0]);
        assert_eq!(f.stalls_ms, vec![900.0, 0.0]);
        assert_eq!((f.failed, f.in_doubt), (2, 1));
        let e = set_figures("{\"runs\": [{}]}", "r.json")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("r.json: run 1 has no longest_window_ms"),
            "{e}"
        );
    }

    #[test]
    fn the_paused_switchover_table_reads_the_four_reports() {
        let dir = std::env::temp_dir().join(format!("bench-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for mode in ["per-tx", "persistent"] {
            std::fs::write(
                dir.join(format!("bench-switchover-{mode}.json")),
                report(&[
                    (2000.0, &[], 3, 1),
                    (2200.0, &[], 0, 0),
                    (2400.0, &[], 0, 0),
                ]),
            )
            .unwrap();
        }
        let missing = paused_switchover(&dir, 3).unwrap_err().to_string();
        assert!(
            missing.contains("bench-switchover-paused-per-tx.json"),
            "{missing}"
        );
        for mode in ["per-tx", "persistent"] {
            std::fs::write(
                dir.join(format!("bench-switchover-paused-{mode}.json")),
                report(&[
                    (0.0, &[500.0], 0, 0),
                    (0.0, &[700.0], 0, 2),
                    (0.0, &[600.0], 0, 0),
                ]),
            )
            .unwrap();
        }
        let t = paused_switchover(&dir, 3).unwrap();
        let per_tx = t.lines().find(|l| l.starts_with("per-tx")).unwrap();
        let cols: Vec<&str> = per_tx.split_whitespace().collect();
        // mode, median / p95 window, failed+in doubt, median / p95 stall, failed, in doubt
        assert_eq!(
            cols,
            [
                "per-tx", "2200", "/", "2400", "4", "600", "/", "700", "0", "2"
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn login_cost_is_cpu_ticks_over_logins() {
        // 100 ticks at 100 Hz = 1 s of CPU over 200/s * 10 s = 2000 logins: 0.5 ms each.
        let t = login_cost(
            4,
            10.0,
            100.0,
            15432,
            &["1|secret first|200 100|50 400|400 0".into()],
        )
        .unwrap();
        assert!(
            t.contains("6432 secret  200.0/s (0.50 ms PgBouncer CPU/login)"),
            "{t}"
        );
        assert!(t.contains("6432 plain   50.0/s (8.00 ms)"), "{t}");
        assert!(t.contains("(16.0x)"), "{t}");
        assert!(t.contains("(6432/direct 0.50)"), "{t}");
    }

    #[test]
    fn probe_vs_pgbench_takes_median_ratios() {
        let rounds: Vec<String> = vec![
            "1|pgbench first|100 1 1|90 0.5 0.5".into(),
            "2|probe first|100 1 1|110 1 1".into(),
            "3|pgbench first|100 1 1|100 1 1".into(),
        ];
        let t = probe_vs_pgbench(5432, 4, 20.0, &rounds).unwrap();
        assert!(t.contains("ratio 0.90"), "{t}");
        assert!(
            t.ends_with("over 3 rounds: throughput 1.00, CPU per tx 0.91\n"),
            "{t}"
        );
    }

    #[test]
    fn a_bad_round_is_named_in_one_line() {
        for (row, says) in [
            ("1|x|100 1|90 0.5 0.5", "should be 3 non-negative numbers"),
            ("1|x|100 1 a|90 0.5 0.5", "\"a\" is not a number"),
            ("1|x|100 1 1", "3 parts separated by |, expected 4"),
            ("1|x|0 1 1|90 0.5 0.5", "a throughput of 0"),
        ] {
            let e = probe_vs_pgbench(5432, 4, 20.0, &[row.into()])
                .unwrap_err()
                .to_string();
            assert!(e.contains(says) && !e.contains('\n'), "{row}: {e}");
        }
    }
}
