//! The import rules of ARCHITECTURE.md, checked: each folder of `src/` names the modules of
//! the crate it may use, and every `crate::…` path in its code is read. The adapters crate
//! (`channels/`) may depend on no database and no HTTP server at all.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// (module, the crate modules its code may name besides itself). Everything may use the
/// `channels` crate; `http` (the edge) and `lib.rs` (the wiring) may use everything.
const RULES: &[(&str, &[&str])] = &[
    // Leaves: data and pure helpers.
    ("rules", &[]),
    ("events", &[]),
    ("retry", &[]),
    ("config", &["rules"]),
    ("telemetry", &["config"]),
    // Storage knows no HTTP and makes no decisions.
    ("store", &["config", "rules", "events"]),
    // The one owner of invitation states.
    ("lifecycle", &["store", "events"]),
    // Policy decides without HTTP; it gathers its inputs from storage.
    (
        "policy",
        &["config", "rules", "events", "store", "lifecycle"],
    ),
    // The closed loop: answers open alerts (called by ingest in its transaction), owners are
    // notified through the relay (a sink) and the e-mail transport.
    (
        "alerts",
        &["config", "events", "store", "policy", "forward", "dispatch"],
    ),
    (
        "ingest",
        &[
            "config",
            "rules",
            "events",
            "store",
            "lifecycle",
            "policy",
            "alerts",
        ],
    ),
    (
        "dispatch",
        &["config", "rules", "store", "lifecycle", "policy", "retry"],
    ),
    ("forward", &["config", "events", "store", "retry"]),
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The crate modules a file's code names (`crate::x`), comments left out.
fn named_modules(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::") {
            let after = &rest[i + "crate::".len()..];
            let name: String = after
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
            rest = after;
        }
    }
    found
}

#[test]
fn every_module_imports_only_what_its_layer_allows() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut broken = Vec::new();
    for (module, allowed) in RULES {
        let mut files = Vec::new();
        let folder = src.join(module);
        if folder.is_dir() {
            rust_files(&folder, &mut files);
        }
        let file = src.join(format!("{module}.rs"));
        if file.is_file() {
            files.push(file);
        }
        assert!(!files.is_empty(), "src/{module} is gone: update RULES");
        for file in files {
            let source = std::fs::read_to_string(&file).unwrap();
            for used in named_modules(&source) {
                if used != *module && !allowed.contains(&used.as_str()) {
                    broken.push(format!(
                        "{} uses crate::{used}",
                        file.strip_prefix(&src).unwrap().display()
                    ));
                }
            }
        }
    }
    assert!(
        broken.is_empty(),
        "imports against ARCHITECTURE.md:\n{}",
        broken.join("\n")
    );
}

#[test]
fn every_top_level_module_has_a_rule() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    for line in lib.lines() {
        if let Some(name) = line
            .strip_prefix("pub mod ")
            .and_then(|l| l.strip_suffix(';'))
        {
            assert!(
                name == "http" || RULES.iter().any(|(m, _)| *m == name),
                "src/{name} has no import rule in tests/architecture.rs and ARCHITECTURE.md"
            );
        }
    }
}

#[test]
fn the_adapters_crate_needs_no_database_and_no_http_server() {
    let manifest =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("channels/Cargo.toml"))
            .unwrap();
    let dependencies = manifest
        .split("[dependencies]")
        .nth(1)
        .and_then(|d| d.split("\n[").next())
        .unwrap();
    for forbidden in [
        "sea-orm",
        "sea_orm",
        "sqlx",
        "axum",
        "hyper",
        "tower",
        "tokio-postgres",
    ] {
        assert!(
            !dependencies
                .lines()
                .any(|l| l.trim_start().starts_with(forbidden)),
            "channels/ depends on {forbidden}"
        );
    }
}
