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
    type MakeSpecialFile = fn(&Path);
    let cases: [(&str, MakeSpecialFile); 2] = [
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

/// A registry's manifest is held to `--max-manifest-bytes` like a layout's:
/// at the limit it reads; one byte past it, the answer is refused by its
/// `Content-Length`, before a byte of the body is read.
#[test]
fn registry_manifests_are_refused_past_the_limit_before_reading() {
    use worldfit::oci::limits::ReadLimits;
    use worldfit::oci::registry::{Registry, RegistryOptions, parse_reference};

    let tmp = tempfile::tempdir().unwrap();
    let (p1, p2) = (wasip1_hello(), hello());
    let oci = layout(
        tmp.path(),
        &[&p1, &p2],
        vec![p2.entry.clone(), p1.entry.clone()],
        vec![],
    );
    let registry = common::registry::Registry::start();
    let reference = format!("{}/app:1.0", registry.addr);
    let pushed = worldfit_command()
        .args(["push", &format!("{}:1.0", oci.display()), &reference])
        .arg("--plain-http")
        .output()
        .unwrap();
    ok(&pushed);

    // Through the CLI: the index and the chosen manifest are read.
    let index_size = {
        let top: serde_json::Value =
            serde_json::from_slice(&std::fs::read(oci.join("index.json")).unwrap()).unwrap();
        top["manifests"][0]["size"].as_u64().unwrap()
    };
    let biggest = index_size.max(p2.manifest.descriptor.size);
    at_and_past(
        &reference,
        &["--plain-http"],
        "--max-manifest-bytes",
        biggest,
        "over the limit of",
    );

    // Through the library: what went over the wire.
    let read = |limit: u64| {
        let r = Registry::open(
            &parse_reference(&reference).unwrap(),
            RegistryOptions {
                plain_http: true,
                ..RegistryOptions::default()
            },
        )
        .unwrap();
        let limits = ReadLimits {
            max_manifest_bytes: limit,
            ..ReadLimits::default()
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let result = runtime.block_on(r.resolve("1.0", &limits));
        let bytes_in = r
            .traffic
            .bytes_in
            .load(std::sync::atomic::Ordering::Relaxed);
        (result, bytes_in)
    };
    let (at, bytes_in) = read(index_size);
    assert_eq!(at.unwrap().0.size, index_size);
    assert_eq!(bytes_in, index_size);
    let (past, bytes_in) = read(index_size - 1);
    let err = format!("{:#}", past.unwrap_err());
    assert!(err.contains("over the limit of"), "{err}");
    assert_eq!(bytes_in, 0, "the body was read: {err}");
}
