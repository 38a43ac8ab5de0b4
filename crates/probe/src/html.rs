//! The self-contained HTML report: a summary, an SVG chart of throughput, errors and latency
//! per second with the unavailability windows shaded (and, when clients also read on the
//! reader endpoint, what those reads saw), and the tables behind them.

use crate::model::Analysis;
use std::fmt::Write as _;

use crate::report::{Report, summary};

/// Text made safe inside HTML (element content and attribute values).
pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

const W: f64 = 1000.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const PANEL_H: f64 = 170.0;
const GAP: f64 = 40.0;
const TOP: f64 = 30.0;

/// A moment to mark on the chart's time axis (a fault step, a role change), in microseconds
/// since the run began.
#[derive(Debug, Clone)]
pub struct Marker {
    pub at_us: i64,
    pub label: String,
}

/// The chart: throughput/errors per second above, p99 and max latency (log scale) below.
pub fn chart(r: &Report) -> String {
    chart_with_markers(r, &[])
}

/// Where the chart draws: seconds across, the plot's width, the second panel's top, the
/// readers' panel's top (when there is one) and the bottom of the last panel.
struct Frame {
    seconds: f64,
    plot_w: f64,
    top2: f64,
    top3: Option<f64>,
    bottom: f64,
}

impl Frame {
    fn x(&self, sec: f64) -> f64 {
        LEFT + sec / self.seconds * self.plot_w
    }
}

/// The chart with vertical markers (dashed lines, labelled) across both panels.
pub fn chart_with_markers(r: &Report, markers: &[Marker]) -> String {
    let a = &r.analysis;
    let top2 = TOP + PANEL_H + GAP;
    let top3 = a.readers.as_ref().map(|_| top2 + PANEL_H + GAP);
    let f = Frame {
        seconds: (a.timeline.len().max(1)) as f64,
        plot_w: W - LEFT - RIGHT,
        top2,
        top3,
        bottom: top3.unwrap_or(top2) + PANEL_H,
    };
    let height = f.bottom + 40.0;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {height}" width="{W}" height="{height}" font-family="sans-serif" font-size="11">"#
    );
    windows(&mut svg, a, &f);
    attempts(&mut svg, a, &f);
    latency(&mut svg, a, &f);
    if let (Some(rd), Some(top3)) = (&a.readers, f.top3) {
        readers(&mut svg, rd, &f, top3);
    }
    markers_and_axis(&mut svg, markers, &f);
    svg.push_str("</svg>");
    svg
}

/// Windows, shaded over both panels.
fn windows(svg: &mut String, a: &Analysis, f: &Frame) {
    for w in &a.windows {
        let (x0, x1) = (f.x(w.start_us as f64 / 1e6), f.x(w.end_us as f64 / 1e6));
        let _ = write!(
            svg,
            r##"<rect x="{x0:.1}" y="{TOP}" width="{:.1}" height="{:.1}" fill="#f4c7c3" opacity="0.6"><title>window {:.0} ms, {} errors</title></rect>"##,
            (x1 - x0).max(1.0),
            f.bottom - TOP,
            w.duration_ms,
            w.errors
        );
    }
}

/// Panel 1: attempts per second, stacked ok / failed / in doubt.
fn attempts(svg: &mut String, a: &Analysis, f: &Frame) {
    let peak = a
        .timeline
        .iter()
        .map(|s| s.ok + s.failed + s.in_doubt)
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let bar_w = (f.plot_w / f.seconds).max(1.0);
    let y1 = |v: f64| TOP + PANEL_H - v / peak * PANEL_H;
    for s in &a.timeline {
        let x0 = f.x(s.second as f64);
        let mut base = 0.0;
        for (count, color, what) in [
            (s.ok, "#3c8d40", "ok"),
            (s.failed, "#d9342b", "failed"),
            (s.in_doubt, "#f0a020", "in doubt"),
        ] {
            if count == 0 {
                continue;
            }
            let c = count as f64;
            let _ = write!(
                svg,
                r#"<rect x="{x0:.1}" y="{:.1}" width="{bar_w:.1}" height="{:.1}" fill="{color}"><title>{}s: {count} {what}</title></rect>"#,
                y1(base + c),
                y1(base) - y1(base + c),
                s.second
            );
            base += c;
        }
    }
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="{}" font-weight="bold">attempts per second (green ok, red failed, orange in doubt; shaded: unavailability windows)</text><text x="{}" y="{}" text-anchor="end">{peak:.0}</text><text x="{}" y="{}" text-anchor="end">0</text><line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="#444"/>"##,
        TOP - 10.0,
        LEFT - 5.0,
        TOP + 10.0,
        LEFT - 5.0,
        TOP + PANEL_H,
        TOP + PANEL_H,
        W - RIGHT,
        TOP + PANEL_H
    );
}

/// Panel 2: latency, log scale from 0.1 ms to the largest max.
fn latency(svg: &mut String, a: &Analysis, f: &Frame) {
    let hi = a
        .timeline
        .iter()
        .filter_map(|s| s.max_ms)
        .fold(1.0f64, f64::max)
        .max(1.0);
    let (lo_l, hi_l) = (0.1f64.log10(), hi.log10() + 0.1);
    let y2 = |ms: f64| f.top2 + PANEL_H - (ms.max(0.1).log10() - lo_l) / (hi_l - lo_l) * PANEL_H;
    for (pick, color, name) in [(0usize, "#1f5fbf", "p99"), (1usize, "#999999", "max")] {
        let points: Vec<String> = a
            .timeline
            .iter()
            .filter_map(|s| {
                let v = if pick == 0 { s.p99_ms } else { s.max_ms }?;
                Some(format!("{:.1},{:.1}", f.x(s.second as f64 + 0.5), y2(v)))
            })
            .collect();
        if !points.is_empty() {
            let _ = write!(
                svg,
                r#"<polyline points="{}" fill="none" stroke="{color}" stroke-width="1.5"><title>{name} latency</title></polyline>"#,
                points.join(" ")
            );
        }
    }
    log_grid(svg, &[0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0], hi, y2);
    panel_title(
        svg,
        "latency of successful attempts per second (blue p99, grey max; log scale)",
        f.top2,
    );
}

/// A log-scale panel's grid lines, labelled in ms, up to just above `hi`.
fn log_grid(svg: &mut String, ticks: &[f64], hi: f64, y: impl Fn(f64) -> f64) {
    for &tick in ticks.iter().take_while(|t| **t <= hi * 1.3) {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{:.1}" text-anchor="end">{tick} ms</text><line x1="{LEFT}" y1="{:.1}" x2="{}" y2="{:.1}" stroke="#ddd"/>"##,
            LEFT - 5.0,
            y(tick) + 4.0,
            y(tick),
            W - RIGHT,
            y(tick)
        );
    }
}

/// A panel's title above it and its base line.
fn panel_title(svg: &mut String, title: &str, top: f64) {
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="{}" font-weight="bold">{title}</text><line x1="{LEFT}" y1="{}" x2="{}" y2="{}" stroke="#444"/>"##,
        top - 10.0,
        top + PANEL_H,
        W - RIGHT,
        top + PANEL_H
    );
}

/// Panel 3: the reader endpoint's reads per second — the stalest read (log scale, purple),
/// failed reads (red ticks along the bottom), reads that missed their own write (orange) and
/// reads older than their client's previous one (blue).
fn readers(svg: &mut String, rd: &crate::readers::Readers, f: &Frame, top: f64) {
    let hi = rd
        .per_second
        .iter()
        .filter_map(|s| s.staleness_max_ms)
        .fold(10.0f64, f64::max);
    let (lo_l, hi_l) = (1.0f64.log10(), hi.log10() + 0.1);
    // A fresh read (0 ms) sits on the bottom line.
    let y = |ms: f64| top + PANEL_H - (ms.max(1.0).log10() - lo_l) / (hi_l - lo_l) * PANEL_H;
    let bar_w = (f.plot_w / f.seconds).max(1.0);
    let mut points = Vec::new();
    for (second, s) in rd.per_second.iter().enumerate() {
        let x0 = f.x(second as f64);
        if let Some(ms) = s.staleness_max_ms {
            points.push(format!("{:.1},{:.1}", f.x(second as f64 + 0.5), y(ms)));
        }
        for (count, color, what, row) in [
            (s.failed, "#d9342b", "reads failed", 0.0),
            (
                s.own_write_missing,
                "#f0a020",
                "reads missed their own write",
                1.0,
            ),
            (
                s.monotonic_violations,
                "#1f5fbf",
                "reads older than their client's previous",
                2.0,
            ),
        ] {
            if count > 0 {
                let _ = write!(
                    svg,
                    r#"<rect x="{x0:.1}" y="{:.1}" width="{bar_w:.1}" height="5" fill="{color}"><title>{second}s: {count} of {} {what}</title></rect>"#,
                    top + PANEL_H - 6.0 - row * 7.0,
                    s.reads
                );
            }
        }
    }
    if !points.is_empty() {
        let _ = write!(
            svg,
            r##"<polyline points="{}" fill="none" stroke="#6a3d9a" stroke-width="1.5"><title>stalest read per second</title></polyline>"##,
            points.join(" ")
        );
    }
    log_grid(svg, &[1.0, 10.0, 100.0, 1000.0, 10000.0, 100000.0], hi, y);
    panel_title(
        svg,
        "readers per second: stalest read (purple, log scale), failed (red), own write missing (orange), older than before (blue)",
        top,
    );
}

/// The markers across every panel, and the time axis.
fn markers_and_axis(svg: &mut String, markers: &[Marker], f: &Frame) {
    for (i, m) in markers.iter().enumerate() {
        let mx = f.x(m.at_us.max(0) as f64 / 1e6);
        let _ = write!(
            svg,
            r##"<line x1="{mx:.1}" y1="{TOP}" x2="{mx:.1}" y2="{:.1}" stroke="#6a3d9a" stroke-dasharray="4,3"><title>{}</title></line><text x="{:.1}" y="{:.1}" fill="#6a3d9a" font-size="9">{}</text>"##,
            f.bottom,
            escape(&m.label),
            mx + 2.0,
            TOP + 10.0 + (i % 8) as f64 * 11.0,
            escape(&m.label)
        );
    }
    // Time axis.
    let step = [
        1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
    ]
    .into_iter()
    .find(|s| f.seconds / s <= 12.0)
    .unwrap_or(3600.0);
    let mut t = 0.0;
    while t <= f.seconds {
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{}" text-anchor="middle">{t:.0}s</text>"#,
            f.x(t),
            f.bottom + 15.0
        );
        t += step;
    }
}

/// The page's head and the opening of its body, shared by every report page.
pub fn head(title: &str) -> String {
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>{}</title>\
         <style>body{{font-family:sans-serif;margin:2em;max-width:1100px}}pre{{background:#f6f6f6;padding:1em;overflow-x:auto}}\
         table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:3px 8px;text-align:right}}th{{background:#eee}}</style></head><body>",
        escape(title)
    )
}

/// The whole page.
pub fn page(r: &Report) -> String {
    page_with(r, "patroni-lab probe", "", &[])
}

/// The whole page, titled, with extra HTML before the summary and markers on the chart.
pub fn page_with(r: &Report, title: &str, extra_html: &str, markers: &[Marker]) -> String {
    let mut html = String::new();
    let _ = write!(
        html,
        "{head}<h1>{title}</h1><p>run <code>{id}</code>, started {start}, {dur:.1} s against <code>{ep}</code>, server {ver}</p>",
        id = escape(&r.run_id),
        start = escape(&r.started_at),
        dur = r.duration_ms / 1000.0,
        ep = escape(&r.settings.endpoint),
        ver = escape(&r.server_version),
        title = escape(title),
        head = head(&format!("{title} {}", r.run_id)),
    );
    html.push_str(&chart_with_markers(r, markers));
    html.push_str(extra_html);
    let _ = write!(html, "<h2>Summary</h2><pre>{}</pre>", escape(&summary(r)));
    if !r.analysis.client_windows.is_empty() {
        html.push_str("<h2>Windows per client</h2><table><tr><th>client</th><th>from (s)</th><th>to (s)</th><th>ms</th><th>errors</th><th>classes</th></tr>");
        for w in &r.analysis.client_windows {
            let classes: Vec<String> = w.classes.iter().map(|(k, v)| format!("{k} {v}")).collect();
            let _ = write!(
                html,
                "<tr><td>{}</td><td>{:.3}</td><td>{:.3}</td><td>{:.0}</td><td>{}</td><td style=\"text-align:left\">{}</td></tr>",
                w.client.unwrap_or(0),
                w.start_us as f64 / 1e6,
                w.end_us as f64 / 1e6,
                w.duration_ms,
                w.errors,
                escape(&classes.join(", "))
            );
        }
        html.push_str("</table>");
    }
    // The chart's numbers, second by second (always there: the chart's table).
    html.push_str("<h2>Per second</h2><table id=\"per-second\"><tr><th>s</th><th>ok</th><th>failed</th><th>in doubt</th><th>p50 ms</th><th>p99 ms</th><th>max ms</th></tr>");
    let ms = |v: Option<f64>| v.map_or("–".to_string(), |v| format!("{v:.1}"));
    for sec in &r.analysis.timeline {
        let _ = write!(
            html,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            sec.second,
            sec.ok,
            sec.failed,
            sec.in_doubt,
            ms(sec.p50_ms),
            ms(sec.p99_ms),
            ms(sec.max_ms)
        );
    }
    html.push_str("</table>");
    let settings = serde_json::to_string_pretty(&r.settings).unwrap_or_default();
    let _ = writeln!(
        html,
        "<h2>Settings</h2><pre>{}</pre></body></html>",
        escape(&settings)
    );
    html
}
