//! The fuzz targets on stable: every function of `worldfit::fuzzing` over
//! every seed in `fuzz/seeds/<target>/` and every past crash in
//! `fuzz/regressions/<target>/`. Fuzzing for real needs nightly and
//! cargo-fuzz (see fuzz/README.md); this keeps the targets building and
//! the crashes they found fixed.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

/// The inputs of one target: (path, bytes), seeds first. Dotfiles (a
/// `.gitkeep`) are skipped.
fn inputs(target: &str) -> (usize, Vec<(PathBuf, Vec<u8>)>) {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut seeds = 0;
    let mut out = Vec::new();
    for kind in ["seeds", "regressions"] {
        let dir = fuzz.join(kind).join(target);
        let Ok(entries) = std::fs::read_dir(&dir) else {
            assert_eq!(kind, "regressions", "`{}` is missing", dir.display());
            continue;
        };
        let mut files: Vec<PathBuf> = entries
            .map(|e| e.expect("a directory entry").path())
            .filter(|p| {
                p.is_file()
                    && !p
                        .file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        files.sort();
        if kind == "seeds" {
            seeds = files.len();
        }
        for path in files {
            let bytes = std::fs::read(&path).expect("a readable input");
            out.push((path, bytes));
        }
    }
    (seeds, out)
}

/// Runs `f` over every input of `target`; fails naming each input that panics.
fn smoke(target: &str, f: fn(&[u8])) {
    let (seeds, inputs) = inputs(target);
    assert!(seeds > 0, "no seeds for `{target}`");
    let failed: Vec<String> = inputs
        .iter()
        .filter(|(_, bytes)| catch_unwind(AssertUnwindSafe(|| f(bytes))).is_err())
        .map(|(path, _)| path.display().to_string())
        .collect();
    assert!(
        failed.is_empty(),
        "`worldfit::fuzzing::{target}` panics on: {}",
        failed.join(", ")
    );
}

#[test]
fn decode_check() {
    smoke("decode_check", worldfit::fuzzing::decode_check);
}

#[test]
fn oci_json() {
    smoke("oci_json", worldfit::fuzzing::oci_json);
}

#[test]
fn wit_name() {
    smoke("wit_name", worldfit::fuzzing::wit_name);
}

#[test]
fn stub() {
    smoke("stub", worldfit::fuzzing::stub);
}

#[test]
fn filesystem_layer() {
    smoke("filesystem_layer", worldfit::fuzzing::filesystem_layer);
}

#[test]
fn layout() {
    smoke("layout", worldfit::fuzzing::layout);
}

/// The layout seeds reach what they were written for: the valid ones make
/// a selection, the hostile ones are refused (at the root, or below it for
/// the `hostile-nested-*` ones). `--nocapture` prints what each reads as.
#[test]
fn layout_seeds_reach_their_code() {
    let (seeds, inputs) = inputs("layout");
    for (path, bytes) in inputs.into_iter().take(seeds) {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let report = worldfit::fuzzing::layout_report(&bytes);
        println!("{name}:\n  {}", report.join("\n  "));
        let line = |step: &str| {
            report
                .iter()
                .find_map(|l| l.strip_prefix(step))
                .unwrap_or_else(|| panic!("{name}: no `{step}` in {report:#?}"))
                .to_string()
        };
        let selected = line("select: ").starts_with('#');
        match name.as_str() {
            "tagged" | "config-only" | "layer-only" | "by-digest" | "mixed" => {
                assert!(selected, "{name} selects: {report:#?}")
            }
            n if n.starts_with("hostile-") => {
                assert!(!selected, "{name} is refused: {report:#?}");
                let root_read = line("root: ").starts_with("application/");
                assert_eq!(root_read, n.starts_with("hostile-nested-"), "{report:#?}");
            }
            _ => {}
        }
    }
}
