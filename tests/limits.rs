//! Every read limit, at the limit (reads) and one past it (a one-line
//! error, exit 2), through the `--max-*` flags on real layouts.
#![cfg(all(feature = "registry", feature = "wasmtime"))]

mod common;

use common::oci::{hello, index_chain, layout, wasip1_hello};
use common::worldfit_command;
use std::path::Path;
use std::process::Output;

fn select(args: &[&str]) -> Output {
    worldfit_command()
        .arg("select")
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) {
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn over(out: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert_eq!(err.matches("error:").count(), 1, "{err}");
    assert!(err.contains(needle), "expected `{needle}` in {err}");
}

fn size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap().len()
}

/// Asserts that `flag = at` reads and `flag = at - 1` (or `at + 1` for a
/// lower bound) fails with `needle`.
fn at_and_past(source: &str, extra: &[&str], flag: &str, at: u64, needle: &str) {
    let at_s = at.to_string();
    let past = (at - 1).to_string();
    let mut args = vec![source, flag, &at_s];
    args.extend_from_slice(extra);
    ok(&select(&args));
    let mut args = vec![source, flag, &past];
    args.extend_from_slice(extra);
    over(&select(&args), needle);
}

#[test]
fn every_read_limit_holds_at_the_limit_and_fails_past_it() {
    let tmp = tempfile::tempdir().unwrap();
    let (p1, p2) = (wasip1_hello(), hello());
    let oci = layout(
        tmp.path(),
        &[&p1, &p2],
        vec![p2.entry.clone(), p1.entry.clone()],
        vec![],
    );
    let source = format!("{}:1.0", oci.display());

    // The layer: exactly its size reads; a byte less is refused before reading.
    at_and_past(
        &source,
        &[],
        "--max-layer-bytes",
        p2.layer.descriptor.size,
        "over the limit of",
    );

    // Manifests and indexes: index.json, the index, the chosen manifest.
    let biggest = [
        size(&oci.join("index.json")),
        p2.manifest.descriptor.size,
        size(
            &oci.join("blobs/sha256").join(
                &serde_json::from_slice::<serde_json::Value>(
                    &std::fs::read(oci.join("index.json")).unwrap(),
                )
                .unwrap()["manifests"][0]["digest"]
                    .as_str()
                    .unwrap()[7..],
            ),
        ),
    ]
    .into_iter()
    .max()
    .unwrap();
    at_and_past(
        &source,
        &[],
        "--max-manifest-bytes",
        biggest,
        "over the limit of",
    );

    // Entries: two entries pass a limit of 2, not of 1.
    at_and_past(
        &source,
        &["--no-confirm"],
        "--max-index-entries",
        2,
        "2 entries, over the limit of 1",
    );

    // JSON depth: the index's deepest point is `os.features` at 5 levels.
    at_and_past(
        &source,
        &["--no-confirm"],
        "--max-json-depth",
        5,
        "deeper than the limit of 4",
    );

    // Index nesting: a chain of 3 indexes passes a limit of 3, not of 2.
    let chain = index_chain(tmp.path(), 3, &p2);
    let chain = format!("{}:chain", chain.display());
    at_and_past(
        &chain,
        &["--no-confirm"],
        "--max-index-depth",
        3,
        "nests deeper than 2 levels",
    );
    // The default (4) allows 4 and refuses 5.
    ok(&select(&[
        &format!("{}:chain", index_chain(tmp.path(), 4, &p2).display()),
        "--no-confirm",
    ]));
    over(
        &select(&[
            &format!("{}:chain", index_chain(tmp.path(), 5, &p2).display()),
            "--no-confirm",
        ]),
        "nests deeper than 4 levels",
    );

    // The config is read when the index says nothing: a manifest by digest.
    let by_digest = format!("{}@{}", oci.display(), p2.entry.digest);
    at_and_past(
        &by_digest,
        &["--no-confirm"],
        "--max-config-bytes",
        p2.config.descriptor.size,
        "over the limit of",
    );
}

/// `index.json` or `oci-layout` as a symlink to an endless device, or a
/// FIFO nobody writes: refused at once, never read until memory runs out
/// or blocked on forever.
#[test]
fn special_files_in_a_layout_are_refused_without_hanging() {
    let tmp = tempfile::tempdir().unwrap();
    let p2 = hello();
    let oci = layout(tmp.path(), &[&p2], vec![p2.entry.clone()], vec![]);
    let index = std::fs::read(oci.join("index.json")).unwrap();
    let source = format!("{}:1.0", oci.display());
    let cases: [(&str, fn(&Path)); 2] = [
        ("symlink to /dev/zero", |p| {
            std::os::unix::fs::symlink("/dev/zero", p).unwrap()
        }),
        ("fifo", |p| {
            let c = std::ffi::CString::new(p.as_os_str().as_encoded_bytes()).unwrap();
            assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        }),
    ];
    for file in ["index.json", "oci-layout"] {
        for (what, make) in &cases {
            let path = oci.join(file);
            let saved = std::fs::read(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            make(&path);
            let started = std::time::Instant::now();
            over(&select(&[&source, "--no-confirm"]), "not a regular file");
            assert!(started.elapsed().as_secs() < 10, "{file} as {what}");
            std::fs::remove_file(&path).unwrap();
            std::fs::write(&path, saved).unwrap();
        }
    }
    assert_eq!(std::fs::read(oci.join("index.json")).unwrap(), index);
}
