//! The HTML reports in a real browser: headless Chromium from Debian's packages, in the
//! patroni-lab/browser image (`make browser`), so the host needs nothing. The probe's page, a
//! scenario's page and the matrix's page, each made by the real commands against the lab, load
//! with nothing on the console, and their chart and table are in the page as the browser built
//! it; the matrix is also drawn to a PNG.

use std::path::{Path, PathBuf};
use std::process::Command;

use patroni_lab_testkit::*;

const IMAGE: &str = "patroni-lab/browser:latest";

/// What the browser made of a page.
struct Rendered {
    /// The document after the browser parsed it (`--dump-dom`).
    dom: String,
    /// Every line the page wrote to the console (errors, uncaught exceptions, logs).
    console: Vec<String>,
}

/// A folder for pages the browser container can read and write (the same path on the host and,
/// under scripts/in-tools.sh, in the tools container).
fn pages_dir(test: &str) -> PathBuf {
    let dir = repo_root()
        .join("target")
        .join(format!("browser-test-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn caller() -> String {
    let id = |flag: &str| run_ok("id", &[flag]).trim().to_string();
    format!("{}:{}", id("-u"), id("-g"))
}

/// Opens `page` (in `dir`) in headless Chromium; `screenshot`: also draw it to this PNG in `dir`.
fn render(dir: &Path, page: &str, screenshot: Option<&str>) -> Rendered {
    assert!(
        run("docker", &["image", "inspect", IMAGE]).status.success(),
        "the browser image {IMAGE} is missing: run `make browser`"
    );
    let mount = format!("{}:/pages", dir.display());
    let mut args: Vec<String> = [
        "run",
        "--rm",
        "--network",
        "none",
        "--user",
        &caller(),
        "-v",
        &mount,
        IMAGE,
        "--enable-logging=stderr",
        "--v=0",
    ]
    .map(String::from)
    .to_vec();
    match screenshot {
        Some(png) => args.extend([
            "--window-size=1400,1000".to_string(),
            format!("--screenshot=/pages/{png}"),
        ]),
        None => args.push("--dump-dom".to_string()),
    }
    args.push(format!("file:///pages/{page}"));
    let out = Command::new("docker")
        .args(&args)
        .output()
        .expect("run docker");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "chromium on {page} failed:\n{stderr}");
    Rendered {
        dom: String::from_utf8_lossy(&out.stdout).into_owned(),
        // The page's own console lines: Chromium's own pages (`source: chrome://...`, such as
        // its "Slow network is detected" notice about its UI font) are not the page's.
        console: stderr
            .lines()
            .filter(|l| l.contains(":CONSOLE") && !l.contains("source: chrome://"))
            .map(str::to_string)
            .collect(),
    }
}

/// Runs patroni-lab with `args`; panics with its output when it fails.
fn patroni_lab(args: &[&str]) {
    let out = Command::new(bin())
        .args(args)
        .current_dir(repo_root())
        .env("POSTGRES_PASSWORD", password())
        .output()
        .expect("run patroni-lab");
    assert!(
        out.status.success(),
        "patroni-lab {args:?} failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn count(haystack: &str, needle: &str) -> usize {
    haystack.matches(needle).count()
}

#[test]
fn the_browser_check_sees_a_broken_page() {
    // The check below could pass on any page if Chromium's console never reached us: a page
    // that throws must show up.
    let dir = pages_dir("broken");
    std::fs::write(
        dir.join("broken.html"),
        "<!doctype html><html><body><table></table><script>throw new Error('broken on purpose')</script></body></html>",
    )
    .unwrap();
    let page = render(&dir, "broken.html", None);
    assert!(
        page.console
            .iter()
            .any(|l| l.contains("Uncaught Error: broken on purpose")),
        "console: {:?}",
        page.console
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn probe_scenario_and_matrix_pages_load_clean_with_chart_and_table() {
    let _lab = LabTest::begin("probe_scenario_and_matrix_pages_load_clean_with_chart_and_table");
    let dir = pages_dir("reports");
    let d = dir.display().to_string();
    patroni_lab(&["probe", "-T", "4s", "--html", &format!("{d}/probe.html")]);
    patroni_lab(&[
        "scenario",
        "run",
        "restart-leader",
        "--inject-at",
        "1s",
        "--inject-jitter",
        "0s",
        "--tail",
        "1s",
        "--readers",
        "--html",
        &format!("{d}/scenario.html"),
    ]);
    patroni_lab(&[
        "matrix",
        "--profiles",
        "default",
        "--scenarios",
        "restart-leader",
        "--runs",
        "1",
        "--steady",
        "0",
        "--out",
        &format!("{d}/matrix"),
    ]);

    for page in ["probe.html", "scenario.html"] {
        let r = render(&dir, page, None);
        assert!(r.console.is_empty(), "{page}: console: {:?}", r.console);
        // The chart: an SVG with the throughput bars and the latency lines drawn in it.
        assert!(r.dom.contains("<svg"), "{page}: no chart");
        assert!(count(&r.dom, "<rect") >= 3, "{page}: the chart is empty");
        assert!(
            r.dom.contains("<table id=\"per-second\">"),
            "{page}: no table"
        );
    }
    // With readers, the scenario's chart has their panel too.
    let r = render(&dir, "scenario.html", None);
    assert!(
        r.dom.contains("readers per second:"),
        "scenario.html: no readers' panel"
    );
    let r = render(&dir, "matrix/matrix.html", None);
    assert!(r.console.is_empty(), "matrix: console: {:?}", r.console);
    assert!(r.dom.contains("<table id=\"matrix\">"), "matrix: no table");
    assert_eq!(
        count(&r.dom, "<rect class=\"bar\""),
        1,
        "matrix: one cell, one bar in the chart"
    );
    assert!(r.dom.contains("restart-leader"), "matrix: no scenario row");
    assert!(r.dom.contains("default"), "matrix: no profile column");

    render(&dir, "matrix/matrix.html", Some("matrix.png"));
    let png = std::fs::read(dir.join("matrix.png")).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG");
    assert!(png.len() > 10_000, "a {}-byte PNG is blank", png.len());
    let _ = std::fs::remove_dir_all(&dir);
}
