//! The code's shape, read from the sources (no lab): no crate holds more than 35 % of the
//! Rust source lines, no crate depends on one above it, no two modules of a crate import each
//! other (directly or round a loop), every module opens with a doc comment saying what it owns,
//! and only the `Host` seam's Docker implementation knows the docker command line.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The crates from the bottom up; a crate may depend only on crates in lower layers.
const LAYERS: &[&[&str]] = &[
    &["common", "profile"],
    &["probe", "callback"],
    &["cluster"],
    &["faults", "doctor"],
    &["scenario"],
    &["campaign"],
    &["testkit"],
    &["patroni-lab"],
];

/// The crate only the tests use (a dev-dependency): it drives the lab with docker as a test
/// does, and is not counted among the tool's lines.
const TESTS_ONLY: &str = "testkit";

/// The largest share of the Rust source lines (`crates/*/src`) one crate may hold.
const MAX_SHARE: f64 = 0.35;

/// The one file that may name the docker command line, and the one that may build its host.
const DOCKER_CLI: &str = "cluster/src/host.rs";
const DOCKER_HOST_BUILT: &[&str] = &["cluster/src/host.rs", "cluster/src/lab.rs"];

fn crates_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("crates/")
        .to_path_buf()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read a source folder") {
        let p = e.expect("a folder entry").path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// Each crate's folder name and its source files (`src/**/*.rs`), relative to `crates/`.
fn sources() -> BTreeMap<String, Vec<(String, String)>> {
    let root = crates_dir();
    let mut all = BTreeMap::new();
    for e in std::fs::read_dir(&root).expect("read crates/") {
        let dir = e.expect("an entry").path();
        if !dir.join("Cargo.toml").exists() {
            continue;
        }
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files = Vec::new();
        rust_files(&dir.join("src"), &mut files);
        let files = files
            .into_iter()
            .map(|p| {
                let rel = p
                    .strip_prefix(&root)
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                (rel, std::fs::read_to_string(&p).expect("read a source"))
            })
            .collect();
        all.insert(name, files);
    }
    all
}

/// The code of a source without its comment lines.
fn code(text: &str) -> String {
    text.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The crate's top-level module a file belongs to (`faults/kill_leader.rs` → `faults`); `None`
/// for the crate root.
fn module_of(rel: &str) -> Option<String> {
    let in_src = rel.split_once("/src/").expect("a file under src").1;
    let first = in_src.split('/').next().unwrap().trim_end_matches(".rs");
    (!matches!(first, "lib" | "main")).then(|| first.to_string())
}

/// The top-level modules a file names through `crate::` (paths and `use crate::{a, b::c}`).
fn imports(text: &str) -> BTreeSet<String> {
    let code = code(text);
    let mut out = BTreeSet::new();
    let mut rest = code.as_str();
    while let Some(i) = rest.find("crate::") {
        let before = rest[..i].chars().last();
        rest = &rest[i + "crate::".len()..];
        if before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$') {
            continue;
        }
        if let Some(inner) = rest.strip_prefix('{') {
            let mut depth = 0;
            let mut item = String::new();
            for c in inner.chars() {
                match c {
                    '{' => depth += 1,
                    '}' if depth == 0 => break,
                    '}' => depth -= 1,
                    ',' if depth == 0 => {
                        out.insert(item.trim().split("::").next().unwrap().to_string());
                        item.clear();
                        continue;
                    }
                    _ => {}
                }
                if depth == 0 {
                    item.push(c);
                }
            }
            out.insert(item.trim().split("::").next().unwrap().to_string());
        } else {
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            out.insert(name);
        }
    }
    out.retain(|m| !m.is_empty() && m != "self");
    out
}

/// A loop in `graph`, as the modules round it, if there is one.
fn a_loop(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(at) = path.iter().position(|p| p == node) {
            let mut round = path[at..].to_vec();
            round.push(node.to_string());
            return Some(round);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_string());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

/// The names the crate root re-exports (`pub use run::{Config, handle};`), each with the
/// module it comes from: `use crate::{Config}` imports that module.
fn reexports(files: &[(String, String)]) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (rel, text) in files {
        if module_of(rel).is_some() {
            continue;
        }
        for line in code(text).lines() {
            let Some(path) = line.trim().strip_prefix("pub use ") else {
                continue;
            };
            let path = path.trim_end_matches(';');
            let Some((module, names)) = path.split_once("::") else {
                continue;
            };
            let names = names.trim_start_matches('{').trim_end_matches('}');
            for name in names.split(',') {
                let name = name.trim().rsplit("::").next().unwrap_or_default();
                if !name.is_empty() {
                    out.insert(name.to_string(), module.trim().to_string());
                }
            }
        }
    }
    out
}

fn module_graph(files: &[(String, String)]) -> BTreeMap<String, BTreeSet<String>> {
    let modules: BTreeSet<String> = files.iter().filter_map(|(r, _)| module_of(r)).collect();
    let reexported = reexports(files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (rel, text) in files {
        let Some(from) = module_of(rel) else { continue };
        let to = graph.entry(from.clone()).or_default();
        to.extend(
            imports(text)
                .into_iter()
                .map(|m| reexported.get(&m).cloned().unwrap_or(m))
                .filter(|m| *m != from && modules.contains(m)),
        );
    }
    graph
}

#[test]
fn no_crate_holds_more_than_its_share_of_the_lines() {
    let all = sources();
    let lines: BTreeMap<&String, usize> = all
        .iter()
        .filter(|(c, _)| *c != TESTS_ONLY)
        .map(|(c, files)| (c, files.iter().map(|(_, t)| t.lines().count()).sum()))
        .collect();
    let total: usize = lines.values().sum();
    for (c, n) in &lines {
        let share = *n as f64 / total as f64;
        println!("{c}: {n} lines, {:.1} %", share * 100.0);
        assert!(
            share <= MAX_SHARE,
            "crate {c} holds {n} of {total} lines ({:.1} %, more than {:.0} %)",
            share * 100.0,
            MAX_SHARE * 100.0
        );
    }
}

#[test]
fn no_crate_depends_on_one_above_it() {
    let layer = |c: &str| {
        LAYERS
            .iter()
            .position(|l| l.contains(&c))
            .unwrap_or_else(|| panic!("crate {c} is in no layer of LAYERS: add it"))
    };
    for c in sources().keys() {
        let manifest =
            std::fs::read_to_string(crates_dir().join(c).join("Cargo.toml")).expect("Cargo.toml");
        for line in manifest.lines() {
            let Some(dep) = line.strip_prefix("patroni-lab-") else {
                continue;
            };
            let dep = dep.split(['.', ' ', '=']).next().unwrap();
            assert!(
                layer(dep) < layer(c),
                "crate {c} depends on {dep}, which is not below it"
            );
        }
    }
}

#[test]
fn no_two_modules_import_each_other() {
    for (c, files) in sources() {
        let graph = module_graph(&files);
        if let Some(round) = a_loop(&graph) {
            panic!("crate {c}: modules import each other round a loop: {round:?}");
        }
    }
}

#[test]
fn the_loop_finder_finds_a_loop() {
    let files = vec![
        ("x/src/a.rs".to_string(), "use crate::b::B;".to_string()),
        (
            "x/src/b.rs".to_string(),
            "use crate::{c, d::D};".to_string(),
        ),
        (
            "x/src/c.rs".to_string(),
            "fn f() { crate::a::g() }".to_string(),
        ),
        (
            "x/src/d.rs".to_string(),
            "// crate::a, a comment".to_string(),
        ),
        ("x/src/e.rs".to_string(), "use crate::{Thing};".to_string()),
        ("x/src/f.rs".to_string(), "use crate::e::E;".to_string()),
        (
            "x/src/lib.rs".to_string(),
            "pub use f::{Thing, Other};".to_string(),
        ),
    ];
    let round = a_loop(&module_graph(&files)).expect("a → b → c → a");
    assert_eq!(round, ["a", "b", "c", "a"]);
    // e imports f through the root's re-export, and f imports e.
    let round = a_loop(&module_graph(&files[4..])).expect("e → f → e");
    assert_eq!(round, ["e", "f", "e"]);
    assert_eq!(a_loop(&module_graph(&files[1..4])), None);
}

#[test]
fn every_module_opens_with_what_it_owns() {
    for files in sources().values() {
        for (rel, text) in files {
            assert!(
                text.starts_with("//!"),
                "{rel} does not open with a doc comment (`//!`) saying what it owns"
            );
        }
    }
}

#[test]
fn only_the_host_seam_knows_docker() {
    for (c, files) in sources() {
        if c == TESTS_ONLY {
            continue;
        }
        for (rel, text) in &files {
            let code = code(text);
            if rel != DOCKER_CLI {
                // A call (`"docker"`), or a command written for a person (`docker stop x`).
                for said in ["\"docker", "docker ", "`docker"] {
                    assert!(
                        !code.contains(said),
                        "{rel} names the docker command line ({said:?}): act through the Host seam, and word hints with it (`how_to_run`, `describe`)"
                    );
                }
            }
            if !DOCKER_HOST_BUILT.contains(&rel.as_str()) {
                assert!(
                    !code.contains("Docker::new"),
                    "{rel} builds a Docker host itself: ask the lab (`lab.host(name)`)"
                );
            }
        }
    }
}

#[test]
fn only_the_probe_reads_a_history_file() {
    for (c, files) in sources() {
        if c == "probe" {
            continue;
        }
        for (rel, text) in files {
            for reads in ["read_history", "analysis::analyze("] {
                assert!(
                    !code(&text).contains(reads),
                    "{rel} reads a probe's history file back ({reads}): take the attempts the session returns"
                );
            }
        }
    }
}

/// Queries read what the timeline typed (`Seen`, `Mark`), not its text back.
#[test]
fn no_query_parses_an_events_text() {
    const PARSED: &[&str] = &[
        "starts_with(\"inject ",
        "strip_prefix(\"leader lock: ",
        "strip_prefix(\"readers -> ",
        "contains(\": doctor: \")",
        "starts_with(\"event ",
    ];
    for files in sources().values() {
        for (rel, text) in files {
            let code = code(text);
            for p in PARSED {
                assert!(
                    !code.contains(p),
                    "{rel} parses an event's text ({p}): read its `seen` or `mark`"
                );
            }
        }
    }
}
