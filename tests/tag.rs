//! `worldfit tag`: OCI image layouts with one entry per platform.

mod common;

use common::{Synth, fixture, wat_module, worldfit_command};
use serde_json::Value;
use std::path::Path;

fn run(args: &[&str], epoch: Option<&str>) -> std::process::Output {
    let mut cmd = worldfit_command();
    cmd.args(args);
    match epoch {
        Some(e) => cmd.env("SOURCE_DATE_EPOCH", e),
        None => cmd.env_remove("SOURCE_DATE_EPOCH"),
    };
    cmd.output().unwrap()
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

fn blob(layout: &Path, digest: &str) -> Value {
    json(
        &layout
            .join("blobs/sha256")
            .join(digest.strip_prefix("sha256:").unwrap()),
    )
}

/// The tag's image index in a layout.
fn tagged(layout: &Path, tag: &str) -> Value {
    let top = json(&layout.join("index.json"));
    let entry = top["manifests"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
        .unwrap_or_else(|| panic!("no tag {tag} in {top}"));
    assert_eq!(
        entry["mediaType"],
        "application/vnd.oci.image.index.v1+json"
    );
    blob(layout, entry["digest"].as_str().unwrap())
}

struct Inputs {
    _synth: Synth,
    p2: String,
    p3: String,
    p1: String,
    http: String,
}

fn inputs() -> Inputs {
    let synth = Synth::new();
    let p3 = synth.component_file("cli-p3").display().to_string();
    let p1 = synth.dir.path().join("hello-p1.wasm");
    std::fs::write(&p1, wat_module("wasip1-hello.wat")).unwrap();
    Inputs {
        p2: fixture("hello-cli.wasm").display().to_string(),
        p3,
        p1: p1.display().to_string(),
        http: fixture("http-handler.wasm").display().to_string(),
        _synth: synth,
    }
}

#[test]
fn tag_writes_one_entry_per_platform_in_the_cncf_layout() {
    let i = inputs();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oci");
    let out = run(
        &[
            "tag",
            &i.p2,
            &i.p3,
            &i.p1,
            "--layout",
            layout.to_str().unwrap(),
            "--tag",
            "1.0",
        ],
        Some("0"),
    );
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        json(&layout.join("oci-layout"))["imageLayoutVersion"],
        "1.0.0"
    );
    let index = tagged(&layout, "1.0");
    let entries = index["manifests"].as_array().unwrap();
    let oses: Vec<&str> = entries
        .iter()
        .map(|e| e["platform"]["os"].as_str().unwrap())
        .collect();
    assert_eq!(oses, ["wasip2", "wasip3", "wasip1"]);
    assert_eq!(entries[0]["platform"]["architecture"], "wasm");
    assert_eq!(
        entries[0]["platform"]["os.features"][0],
        "wasi:cli/command@0.2.6"
    );
    assert_eq!(
        entries[1]["platform"]["os.features"][0],
        "wasi:cli/command@0.3.0"
    );
    let manifest = blob(&layout, entries[0]["digest"].as_str().unwrap());
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    assert_eq!(manifest["layers"][0]["mediaType"], "application/wasm");
    let config = blob(&layout, manifest["config"]["digest"].as_str().unwrap());
    assert_eq!(config["created"], "1970-01-01T00:00:00Z");
    assert_eq!(
        (config["architecture"].as_str(), config["os"].as_str()),
        (Some("wasm"), Some("wasip2"))
    );
    assert_eq!(config["layerDigests"][0], manifest["layers"][0]["digest"]);
    assert_eq!(config["component"]["target"], "wasi:cli/command@0.2.6");
    assert!(
        config["component"]["imports"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "wasi:cli/environment@0.2.6")
    );
    assert_eq!(config["component"]["exports"][0], "wasi:cli/run@0.2.0");
    // The layer is the input, byte for byte.
    let layer = layout.join("blobs/sha256").join(
        manifest["layers"][0]["digest"]
            .as_str()
            .unwrap()
            .strip_prefix("sha256:")
            .unwrap(),
    );
    assert_eq!(std::fs::read(layer).unwrap(), std::fs::read(&i.p2).unwrap());
    // A module's config has no component section.
    let m = blob(&layout, entries[2]["digest"].as_str().unwrap());
    assert!(
        blob(&layout, m["config"]["digest"].as_str().unwrap())
            .get("component")
            .is_none()
    );
}

#[test]
fn tag_is_reproducible() {
    let i = inputs();
    let dir = tempfile::tempdir().unwrap();
    let digests: Vec<String> = ["a", "b"]
        .iter()
        .map(|name| {
            let layout = dir.path().join(name);
            let out = run(
                &[
                    "tag",
                    &i.p2,
                    &i.p1,
                    "--layout",
                    layout.to_str().unwrap(),
                    "--json",
                ],
                Some("1700000000"),
            );
            assert_eq!(out.status.code(), Some(0));
            let report: Value = serde_json::from_slice(&out.stdout).unwrap();
            report["digest"].as_str().unwrap().to_string()
        })
        .collect();
    assert_eq!(digests[0], digests[1]);
    // Without SOURCE_DATE_EPOCH there is no `created`, so still reproducible.
    let a = run(
        &[
            "tag",
            &i.p2,
            "--layout",
            dir.path().join("c").to_str().unwrap(),
            "--json",
        ],
        None,
    );
    let b = run(
        &[
            "tag",
            &i.p2,
            "--layout",
            dir.path().join("d").to_str().unwrap(),
            "--json",
        ],
        None,
    );
    let digest = |o: &std::process::Output| {
        serde_json::from_slice::<Value>(&o.stdout).unwrap()["digest"].clone()
    };
    assert_eq!(digest(&a), digest(&b));
}

#[test]
fn adding_keeps_other_entries_and_replaces_the_same_platform() {
    let i = inputs();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oci");
    let l = layout.to_str().unwrap();
    assert_eq!(
        run(&["tag", &i.p2, "--layout", l, "--tag", "v1"], None)
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(&["tag", &i.p2, "--layout", l, "--tag", "other"], None)
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        run(&["tag", &i.p3, "--layout", l, "--tag", "v1"], None)
            .status
            .code(),
        Some(0)
    );
    let oses = |tag: &str| -> Vec<String> {
        tagged(&layout, tag)["manifests"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["platform"]["os"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(oses("v1"), ["wasip2", "wasip3"]);
    assert_eq!(oses("other"), ["wasip2"]);
    // A wasip2 build that needs other features (an HTTP handler) sits beside
    // the first: os.features are part of the platform.
    assert_eq!(
        run(&["tag", &i.http, "--layout", l, "--tag", "v1"], None)
            .status
            .code(),
        Some(0)
    );
    let index = tagged(&layout, "v1");
    assert_eq!(oses("v1"), ["wasip2", "wasip3", "wasip2"]);
    assert_eq!(
        index["manifests"][2]["platform"]["os.features"][0],
        "wasi:http/proxy@0.2.12"
    );
    // A rebuild with the same platform and features replaces its entry in
    // place (here: the same build, created at another time).
    let first = index["manifests"][0]["digest"].clone();
    assert_eq!(
        run(&["tag", &i.p2, "--layout", l, "--tag", "v1"], Some("86400"))
            .status
            .code(),
        Some(0)
    );
    let index = tagged(&layout, "v1");
    assert_eq!(index["manifests"].as_array().unwrap().len(), 3);
    assert_ne!(index["manifests"][0]["digest"], first);
    assert_eq!(index["manifests"][0]["platform"]["os"], "wasip2");
    // Two inputs for the same platform and features are refused.
    let twice = run(&["tag", &i.p2, &i.p2, "--layout", l, "--tag", "v2"], None);
    assert_eq!(twice.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&twice.stderr);
    assert!(
        stderr.contains(
            "same platform `wasip2/wasm` with the same os.features (wasi:cli/command@0.2.6)"
        ),
        "{stderr}"
    );
}

#[test]
fn a_native_image_in_the_index_is_kept() {
    let i = inputs();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oci");
    let l = layout.to_str().unwrap();
    assert_eq!(
        run(&["tag", &i.p2, "--layout", l, "--tag", "app"], None)
            .status
            .code(),
        Some(0)
    );
    // Put a linux/arm64/v8 entry into the tag's index, as another tool would.
    let top_path = layout.join("index.json");
    let mut top = json(&top_path);
    let mut index = tagged(&layout, "app");
    index["manifests"].as_array_mut().unwrap().insert(
        0,
        serde_json::json!({"mediaType": "application/vnd.oci.image.manifest.v1+json",
          "digest": format!("sha256:{}", "a".repeat(64)), "size": 7,
          "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}}),
    );
    let bytes = serde_json::to_vec(&index).unwrap();
    let digest = worldfit::cache::sha256_hex(&bytes);
    std::fs::write(layout.join("blobs/sha256").join(&digest), &bytes).unwrap();
    top["manifests"][0]["digest"] = format!("sha256:{digest}").into();
    top["manifests"][0]["size"] = bytes.len().into();
    std::fs::write(&top_path, serde_json::to_vec(&top).unwrap()).unwrap();

    assert_eq!(
        run(
            &["tag", &i.p3, &i.http, "--layout", l, "--tag", "app"],
            None
        )
        .status
        .code(),
        Some(0)
    );
    let entries = tagged(&layout, "app")["manifests"]
        .as_array()
        .unwrap()
        .clone();
    // The native entry stays first; the HTTP handler needs other features
    // than the first wasip2 build, so it is added beside it.
    assert_eq!(entries.len(), 4);
    assert_eq!(
        entries[0]["platform"],
        serde_json::json!({"architecture": "arm64", "os": "linux", "variant": "v8", "os.features": []})
    );
    assert_eq!(
        entries[1]["platform"]["os.features"][0],
        "wasi:cli/command@0.2.6"
    );
    assert_eq!(entries[2]["platform"]["os"], "wasip3");
    assert_eq!(
        entries[3]["platform"]["os.features"][0],
        "wasi:http/proxy@0.2.12"
    );
}

#[test]
fn failures_leave_the_layout_as_it_was() {
    let i = inputs();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oci");
    let l = layout.to_str().unwrap();
    let bad = dir.path().join("bad.wasm");
    std::fs::write(&bad, b"not wasm").unwrap();
    // A failed first run leaves no layout, and nothing beside it.
    let out = run(&["tag", &i.p2, bad.to_str().unwrap(), "--layout", l], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with(&format!(
        "error: `{}` is not a WebAssembly binary",
        bad.display()
    )));
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        1,
        "only bad.wasm is there"
    );
    // Two builds for one platform (os and os.features): refused, nothing
    // written.
    let out = run(&["tag", &i.p2, &i.p2, "--layout", l], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(!layout.exists());
    // With a layout in place, a failing run leaves index.json byte for byte.
    assert_eq!(
        run(&["tag", &i.p2, "--layout", l], None).status.code(),
        Some(0)
    );
    let before = std::fs::read(layout.join("index.json")).unwrap();
    assert_eq!(
        run(&["tag", &i.p3, bad.to_str().unwrap(), "--layout", l], None)
            .status
            .code(),
        Some(2)
    );
    assert_eq!(std::fs::read(layout.join("index.json")).unwrap(), before);
    // A directory that isn't a layout is not written into.
    let plain = dir.path().join("plain");
    std::fs::create_dir(&plain).unwrap();
    let out = run(&["tag", &i.p2, "--layout", plain.to_str().unwrap()], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not an OCI layout"));
    assert_eq!(std::fs::read_dir(&plain).unwrap().count(), 0);
}

#[test]
fn a_digest_that_escapes_the_layout_is_refused() {
    let i = inputs();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oci");
    let l = layout.to_str().unwrap();
    assert_eq!(
        run(&["tag", &i.p2, "--layout", l, "--tag", "x"], None)
            .status
            .code(),
        Some(0)
    );
    let top_path = layout.join("index.json");
    let mut top = json(&top_path);
    top["manifests"][0]["digest"] = "sha256:../../../etc/passwd".into();
    std::fs::write(&top_path, serde_json::to_vec(&top).unwrap()).unwrap();
    let before = std::fs::read(&top_path).unwrap();
    let out = run(&["tag", &i.p3, "--layout", l, "--tag", "x"], None);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("malformed digest `sha256:../../../etc/passwd`"),
        "{err}"
    );
    assert_eq!(std::fs::read(&top_path).unwrap(), before);
}

/// Interop with a real peer: skopeo reads what `tag` wrote, byte for byte,
/// with the features (`scripts/test` installs skopeo).
#[test]
fn skopeo_reads_the_layout() {
    let i = inputs();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oci");
    let l = layout.to_str().unwrap();
    assert_eq!(
        run(
            &["tag", &i.p2, &i.p3, &i.p1, "--layout", l, "--tag", "1.0"],
            Some("0")
        )
        .status
        .code(),
        Some(0)
    );
    let out = std::process::Command::new("skopeo")
        .args(["inspect", "--raw", &format!("oci:{l}:1.0")])
        .output()
        .expect("skopeo is needed for the interop test: apt-get install skopeo");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let top = json(&layout.join("index.json"));
    let hex = top["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .strip_prefix("sha256:")
        .unwrap()
        .to_string();
    assert_eq!(
        out.stdout,
        std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap(),
        "skopeo returns the index as written"
    );
    let index: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        index["manifests"][1]["platform"]["os.features"][0],
        "wasi:cli/command@0.3.0"
    );
    // skopeo copies the whole index (every platform) to another layout
    // without changing a digest.
    let copy = dir.path().join("copy");
    let out = std::process::Command::new("skopeo")
        .args([
            "copy",
            "--all",
            "--preserve-digests",
            &format!("oci:{l}:1.0"),
            &format!("oci:{}:1.0", copy.display()),
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let copied = json(&copy.join("index.json"));
    assert_eq!(
        copied["manifests"][0]["digest"],
        top["manifests"][0]["digest"]
    );
    assert_eq!(tagged(&copy, "1.0"), index);
}
