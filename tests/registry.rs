//! `push`, `pull` and `inspect` against a real registry (Debian's
//! `docker-registry`, distribution v2, started on loopback per test), with
//! real peers reading and writing the same images: skopeo and wkg. Faults
//! (401, 404, 5xx, stalls, truncated bodies) come from the registry itself
//! or from a loopback proxy in front of it.
#![cfg(feature = "registry")]

mod common;

use common::ok;

use common::registry::{Fault, FaultProxy, Registry};
use common::{files, fixture, worldfit_command};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the command runs")
}

fn worldfit(args: &[&str]) -> Output {
    run(worldfit_command().args(args))
}

/// Asserts exit 2 with one `error:` line and returns stderr.
fn fails(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    stderr
}

/// A wasip1 module built from the WAT fixture.
fn wasip1_module(dir: &Path) -> PathBuf {
    let bytes = wat::parse_file(fixture("wasip1-hello.wat")).unwrap();
    let path = dir.join("wasip1-hello.wasm");
    std::fs::write(&path, bytes).unwrap();
    path
}

/// A layout with two builds (a wasip2 component and a wasip1 module) under `1.0`.
fn two_build_layout(dir: &Path) -> PathBuf {
    let layout = dir.join("oci");
    let module = wasip1_module(dir);
    ok(worldfit_command()
        .env("SOURCE_DATE_EPOCH", "0")
        .args(["tag", "--layout"])
        .arg(&layout)
        .args(["--tag", "1.0"])
        .arg(fixture("hello-cli.wasm"))
        .arg(&module)
        .output()
        .as_ref()
        .unwrap());
    layout
}

// The `--json` shapes of docs/JSON.md, pinned: a field added or renamed there
// without changing these fails the tests that parse them.

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct TransferJson {
    source: String,
    destination: Option<String>,
    layout: Option<String>,
    tag: Option<String>,
    digest: String,
    media_type: String,
    blobs_transferred: u64,
    blobs_skipped: u64,
    manifests: u64,
    bytes: u64,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ImageJson {
    source: String,
    digest: String,
    media_type: String,
    entries: Vec<EntryJson>,
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct EntryJson {
    digest: String,
    media_type: String,
    wasm: bool,
    platform: Option<serde_json::Value>,
    target: Option<String>,
    declared: String,
}

/// Parses `--json` output of push/pull or of inspect of an image, checking its shape.
fn json(out: &Output) -> serde_json::Value {
    let text = ok(out);
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    if value.get("entries").is_some() {
        serde_json::from_value::<ImageJson>(value.clone()).expect("the inspect JSON shape");
    } else {
        serde_json::from_value::<TransferJson>(value.clone()).expect("the push/pull JSON shape");
    }
    value
}

fn skopeo(args: &[&str]) -> Output {
    run(Command::new("skopeo").args(args))
}

/// The index blob a layout names by `tag`.
fn layout_root(layout: &Path, tag: &str) -> (String, Vec<u8>) {
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(layout.join("index.json")).unwrap()).unwrap();
    let entry = index["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap();
    let digest = entry["digest"].as_str().unwrap().to_string();
    let hex = digest.strip_prefix("sha256:").unwrap();
    let bytes = std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap();
    (digest, bytes)
}

#[test]
fn push_gives_skopeo_the_same_index_and_sends_each_blob_once() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = two_build_layout(tmp.path());
    let registry = Registry::start();
    let proxy = FaultProxy::start(&registry.addr, Fault::None);
    let reference = format!("{}/app:1.0", proxy.addr);
    let source = format!("{}:1.0", layout.display());

    let first = json(&worldfit(&[
        "push",
        &source,
        &reference,
        "--plain-http",
        "--json",
    ]));
    let (digest, index_bytes) = layout_root(&layout, "1.0");
    assert_eq!(first["digest"], digest.as_str());
    assert_eq!(first["blobs_transferred"], 4, "{first}");
    assert_eq!(first["blobs_skipped"], 0);
    assert_eq!(first["manifests"], 3);
    let uploads = |p: &FaultProxy| {
        p.requests()
            .iter()
            .filter(|r| r.method == "POST" && r.path.contains("/blobs/uploads/"))
            .count()
    };
    assert_eq!(uploads(&proxy), 4, "one upload per blob");

    // skopeo reads back the index byte for byte, features included.
    let raw = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/app:1.0", registry.addr),
    ]);
    assert_eq!(ok(&raw).as_bytes(), index_bytes.as_slice());
    assert!(
        String::from_utf8_lossy(&index_bytes)
            .contains("\"os.features\":[\"wasi:cli/command@0.2.6\"]")
    );

    // A second push sends no blob: the registry has them all.
    let second = json(&worldfit(&[
        "push",
        &source,
        &reference,
        "--plain-http",
        "--json",
    ]));
    assert_eq!(second["blobs_transferred"], 0, "{second}");
    assert_eq!(second["blobs_skipped"], 4);
    assert_eq!(uploads(&proxy), 4, "no upload on the second push");
}

#[test]
fn skopeo_copies_what_worldfit_pushed_and_pull_round_trips() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = two_build_layout(tmp.path());
    let registry = Registry::start();
    let reference = format!("{}/app:1.0", registry.addr);
    ok(&worldfit(&[
        "push",
        &format!("{}:1.0", layout.display()),
        &reference,
        "--plain-http",
    ]));

    // skopeo copies every platform back into a layout of its own.
    let copied = tmp.path().join("skopeo-copy");
    ok(&skopeo(&[
        "copy",
        "--all",
        "--src-tls-verify=false",
        &format!("docker://{reference}"),
        &format!("oci:{}:1.0", copied.display()),
    ]));
    let (digest, _) = layout_root(&layout, "1.0");
    assert_eq!(
        layout_root(&copied, "1.0").0,
        digest,
        "skopeo keeps the index digest"
    );
    let listed = json(&worldfit(&[
        "inspect",
        &format!("{}:1.0", copied.display()),
        "--json",
    ]));
    let oses: Vec<&str> = listed["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["platform"]["os"].as_str().unwrap())
        .collect();
    assert_eq!(oses, ["wasip2", "wasip1"]);

    // worldfit pulls it into a fresh layout: the same files, byte for byte.
    let pulled = tmp.path().join("pulled");
    let report = json(&worldfit(&[
        "pull",
        &reference,
        "--layout",
        pulled.to_str().unwrap(),
        "--plain-http",
        "--json",
    ]));
    assert_eq!(report["digest"], digest.as_str());
    assert_eq!(files(&pulled), files(&layout));

    // Pulling into an existing layout under another tag keeps the first.
    ok(&worldfit(&[
        "pull",
        &reference,
        "--layout",
        pulled.to_str().unwrap(),
        "--tag",
        "again",
        "--plain-http",
    ]));
    assert_eq!(layout_root(&pulled, "1.0").0, digest);
    assert_eq!(layout_root(&pulled, "again").0, digest);

    // inspect reads the same entries from the registry as from the layout.
    let remote = json(&worldfit(&[
        "inspect",
        &reference,
        "--plain-http",
        "--json",
    ]));
    let local = json(&worldfit(&[
        "inspect",
        &format!("{}:1.0", layout.display()),
        "--json",
    ]));
    assert_eq!(remote["entries"], local["entries"]);
    assert_eq!(remote["entries"][0]["target"], "wasi:cli/command@0.2.6");
    assert_eq!(remote["entries"][0]["declared"], "index");
}

#[test]
fn registry_errors_are_one_line_and_say_which() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = two_build_layout(tmp.path());
    let source = format!("{}:1.0", layout.display());
    let registry = Registry::start();
    let dest = tmp.path().join("dest");
    let pull = |reference: &str, extra: &[&str]| {
        let mut args = vec![
            "pull",
            reference,
            "--layout",
            dest.to_str().unwrap(),
            "--plain-http",
        ];
        args.extend_from_slice(extra);
        worldfit(&args)
    };

    // 404: nothing under that name.
    let err = fails(&pull(&format!("{}/missing:1.0", registry.addr), &[]));
    assert!(err.contains("not found (404)"), "{err}");

    // 401 from a registry that wants a login.
    let proxy = FaultProxy::start(&registry.addr, Fault::Unauthorized);
    let err = fails(&pull(&format!("{}/app:1.0", proxy.addr), &[]));
    assert!(
        err.contains("401 Unauthorized") && err.contains("docker login"),
        "{err}"
    );

    // 503 twice, then the registry recovers: the retries carry the push.
    let proxy = FaultProxy::start(
        &registry.addr,
        Fault::Status {
            code: 503,
            times: 2,
            path_contains: Some("/manifests/".into()),
        },
    );
    ok(&worldfit(&[
        "push",
        &source,
        &format!("{}/app:1.0", proxy.addr),
        "--plain-http",
    ]));

    // 503 for good: three attempts, then a clear error.
    let proxy = FaultProxy::start(
        &registry.addr,
        Fault::Status {
            code: 503,
            times: usize::MAX,
            path_contains: Some("/manifests/".into()),
        },
    );
    let err = fails(&pull(&format!("{}/app:1.0", proxy.addr), &[]));
    assert!(
        err.contains("503 Service Unavailable") && err.contains("after 3 attempts"),
        "{err}"
    );
    let manifest_gets = proxy
        .requests()
        .iter()
        .filter(|r| r.path.contains("/manifests/"))
        .count();
    assert_eq!(manifest_gets, 3, "bounded retries");

    // A registry that stops answering: the timeout bounds the wait.
    let proxy = FaultProxy::start(
        &registry.addr,
        Fault::Stall {
            path_contains: Some("/manifests/".into()),
        },
    );
    let started = Instant::now();
    let err = fails(&pull(
        &format!("{}/app:1.0", proxy.addr),
        &["--timeout", "0.5"],
    ));
    assert!(err.contains("stalled"), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "took {:?}",
        started.elapsed()
    );

    // A blob cut short is refused, and no layout is left behind.
    let proxy = FaultProxy::start(
        &registry.addr,
        Fault::TruncateBody {
            path_contains: Some("/blobs/".into()),
        },
    );
    let err = fails(&pull(&format!("{}/app:1.0", proxy.addr), &[]));
    assert!(err.contains("blob"), "{err}");
    assert!(!dest.exists(), "a failed pull writes nothing");

    // TLS spoken to a plain-HTTP registry: says so, suggests --plain-http.
    let err = fails(&worldfit(&[
        "pull",
        &format!("{}/app:1.0", registry.addr),
        "--layout",
        dest.to_str().unwrap(),
        "--timeout",
        "2",
    ]));
    assert!(err.contains("--plain-http"), "{err}");
}

#[test]
fn credentials_come_from_the_docker_config() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = two_build_layout(tmp.path());
    let source = format!("{}:1.0", layout.display());
    let registry = Registry::start_with_auth("alice", "s3cret");
    let reference = format!("{}/app:1.0", registry.addr);

    let err = fails(&worldfit(&["push", &source, &reference, "--plain-http"]));
    assert!(err.contains("401 Unauthorized"), "{err}");

    let config = tmp.path().join("docker");
    std::fs::create_dir(&config).unwrap();
    std::fs::write(
        config.join("config.json"),
        format!(
            r#"{{"auths":{{"{}":{{"auth":"{}"}}}}}}"#,
            registry.addr,
            common::registry::basic_auth("alice", "s3cret").trim_start_matches("Basic ")
        ),
    )
    .unwrap();
    ok(&run(worldfit_command()
        .env("DOCKER_CONFIG", &config)
        .args(["push", &source, &reference, "--plain-http"])));
    let listed = json(&run(worldfit_command()
        .env("DOCKER_CONFIG", &config)
        .args(["inspect", &reference, "--plain-http", "--json"])));
    assert_eq!(listed["entries"].as_array().unwrap().len(), 2);
}

fn wkg(args: &[&str]) -> Output {
    let empty = tempfile::tempdir().unwrap();
    run(Command::new("wkg")
        .env("DOCKER_CONFIG", empty.path())
        .env("RUST_BACKTRACE", "0")
        .env_remove("WKG_OCI_USERNAME")
        .env_remove("WKG_OCI_PASSWORD")
        .env_remove("WKG_OCI_INSECURE")
        .args(args))
}

#[test]
fn wkg_and_worldfit_read_each_others_pushes() {
    let tmp = tempfile::tempdir().unwrap();
    let registry = Registry::start();
    let hello = fixture("hello-cli.wasm");

    // wkg pushes a bare manifest (no index, no os.features, no target):
    // worldfit pulls it and inspect works the target out from the config's
    // imports and exports.
    let reference = format!("{}/wkg/hello:v1", registry.addr);
    ok(&wkg(&[
        "oci",
        "push",
        "--insecure",
        &registry.addr,
        &reference,
        hello.to_str().unwrap(),
    ]));
    let pulled = tmp.path().join("from-wkg");
    let report = json(&worldfit(&[
        "pull",
        &reference,
        "--layout",
        pulled.to_str().unwrap(),
        "--plain-http",
        "--json",
    ]));
    assert_eq!(
        report["media_type"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    let listed = json(&worldfit(&[
        "inspect",
        &format!("{}:v1", pulled.display()),
        "--json",
    ]));
    let entry = &listed["entries"][0];
    assert_eq!(entry["declared"], "config", "{listed}");
    assert_eq!(entry["target"], "wasi:cli/command@0.2.6");
    assert_eq!(entry["platform"]["os"], "wasip2");
    let remote = json(&worldfit(&[
        "inspect",
        &reference,
        "--plain-http",
        "--json",
    ]));
    assert_eq!(remote["entries"], listed["entries"]);

    // worldfit pushes an index; wkg pulls the wasip2 entry by its digest
    // (wkg picks index entries by the machine's own platform, so an index
    // of wasm builds only is read entry by entry) and gets the same bytes.
    let layout = two_build_layout(tmp.path());
    let reference = format!("{}/worldfit/hello:1.0", registry.addr);
    ok(&worldfit(&[
        "push",
        &format!("{}:1.0", layout.display()),
        &reference,
        "--plain-http",
    ]));
    let local = json(&worldfit(&[
        "inspect",
        &format!("{}:1.0", layout.display()),
        "--json",
    ]));
    let manifest = local["entries"][0]["digest"].as_str().unwrap();
    let out = tmp.path().join("from-worldfit.wasm");
    ok(&wkg(&[
        "oci",
        "pull",
        "--insecure",
        &registry.addr,
        &format!("{}/worldfit/hello@{manifest}", registry.addr),
        "-o",
        out.to_str().unwrap(),
    ]));
    assert_eq!(std::fs::read(&out).unwrap(), std::fs::read(&hello).unwrap());
}

#[test]
fn bad_layouts_push_nothing_and_are_left_untouched() {
    let tmp = tempfile::tempdir().unwrap();
    let layout = two_build_layout(tmp.path());
    let registry = Registry::start();
    let reference = format!("{}/app:1.0", registry.addr);
    ok(&worldfit(&[
        "push",
        &format!("{}:1.0", layout.display()),
        &reference,
        "--plain-http",
    ]));

    // A layout with a tampered layer: push refuses before sending anything.
    let tampered = tmp.path().join("tampered");
    ok(&worldfit(&[
        "pull",
        &reference,
        "--layout",
        tampered.to_str().unwrap(),
        "--plain-http",
    ]));
    let listed = json(&worldfit(&[
        "inspect",
        &format!("{}:1.0", tampered.display()),
        "--json",
    ]));
    let manifest = listed["entries"][0]["digest"].as_str().unwrap().to_string();
    let m: serde_json::Value = serde_json::from_slice(
        &std::fs::read(tampered.join("blobs/sha256").join(&manifest[7..])).unwrap(),
    )
    .unwrap();
    let layer = m["layers"][0]["digest"].as_str().unwrap();
    let layer_path = tampered.join("blobs/sha256").join(&layer[7..]);
    let mut bytes = std::fs::read(&layer_path).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&layer_path, bytes).unwrap();
    let other = format!("{}/other:1.0", registry.addr);
    let err = fails(&worldfit(&[
        "push",
        &format!("{}:1.0", tampered.display()),
        &other,
        "--plain-http",
    ]));
    assert!(err.contains("does not match its digest"), "{err}");
    let (status, _, _) = registry.request("GET", "/v2/other/tags/list", &[]);
    assert_eq!(status, 404, "nothing was pushed");

    // A layout whose index.json is corrupt: pull refuses and leaves it as it was.
    let corrupt = tmp.path().join("corrupt");
    ok(&worldfit(&[
        "pull",
        &reference,
        "--layout",
        corrupt.to_str().unwrap(),
        "--plain-http",
    ]));
    std::fs::write(corrupt.join("index.json"), b"{\"schemaVersion\":2,\"manif").unwrap();
    let before = files(&corrupt);
    let err = fails(&worldfit(&[
        "pull",
        &reference,
        "--layout",
        corrupt.to_str().unwrap(),
        "--tag",
        "two",
        "--plain-http",
    ]));
    assert!(err.contains("index.json"), "{err}");
    assert_eq!(files(&corrupt), before);

    // Not a layout, not a registry name.
    let err = fails(&worldfit(&["inspect", "no-such-thing:1.0"]));
    assert!(err.contains("no-such-thing"), "{err}");
    let err = fails(&worldfit(&[
        "push",
        tmp.path().join("nope").to_str().unwrap(),
        &reference,
    ]));
    assert!(err.contains("not an OCI layout"), "{err}");
}
