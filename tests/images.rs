//! Images as the ecosystem's own tools make them (`fixtures/images/build.sh`:
//! runwasi's `oci-tar-builder`, `buildah`; `worldfit tag` and `skopeo`
//! beside them): each is judged, or refused with a reason that names what
//! worldfit saw, and gets the same answer with and without confirmation,
//! from `select`, `inspect` and `affinity` alike; from a layout, a registry
//! and containerd.
//!
//! Confirmation (the embedded wasmtime), the registry and `affinity` are
//! all part of the answer: the file needs the default features.
#![cfg(all(feature = "wasmtime", feature = "registry", feature = "kubernetes"))]

mod common;

use common::ok;

use common::registry::Registry;
use common::{fixture, worldfit_command};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// The layouts `fixtures/images/build.sh` writes, built once per run from
/// the WAT module fixture and the Rust-built component fixture.
fn images() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let module = dir.path().join("hello.wasm");
        std::fs::write(&module, common::wat_module("wasip1-hello.wat")).unwrap();
        let out = Command::new(fixture("images/build.sh"))
            .arg(dir.path().join("out"))
            .arg(&module)
            .arg(fixture("hello-cli.wasm"))
            .output()
            .unwrap();
        ok(&out);
        dir
    })
    .path()
}

fn image(name: &str) -> PathBuf {
    images().join("out").join(name)
}

/// `worldfit select SOURCE ARGS... --json`: exit code and JSON.
fn select(source: &str, args: &[&str]) -> (Option<i32>, Value) {
    let out = worldfit_command()
        .arg("select")
        .arg(source)
        .args(args)
        .arg("--json")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: stdout {stdout}\nstderr {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code(), json)
}

fn inspect(source: &str) -> Value {
    let out = worldfit_command()
        .args(["inspect", source, "--json"])
        .output()
        .unwrap();
    serde_json::from_str(&ok(&out)).unwrap()
}

fn entries(j: &Value) -> &Vec<Value> {
    j["entries"].as_array().unwrap()
}

/// The one answer an entry gets: selected with and without confirmation,
/// with the platform worked out from its binary; `inspect` agrees, and
/// `affinity` places it.
fn judged_the_same_everywhere(source: &str, os: &str, declared: &str) {
    let declared = declared.to_string();
    let (code, confirmed) = select(source, &[]);
    assert_eq!(code, Some(0), "{confirmed:#}");
    let chosen = &confirmed["selected"];
    assert_eq!(chosen["checked"], "instantiated", "{confirmed:#}");
    assert_eq!(chosen["platform"]["os"], os, "{confirmed:#}");
    let (code, features) = select(source, &["--no-confirm"]);
    assert_eq!(code, Some(0), "{features:#}");
    assert_eq!(features["selected"]["digest"], chosen["digest"]);
    assert_eq!(features["selected"]["platform"], chosen["platform"]);
    let listed = inspect(source);
    let entry = entries(&listed)
        .iter()
        .find(|e| e["digest"] == chosen["digest"])
        .unwrap();
    assert_eq!(entry["wasm"], true);
    assert_eq!(entry["declared"], *declared, "{listed:#}");
    assert_eq!(entry["platform"], chosen["platform"]);
    assert!(entry.get("unjudged").is_none(), "{listed:#}");
    let placed = worldfit_command()
        .args(["affinity", source, "--json"])
        .output()
        .unwrap();
    let placed = ok(&placed);
    assert!(placed.contains(&format!("/os.{os}\"")), "{placed}");
}

#[test]
fn runwasi_images_are_judged_by_their_layer_whatever_platform_they_claim() {
    // Case image-runwasi-layer-type: `wasip1/wasm`, runwasi's component
    // layer type holding a core module. It was exit 2 with confirmation and
    // selected without it.
    let module = format!("{}:1.0", image("runwasi-module").display());
    judged_the_same_everywhere(&module, "wasip1", "index");
    // The same tool labels a component `wasip1/wasm` too.
    taken_at_its_word_then_relabelled(&format!("{}:1.0", image("runwasi-component").display()));
    // runwasi's module layer type, and wasm-to-oci's content layer type.
    let module_type = format!("{}:1.0", image("runwasi-module-type").display());
    judged_the_same_everywhere(&module_type, "wasip1", "index");
    let content = format!("{}:1.0", image("content-layer").display());
    taken_at_its_word_then_relabelled(&content);
}

/// A component under `wasip1/wasm`: by its features (the index alone) it is
/// taken at its word; confirmation decodes it, selects the same entry and
/// says what it is, warm (with the fit record of a first run) as cold.
fn taken_at_its_word_then_relabelled(source: &str) {
    let (code, quick) = select(source, &["--no-confirm"]);
    assert_eq!(code, Some(0), "{quick:#}");
    assert_eq!(quick["selected"]["platform"]["os"], "wasip1");
    for _ in ["cold", "warm"] {
        let (code, confirmed) = select(source, &[]);
        assert_eq!(code, Some(0), "{confirmed:#}");
        assert_eq!(confirmed["selected"]["digest"], quick["selected"]["digest"]);
        assert_eq!(confirmed["selected"]["checked"], "instantiated");
        assert_eq!(confirmed["selected"]["platform"]["os"], "wasip2");
        assert_eq!(
            entries(&confirmed)[0]["reasons"][1],
            "its index says wasip1, but its binary is a wasip2 component",
            "{confirmed:#}"
        );
    }
}

#[test]
fn a_runwasi_layer_under_a_wasip2_platform_is_wasm() {
    // Case image-runwasi-layer-type, `layout-wasip2`: the same layer type
    // under `wasip2/wasm` was "not a wasm platform".
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("p2");
    common::copy_dir(&image("runwasi-component"), &dir);
    let index_path = dir.join("index.json");
    let index = std::fs::read_to_string(&index_path).unwrap();
    assert!(index.contains(r#""os":"wasip1""#), "{index}");
    std::fs::write(
        &index_path,
        index.replace(r#""os":"wasip1""#, r#""os":"wasip2""#),
    )
    .unwrap();
    judged_the_same_everywhere(&format!("{}:1.0", dir.display()), "wasip2", "layer");
}

#[test]
fn from_scratch_images_are_judged_by_their_entrypoint_file() {
    // Case image-wasi-wasm-tar-layer: `wasi/wasm`, one tar+gzip layer,
    // `Entrypoint: ["/hello.wasm"]`. It was "not a wasm platform".
    for name in [
        "buildah-index",
        "buildah-tar",
        "buildah-gzip",
        "buildah-zstd",
    ] {
        let source = format!("{}:1.0", image(name).display());
        judged_the_same_everywhere(&source, "wasip1", "filesystem");
    }
    let layer_types: Vec<String> = ["buildah-tar", "buildah-gzip", "buildah-zstd"]
        .iter()
        .map(|name| {
            let dir = image(name);
            let index: Value =
                serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
            let digest = index["manifests"][0]["digest"].as_str().unwrap();
            let manifest: Value = serde_json::from_slice(
                &std::fs::read(dir.join("blobs/sha256").join(&digest[7..])).unwrap(),
            )
            .unwrap();
            manifest["layers"][0]["mediaType"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(
        layer_types,
        [
            "application/vnd.oci.image.layer.v1.tar",
            "application/vnd.oci.image.layer.v1.tar+gzip",
            "application/vnd.oci.image.layer.v1.tar+zstd"
        ]
    );
    // Beside a linux/amd64 image, the wasm one is chosen and the other
    // explained.
    let source = format!("{}:1.0", image("buildah-multi").display());
    let (code, j) = select(&source, &[]);
    assert_eq!(code, Some(0), "{j:#}");
    let linux = entries(&j)
        .iter()
        .find(|e| e["platform"]["os"] == "linux")
        .unwrap();
    assert_eq!(linux["verdict"], "not-wasm");
    assert_eq!(linux["reasons"][0], "not a wasm platform");
}

/// Copies every blob of `layouts` into `out` and writes one index (tag
/// `1.0`) listing each layout's manifests, with the platform its own index
/// gives them: one image with a build per format.
fn merge(out: &Path, layouts: &[PathBuf]) -> Vec<Value> {
    let blobs = out.join("blobs/sha256");
    std::fs::create_dir_all(&blobs).unwrap();
    let mut manifests = Vec::new();
    for dir in layouts {
        for e in std::fs::read_dir(dir.join("blobs/sha256")).unwrap() {
            let e = e.unwrap();
            std::fs::copy(e.path(), blobs.join(e.file_name())).unwrap();
        }
        let top: Value =
            serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
        let mut stack: Vec<Value> = entries_of(&top);
        while let Some(mut d) = stack.pop() {
            let media_type = d["mediaType"].as_str().unwrap_or_default().to_string();
            let digest = d["digest"].as_str().unwrap().to_string();
            if media_type.ends_with("index.v1+json") {
                let nested: Value = serde_json::from_slice(
                    &std::fs::read(dir.join("blobs/sha256").join(&digest[7..])).unwrap(),
                )
                .unwrap();
                stack.extend(entries_of(&nested));
            } else {
                d.as_object_mut().unwrap().remove("annotations");
                manifests.push(d);
            }
        }
    }
    let index = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": manifests,
    });
    let bytes = serde_json::to_vec(&index).unwrap();
    let digest = format!("sha256:{}", worldfit::cache::sha256_hex(&bytes));
    std::fs::write(blobs.join(&digest[7..]), &bytes).unwrap();
    let top = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.index.v1+json",
            "digest": digest,
            "size": bytes.len(),
            "annotations": {"org.opencontainers.image.ref.name": "1.0"},
        }],
    });
    std::fs::write(out.join("index.json"), serde_json::to_vec(&top).unwrap()).unwrap();
    std::fs::write(out.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    manifests
}

fn entries_of(index: &Value) -> Vec<Value> {
    let mut v = index["manifests"].as_array().unwrap().clone();
    v.reverse();
    v
}

/// `worldfit tag` of the WASI 0.2 and 0.3 fixtures into `dir`.
fn tagged(dir: &Path) -> PathBuf {
    let layout = dir.join("tagged");
    ok(&worldfit_command()
        .env("SOURCE_DATE_EPOCH", "0")
        .args(["tag", "--tag", "1.0", "--layout"])
        .arg(&layout)
        .arg(fixture("hello-cli.wasm"))
        .arg(fixture("p3-hello.wasm"))
        .output()
        .unwrap());
    layout
}

/// Asserts what the mixed image's selection says: the WASI 0.2 build is
/// chosen (every feature at *yes*; the 0.3 build needs WASI 0.3.2 of a host
/// with 0.3.0, *maybe*), and every other entry is explained.
fn mixed_answer(j: &Value, digests: &Digests) {
    assert_eq!(j["selected"]["digest"], digests.p2, "{j:#}");
    assert_eq!(j["selected"]["checked"], "instantiated", "{j:#}");
    let by = |d: &str| {
        entries(j)
            .iter()
            .find(|e| e["digest"] == d)
            .unwrap()
            .clone()
    };
    assert_eq!(by(&digests.linux)["verdict"], "not-wasm");
    let runwasi = by(&digests.runwasi);
    assert_eq!(runwasi["verdict"], "compatible", "{j:#}");
    assert_eq!(runwasi["platform"]["os"], "wasip1");
    assert_eq!(runwasi["reasons"][0], "wasip2 is preferred", "{j:#}");
    let p3 = by(&digests.p3);
    assert_eq!(p3["verdict"], "maybe", "{j:#}");
    assert!(
        p3["reasons"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r == "a better-fitting entry was selected"),
        "{j:#}"
    );
    // Every other wasm entry runs here.
    assert_eq!(entries(j).len(), digests.every.len(), "{j:#}");
    for e in entries(j) {
        if e["digest"] == digests.linux || e["digest"] == digests.spin {
            continue;
        }
        let verdict = e["verdict"].as_str().unwrap();
        assert!(
            ["selected", "compatible", "maybe"].contains(&verdict),
            "{e:#}"
        );
    }
    let spin = by(&digests.spin);
    assert_eq!(spin["verdict"], "incompatible", "{j:#}");
    assert!(
        spin["reasons"][0]
            .as_str()
            .unwrap()
            .contains("2 wasm layers"),
        "{j:#}"
    );
}

struct Digests {
    /// Every entry, one per format.
    every: Vec<String>,
    linux: String,
    runwasi: String,
    p2: String,
    p3: String,
    spin: String,
}

/// A layout with one entry per format: `linux/amd64`, buildah's `wasi/wasm`
/// images (tar, tar+gzip, tar+zstd), runwasi's `wasip1/wasm` ones (a module
/// and a component in its component layer type, a module in its module
/// layer type, a component in wasm-to-oci's content layer type), worldfit's
/// p2 and p3 builds, and an application of two wasm layers (as Spin writes
/// them), which worldfit can't judge as one binary.
fn mixed(dir: &Path) -> (PathBuf, Digests) {
    let spin_dir = dir.join("spin");
    let work = dir.join("spin-work");
    std::fs::create_dir_all(&work).unwrap();
    let tar = work.join("spin.tar");
    let component = fixture("hello-cli.wasm");
    let layer = format!(
        "application/vnd.wasm.content.layer.v1+wasm={}",
        component.display()
    );
    let module = images().join("hello.wasm");
    let second = format!(
        "application/vnd.wasm.content.layer.v1+wasm={}",
        module.display()
    );
    ok(&Command::new("oci-tar-builder")
        .args(["-n", "spin-app", "-r", "example.com/worldfit", "-t", "1.0"])
        .args(["-l", &layer, "-l", &second, "-o"])
        .arg(&tar)
        .output()
        .unwrap());
    std::fs::create_dir_all(&spin_dir).unwrap();
    ok(&Command::new("tar")
        .arg("-xf")
        .arg(&tar)
        .arg("-C")
        .arg(&spin_dir)
        .output()
        .unwrap());
    // oci-tar-builder says `wasip1/wasm` for this one too; make it the
    // older `wasi/wasm` spelling, so it can't be index-decided.
    let index_path = spin_dir.join("index.json");
    let index = std::fs::read_to_string(&index_path).unwrap();
    std::fs::write(
        &index_path,
        index.replace(r#""os":"wasip1""#, r#""os":"wasi""#),
    )
    .unwrap();
    let spin_index: Value = serde_json::from_str(&index).unwrap();
    let spin = spin_index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let out = dir.join("mixed");
    let listed = merge(
        &out,
        &[
            image("buildah-multi"),
            image("buildah-tar"),
            image("buildah-zstd"),
            image("runwasi-module"),
            image("runwasi-component"),
            image("runwasi-module-type"),
            image("content-layer"),
            tagged(dir),
            spin_dir,
        ],
    );
    let find = |f: &dyn Fn(&Value) -> bool| {
        listed
            .iter()
            .find(|e| f(&e["platform"]))
            .unwrap_or_else(|| panic!("{listed:#?}"))["digest"]
            .as_str()
            .unwrap()
            .to_string()
    };
    let digests = Digests {
        linux: find(&|p| p["os"] == "linux"),
        runwasi: find(&|p| p["os"] == "wasip1"),
        every: listed
            .iter()
            .map(|e| e["digest"].as_str().unwrap().to_string())
            .collect(),
        p2: find(&|p| p["os"] == "wasip2"),
        p3: find(&|p| p["os"] == "wasip3"),
        spin,
    };
    (out, digests)
}

#[test]
fn a_mixed_index_selects_the_best_build_and_explains_the_rest() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, digests) = mixed(tmp.path());
    let source = format!("{}:1.0", layout.display());
    let (code, j) = select(&source, &[]);
    assert_eq!(code, Some(0), "{j:#}");
    assert_eq!(entries(&j).len(), 11, "{j:#}");
    mixed_answer(&j, &digests);
    // Without confirmation, the same choice.
    let (code, quick) = select(&source, &["--no-confirm"]);
    assert_eq!(code, Some(0));
    assert_eq!(quick["selected"]["digest"], digests.p2);
    // Preferring WASI 0.1 takes runwasi's build or buildah's, confirmed.
    let (code, p1) = select(&source, &["--prefer", "p1"]);
    assert_eq!(code, Some(0), "{p1:#}");
    assert_eq!(p1["selected"]["platform"]["os"], "wasip1");
    assert_eq!(p1["selected"]["checked"], "instantiated");
    // inspect says why the application isn't judged.
    let listed = inspect(&source);
    let spin = entries(&listed)
        .iter()
        .find(|e| e["digest"] == digests.spin)
        .unwrap();
    assert_eq!(spin["wasm"], true);
    assert!(
        spin["unjudged"]
            .as_str()
            .unwrap()
            .contains("application/vnd.wasm.content.layer.v1+wasm"),
        "{listed:#}"
    );

    // affinity places the mixed image, and says why it can't place the
    // application alone.
    ok(&worldfit_command()
        .args(["affinity", &source])
        .output()
        .unwrap());
    let spin = format!("{}:1.0", tmp.path().join("spin").display());
    let refused = worldfit_command()
        .args(["affinity", &spin])
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("(not judged: it has 2 wasm layers"),
        "{stderr}"
    );

    // The same through a registry (skopeo copies every platform).
    let registry = Registry::start();
    let pushed = Command::new("skopeo")
        .args(["copy", "--all", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:1.0", layout.display()))
        .arg(format!("docker://{}/mixed:1.0", registry.addr))
        .output()
        .unwrap();
    ok(&pushed);
    let reference = format!("{}/mixed:1.0", registry.addr);
    let (code, j) = select(&reference, &["--plain-http"]);
    assert_eq!(code, Some(0), "{j:#}");
    mixed_answer(&j, &digests);
}

#[cfg(feature = "containerd")]
#[test]
fn a_mixed_index_in_containerd_gets_the_same_answer() {
    let tmp = tempfile::tempdir().unwrap();
    let (layout, digests) = mixed(tmp.path());
    let tar = tmp.path().join("mixed.tar");
    common::containerd::layout_tar(&layout, &tar);
    let c = common::containerd::Containerd::start();
    ok(&c.ctr(&[
        "images",
        "import",
        "--all-platforms",
        "--no-unpack",
        "--base-name",
        "docker.io/library/mixed",
        tar.to_str().unwrap(),
    ]));
    let out = worldfit_command()
        .args([
            "select",
            "containerd://docker.io/library/mixed:1.0",
            "--json",
        ])
        .arg("--containerd-address")
        .arg(&c.socket)
        .output()
        .unwrap();
    let j: Value = serde_json::from_str(&ok(&out)).unwrap();
    mixed_answer(&j, &digests);
}
