//! `worldfit select` over layouts and a real registry: ranking, the
//! explanation of every entry, confirmation with fallback when an index's
//! features lie, integrity failures that abort, registry faults, and the
//! bytes a selection fetches.
#![cfg(all(feature = "registry", feature = "wasmtime"))]

mod common;

use common::oci::{artifact, hello, layout, wasip1_hello};
use common::registry::{Fault, FaultProxy, Registry};
use common::{Synth, worldfit_command};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use worldfit::oci::artifact::{Blob, Descriptor};
use worldfit::oci::layout::{Index, write_tagged};
use worldfit::oci::{INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE};
use worldfit::platform::Platform;

// `select --json`, pinned as docs/JSON.md documents it.
#[derive(serde::Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct SelectJson {
    source: String,
    digest: String,
    host: String,
    selected: Option<ChosenJson>,
    entries: Vec<EntryJson>,
}

#[derive(serde::Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ChosenJson {
    digest: String,
    platform: Option<serde_json::Value>,
    checked: String,
}

#[derive(serde::Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct EntryJson {
    digest: String,
    platform: Option<Platform>,
    verdict: String,
    reasons: Vec<String>,
    declared: String,
    checked: String,
    level: Option<String>,
}

fn run(cmd: &mut Command) -> Output {
    cmd.output().expect("the command runs")
}

fn select(args: &[&str]) -> (Option<i32>, SelectJson, String) {
    let out = run(worldfit_command().arg("select").args(args).arg("--json"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let json = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: stdout {stdout}\nstderr {stderr}"));
    (out.status.code(), json, stderr)
}

/// Asserts exit 2 with one `error:` line and returns stderr.
fn fails(args: &[&str]) -> String {
    let out = run(worldfit_command().arg("select").args(args));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "stderr: {stderr}");
    assert_eq!(stderr.matches("error:").count(), 1, "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(out.stdout.is_empty());
    stderr
}

/// A `linux/amd64` image: a config and a manifest with no layers.
fn linux_image() -> (Vec<Blob>, Descriptor) {
    let config = Blob::new(
        "application/vnd.oci.image.config.v1+json",
        br#"{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}"#
            .to_vec(),
    );
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": MANIFEST_MEDIA_TYPE,
        "config": config.descriptor,
        "layers": [],
    });
    let manifest = Blob::new(MANIFEST_MEDIA_TYPE, serde_json::to_vec(&manifest).unwrap());
    let mut entry = manifest.descriptor.clone();
    entry.platform = Some(Platform {
        architecture: "amd64".into(),
        os: "linux".into(),
        os_version: None,
        os_features: vec![],
        variant: None,
    });
    (vec![config, manifest], entry)
}

/// A layout with `linux/amd64`, `wasip1`, `wasip2` and `wasip3` entries.
fn four_platforms(dir: &Path) -> (PathBuf, Vec<String>) {
    let synth = Synth::new();
    let (p1, p2, p3) = (wasip1_hello(), hello(), artifact(synth.component("cli-p3")));
    let (linux_blobs, linux) = linux_image();
    let entries = vec![
        linux.clone(),
        p1.entry.clone(),
        p2.entry.clone(),
        p3.entry.clone(),
    ];
    let digests = entries.iter().map(|e| e.digest.clone()).collect();
    (layout(dir, &[&p1, &p2, &p3], entries, linux_blobs), digests)
}

fn verdicts(j: &SelectJson) -> Vec<&str> {
    j.entries.iter().map(|e| e.verdict.as_str()).collect()
}

#[test]
fn ranks_newest_wasi_first_and_explains_every_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let (oci, digests) = four_platforms(tmp.path());
    let source = format!("{}:1.0", oci.display());

    let (code, j, _) = select(&[&source]);
    assert_eq!(code, Some(0));
    assert_eq!(
        verdicts(&j),
        ["not-wasm", "compatible", "compatible", "selected"]
    );
    let chosen = j.selected.as_ref().unwrap();
    assert_eq!(chosen.digest, digests[3]);
    assert_eq!(chosen.checked, "instantiated");
    assert_eq!(j.entries[0].reasons, ["not a wasm platform"]);
    assert_eq!(j.entries[0].level, None);
    assert_eq!(j.entries[1].reasons, ["wasip3 is preferred"]);
    assert_eq!(j.entries[1].level.as_deref(), Some("yes"));
    assert!(
        j.entries[3].reasons[0].starts_with("fits worldfit:wasmtime/wasip3-command"),
        "{:?}",
        j.entries[3]
    );
    assert_eq!(j.host, "embedded-wasmtime@48");
    assert_eq!(j.source, source);

    // --prefer moves an older WASI first; --no-confirm stops at the features.
    let (_, j, _) = select(&[&source, "--prefer", "p1", "--no-confirm"]);
    assert_eq!(
        verdicts(&j),
        ["not-wasm", "selected", "compatible", "compatible"]
    );
    assert_eq!(j.selected.unwrap().checked, "features");
    assert_eq!(j.entries[3].reasons, ["wasip1 is preferred"]);

    // A WIT host with WASI 0.2.0 http only: nothing fits, each entry says why.
    let (code, j, _) = select(&[
        &source,
        "--wit",
        common::root()
            .join("tests/wit/wasi-0.2.0")
            .to_str()
            .unwrap(),
        "--world",
        "wasi:http/proxy@0.2.0",
    ]);
    assert_eq!(code, Some(1));
    assert!(j.selected.is_none());
    assert_eq!(
        verdicts(&j),
        ["not-wasm", "incompatible", "incompatible", "incompatible"]
    );
    assert_eq!(
        j.entries[1].reasons,
        ["needs wasip1; host runs wasip2 only"]
    );
    assert_eq!(
        j.entries[2].reasons,
        ["needs wasi:cli/command@0.2.6; host lacks it"]
    );
    assert_eq!(j.entries[2].level.as_deref(), Some("no"));
    assert_eq!(j.entries[1].level, None, "an os the host doesn't run");
    assert_eq!(
        j.entries[3].reasons,
        ["needs wasip3; host runs wasip2 only"]
    );

    // People get the same verdicts, aligned, with what to do next.
    let out = run(worldfit_command().args(["select", &source]));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.starts_with(&format!("selected {} wasip3/wasm", digests[3])),
        "{text}"
    );
    assert!(text.contains("\n  linux/amd64  not wasm    "), "{text}");
    assert!(text.contains("its manifest: "), "{text}");
}

#[test]
fn lying_features_fall_back_to_the_next_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let synth = Synth::new();
    // Built against an environment function the host lacks, but its index
    // entry claims plain wasi:cli/command@0.2.0.
    let liar = artifact(synth.component("cli-newer-function"));
    let mut lie = liar.entry.clone();
    lie.platform.as_mut().unwrap().os_features = vec!["wasi:cli/command@0.2.0".into()];
    let honest = hello();
    let oci = layout(
        tmp.path(),
        &[&liar, &honest],
        vec![lie, honest.entry.clone()],
        vec![],
    );
    let (code, j, _) = select(&[&format!("{}:1.0", oci.display())]);
    assert_eq!(code, Some(0));
    assert_eq!(verdicts(&j), ["incompatible", "selected"]);
    assert_eq!(j.entries[0].checked, "types");
    assert_eq!(
        j.entries[0].reasons[0],
        "its features fit, but its types don't"
    );
    assert!(
        j.entries[0].reasons[1].contains("get-sandbox-flavor"),
        "{:?}",
        j.entries[0]
    );
}

#[test]
fn a_build_that_traps_on_instantiation_falls_back() {
    let tmp = tempfile::tempdir().unwrap();
    let trap = artifact(
        wat::parse_str(
            r#"(module
                 (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
                 (memory (export "memory") 1)
                 (func $boom unreachable)
                 (start $boom)
                 (func (export "_start")))"#,
        )
        .unwrap(),
    );
    let good = wasip1_hello();
    let oci = layout(
        tmp.path(),
        &[&trap, &good],
        vec![trap.entry.clone(), good.entry.clone()],
        vec![],
    );
    let (code, j, _) = select(&[&format!("{}:1.0", oci.display())]);
    assert_eq!(code, Some(0));
    assert_eq!(verdicts(&j), ["incompatible", "selected"]);
    assert_eq!(j.entries[0].checked, "instantiated");
    assert!(
        j.entries[0].reasons[0].starts_with("instantiation failed"),
        "{:?}",
        j.entries[0]
    );
    assert!(
        j.entries[0].reasons[0].contains("unreachable"),
        "{:?}",
        j.entries[0]
    );
}

#[test]
fn integrity_failures_abort_instead_of_falling_back() {
    let tmp = tempfile::tempdir().unwrap();
    let (p1, p2) = (wasip1_hello(), hello());
    let oci = layout(
        tmp.path(),
        &[&p1, &p2],
        vec![p2.entry.clone(), p1.entry.clone()],
        vec![],
    );
    let source = format!("{}:1.0", oci.display());
    let layer = oci
        .join("blobs/sha256")
        .join(&p2.layer.descriptor.digest[7..]);

    // The top candidate's layer was tampered with: exit 2, never the next entry.
    let original = std::fs::read(&layer).unwrap();
    let mut bytes = original.clone();
    bytes[200] ^= 0xff;
    std::fs::write(&layer, &bytes).unwrap();
    let err = fails(&[&source]);
    assert!(
        err.contains("does not match its digest") && err.contains(&source),
        "{err}"
    );

    // A symlink out of the layout in its place.
    std::fs::remove_file(&layer).unwrap();
    let outside = tmp.path().join("outside");
    std::fs::write(&outside, &original).unwrap();
    std::os::unix::fs::symlink(&outside, &layer).unwrap();
    let err = fails(&[&source]);
    assert!(err.contains("not a regular file"), "{err}");

    // Missing.
    std::fs::remove_file(&layer).unwrap();
    let err = fails(&[&source]);
    assert!(err.contains("missing blob"), "{err}");

    // --no-confirm never reads the layer, so it still decides.
    let (code, j, _) = select(&[&source, "--no-confirm"]);
    assert_eq!(code, Some(0));
    assert_eq!(j.selected.unwrap().digest, p2.entry.digest);
}

#[test]
fn hostile_indexes_are_errors_that_name_the_source() {
    let tmp = tempfile::tempdir().unwrap();
    let p2 = hello();
    let escape = Descriptor {
        digest: "sha256:../../../../etc/passwd".into(),
        ..p2.entry.clone()
    };
    let oci = layout(tmp.path(), &[&p2], vec![escape], vec![]);
    let err = fails(&[&format!("{}:1.0", oci.display())]);
    assert!(err.contains("malformed digest"), "{err}");

    // An entry of a media type nobody knows is skipped with a reason.
    let weird = Descriptor {
        media_type: "application/vnd.example.thing+json".into(),
        platform: None,
        ..p2.entry.clone()
    };
    let dir = tmp.path().join("weird");
    std::fs::create_dir(&dir).unwrap();
    let oci = layout(&dir, &[&p2], vec![weird, p2.entry.clone()], vec![]);
    let (code, j, _) = select(&[&format!("{}:1.0", oci.display())]);
    assert_eq!(code, Some(0));
    assert_eq!(verdicts(&j), ["not-wasm", "selected"]);
    assert_eq!(
        j.entries[0].reasons,
        ["unknown media type `application/vnd.example.thing+json`; skipped"]
    );

    // An index of indexes deeper than the limit.
    let dir = tmp.path().join("deep");
    std::fs::create_dir(&dir).unwrap();
    let mut blobs = vec![p2.layer.clone(), p2.config.clone(), p2.manifest.clone()];
    let mut top = p2.entry.clone();
    for _ in 0..6 {
        let index = Index {
            schema_version: 2,
            media_type: Some(INDEX_MEDIA_TYPE.into()),
            manifests: vec![top],
            annotations: BTreeMap::new(),
        };
        let blob = Blob::new(INDEX_MEDIA_TYPE, serde_json::to_vec(&index).unwrap());
        top = blob.descriptor.clone();
        blobs.push(blob);
    }
    let refs: Vec<&Blob> = blobs.iter().collect();
    write_tagged(&dir.join("oci"), "deep", &refs, &top).unwrap();
    let err = fails(&[&format!("{}:deep", dir.join("oci").display())]);
    assert!(err.contains("nests deeper than 4 levels"), "{err}");

    // One level of nesting is followed.
    let dir = tmp.path().join("nested");
    let nested: Vec<&Blob> = blobs[..4].iter().collect();
    write_tagged(&dir, "n", &nested, &blobs[3].descriptor).unwrap();
    let (code, j, _) = select(&[&format!("{}:n", dir.display())]);
    assert_eq!(code, Some(0));
    assert_eq!(j.selected.unwrap().digest, p2.entry.digest);

    // A manifest named by digest is a one-entry index.
    let (code, j, _) = select(&[&format!("{}@{}", dir.display(), p2.entry.digest)]);
    assert_eq!(code, Some(0), "{j:?}");
    assert_eq!(j.entries.len(), 1);
    assert_eq!(j.entries[0].declared, "config");

    // Truncated index JSON.
    let index_blob = dir
        .join("blobs/sha256")
        .join(&blobs[3].descriptor.digest[7..]);
    let text = std::fs::read(&index_blob).unwrap();
    std::fs::write(&index_blob, &text[..text.len() / 2]).unwrap();
    let err = fails(&[&format!("{}:n", dir.display())]);
    assert!(err.contains(&dir.display().to_string()), "{err}");
}

fn skopeo(args: &[&str]) -> Output {
    run(Command::new("skopeo").args(args))
}

#[test]
fn from_a_registry_fetches_only_what_the_decision_needs() {
    let tmp = tempfile::tempdir().unwrap();
    let (oci, digests) = four_platforms(tmp.path());
    let registry = Registry::start();
    let out = skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:1.0", oci.display()),
        &format!("docker://{}/app:1.0", registry.addr),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let proxy = FaultProxy::start(&registry.addr, Fault::None);
    let reference = format!("{}/app:1.0", proxy.addr);
    let (code, j, _) = select(&[&reference, "--plain-http"]);
    assert_eq!(code, Some(0));
    assert_eq!(j.selected.as_ref().unwrap().digest, digests[3]);

    // What was fetched: the index, the chosen manifest, its layer. Nothing else.
    let gets: Vec<String> = proxy
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path != "/v2/")
        .map(|r| r.path.clone())
        .collect();
    let size = |rel: &str| {
        std::fs::metadata(oci.join("blobs/sha256").join(rel))
            .unwrap()
            .len()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(oci.join("index.json")).unwrap()).unwrap();
    let index_digest = index["manifests"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let manifest: serde_json::Value = serde_json::from_slice(
        &std::fs::read(oci.join("blobs/sha256").join(&digests[3][7..])).unwrap(),
    )
    .unwrap();
    let layer_digest = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    let config_digest = manifest["config"]["digest"].as_str().unwrap().to_string();
    assert_eq!(
        gets,
        [
            "/v2/app/manifests/1.0".to_string(),
            format!("/v2/app/manifests/{}", digests[3]),
            format!("/v2/app/blobs/{layer_digest}"),
        ]
    );
    let needed = size(&index_digest[7..])
        + size(&digests[3][7..])
        + size(&config_digest[7..])
        + size(&layer_digest[7..]);
    let fetched: u64 = proxy
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.sent)
        .sum();
    assert!(
        fetched <= needed,
        "fetched {fetched} bytes, the bound is {needed}"
    );

    // The naive way, every manifest, config and layer, for comparison.
    let naive_dir = tmp.path().join("naive");
    let proxy2 = FaultProxy::start(&registry.addr, Fault::None);
    let out = run(worldfit_command().args([
        "pull",
        &format!("{}/app:1.0", proxy2.addr),
        "--layout",
        naive_dir.to_str().unwrap(),
        "--plain-http",
    ]));
    assert!(out.status.success());
    let naive: u64 = proxy2
        .requests()
        .iter()
        .filter(|r| r.method == "GET")
        .map(|r| r.sent)
        .sum();
    println!(
        "select fetched {fetched} bytes in {} requests; fetching every entry: {naive} bytes",
        gets.len()
    );
    assert!(fetched < naive);
}

#[test]
fn registry_faults_are_one_line_errors_or_survived() {
    let tmp = tempfile::tempdir().unwrap();
    let (oci, _) = four_platforms(tmp.path());
    let registry = Registry::start();
    let out = skopeo(&[
        "copy",
        "--all",
        "--dest-tls-verify=false",
        &format!("oci:{}:1.0", oci.display()),
        &format!("docker://{}/app:1.0", registry.addr),
    ]);
    assert!(out.status.success());

    let err = fails(&[&format!("{}/app:nope", registry.addr), "--plain-http"]);
    assert!(
        err.contains("not found (404)") && err.contains("app:nope"),
        "{err}"
    );

    let proxy = FaultProxy::start(&registry.addr, Fault::Unauthorized);
    let err = fails(&[&format!("{}/app:1.0", proxy.addr), "--plain-http"]);
    assert!(err.contains("401 Unauthorized"), "{err}");

    // 503 once on the layer, then it comes: selection carries on.
    let proxy = FaultProxy::start(
        &registry.addr,
        Fault::Status {
            code: 503,
            times: 1,
            path_contains: Some("/blobs/".into()),
        },
    );
    let (code, _, _) = select(&[&format!("{}/app:1.0", proxy.addr), "--plain-http"]);
    assert_eq!(code, Some(0));

    // A layer whose body stalls: bounded by --timeout.
    let proxy = FaultProxy::start(
        &registry.addr,
        Fault::Stall {
            path_contains: Some("/blobs/".into()),
        },
    );
    let started = std::time::Instant::now();
    let err = fails(&[
        &format!("{}/app:1.0", proxy.addr),
        "--plain-http",
        "--timeout",
        "0.5",
    ]);
    assert!(err.contains("stalled"), "{err}");
    assert!(started.elapsed().as_secs() < 10);

    // A layer cut short: an integrity failure, not a fallback.
    let proxy = FaultProxy::start(
        &registry.addr,
        Fault::TruncateBody {
            path_contains: Some("/blobs/".into()),
        },
    );
    let err = fails(&[&format!("{}/app:1.0", proxy.addr), "--plain-http"]);
    assert!(err.contains("blob"), "{err}");
}

/// `select` through the library, as a shim calls it: a one-entry layout of
/// `hello`, confirmation through a compile cache in the same temporary
/// directory, the built-in host, and a runtime to drive it.
struct WarmSelect {
    _dir: tempfile::TempDir,
    source: worldfit::oci::source::Source,
    cache_dir: PathBuf,
    opts: worldfit::select::SelectOptions,
    host: worldfit::host::Host,
    rt: tokio::runtime::Runtime,
}

impl WarmSelect {
    fn new() -> WarmSelect {
        use worldfit::cache::CompileCache;
        use worldfit::confirm::ConfirmOptions;
        let dir = tempfile::tempdir().unwrap();
        let p2 = hello();
        let path = layout(dir.path(), &[&p2], vec![p2.entry.clone()], vec![]);
        let source =
            worldfit::oci::source::Source::parse_layout(&format!("{}:1.0", path.display()))
                .unwrap()
                .expect("a layout");
        let cache_dir = dir.path().join("cache");
        let opts = worldfit::select::SelectOptions {
            prefer: None,
            no_confirm: false,
            confirm: ConfirmOptions {
                cache: Some(CompileCache::new(&cache_dir)),
                ..Default::default()
            },
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        WarmSelect {
            _dir: dir,
            source,
            cache_dir,
            opts,
            host: worldfit::host::Host::wasmtime(),
            rt,
        }
    }

    fn select(&self) -> worldfit::select::Selection {
        self.rt
            .block_on(worldfit::select::select(
                &self.source,
                &self.host,
                &self.opts,
            ))
            .unwrap()
    }
}

/// The compile cache is looked up while the layer is being fetched (the
/// layer's digest is known from its manifest): a warm selection loads the
/// artifact instead of compiling, and a damaged entry found that way is
/// reported, discarded and rebuilt, never loaded.
#[test]
fn warm_selections_load_the_cached_artifact_and_survive_a_damaged_one() {
    let w = WarmSelect::new();
    let cache_dir = &w.cache_dir;
    let run = || {
        let s = w.select();
        assert_eq!(s.selected, Some(0));
        s.confirmation.expect("confirmed")
    };
    let cold = run();
    assert!(
        cold.instantiated && !cold.cached && cold.cache_note.is_none(),
        "{cold:?}"
    );
    let warm = run();
    assert!(
        warm.instantiated && warm.cached && warm.cache_note.is_none(),
        "{warm:?}"
    );

    // Flip a byte in every artifact: the checksum catches it ahead.
    for entry in std::fs::read_dir(cache_dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "cwasm") {
            let mut bytes = std::fs::read(&path).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0xff;
            std::fs::write(&path, bytes).unwrap();
        }
    }
    let damaged = run();
    assert!(damaged.instantiated && !damaged.cached, "{damaged:?}");
    let note = damaged.cache_note.clone().unwrap_or_default();
    assert!(
        note.contains("discarded cache entry") && note.contains("checksum mismatch"),
        "{note}"
    );
    let rebuilt = run();
    assert!(
        rebuilt.instantiated && rebuilt.cached && rebuilt.cache_note.is_none(),
        "{rebuilt:?}"
    );
}

/// A warm selection reads the fit it found before from the compile cache
/// instead of decoding the layer again; a record naming a world the host
/// lacks is thrown away and the layer decoded.
#[test]
fn warm_selections_recall_the_fit_instead_of_decoding_again() {
    let w = WarmSelect::new();
    let cache_dir = &w.cache_dir;
    let reason = || {
        let s = w.select();
        assert_eq!(s.selected, Some(0));
        assert!(s.confirmation.expect("confirmed").instantiated);
        s.entries[0].reasons[0].clone()
    };
    let records = || -> Vec<std::path::PathBuf> {
        std::fs::read_dir(cache_dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "record"))
            .collect()
    };
    let command = "fits worldfit:wasmtime/wasip2-command@48.0.0";
    assert_eq!(reason(), command);
    let [record] = &records()[..] else {
        panic!("one record after the cold run: {:?}", records())
    };
    let text = std::fs::read_to_string(record).unwrap();
    assert_eq!(
        text,
        "worldfit-fit-v1 worldfit:wasmtime/wasip2-command@48.0.0\n"
    );
    assert_eq!(reason(), command);

    // The warm run believes the record, not a decode: one naming another
    // world of the host is what it reports.
    std::fs::write(record, text.replace("wasip2-command", "wasip2-http")).unwrap();
    assert_eq!(reason(), "fits worldfit:wasmtime/wasip2-http@48.0.0");

    // A record naming a world the host lacks is removed, the layer decoded
    // again, and the right record written back.
    std::fs::write(record, "worldfit-fit-v1 wasi:cli/command@0.2.0\n").unwrap();
    assert_eq!(reason(), command);
    assert_eq!(std::fs::read_to_string(record).unwrap(), text);

    // Without a cache nothing is recalled or written.
    let no_cache = worldfit::select::SelectOptions::default();
    std::fs::write(record, text.replace("wasip2-command", "wasip2-http")).unwrap();
    let s =
        w.rt.block_on(worldfit::select::select(&w.source, &w.host, &no_cache))
            .unwrap();
    assert_eq!(s.entries[0].reasons[0], command);
}

/// The next step printed when nothing runs pastes into a shell as it is,
/// even for a layout under a directory whose name has a space.
#[test]
fn the_next_step_is_a_command_that_runs_even_for_paths_with_spaces() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("my images");
    std::fs::create_dir(&dir).unwrap();
    let (linux_blobs, linux) = linux_image();
    let oci = layout(&dir, &[], vec![linux], linux_blobs);
    let out = run(worldfit_command()
        .arg("select")
        .arg(format!("{}:1.0", oci.display())));
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let hint = stdout
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("see what each entry needs: "))
        .unwrap_or_else(|| panic!("no next step in:\n{stdout}"));
    let words = shlex::split(hint).expect("the next step is valid shell");
    assert_eq!(words[0], "worldfit");
    assert_eq!(words[2], format!("{}:1.0", oci.display()));
    let next = run(worldfit_command().args(&words[1..]));
    assert_eq!(
        next.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&next.stderr)
    );
}

/// An index whose first entry needs the `map` feature (`os.features` says
/// `wasm:feature/component-model-map`): the embedded host, which keeps
/// maps off, passes over it by the index alone and with confirmation
/// alike, and says why; the plain build is selected.
#[test]
fn a_build_needing_an_engine_feature_the_host_lacks_is_passed_over() {
    let tmp = tempfile::tempdir().unwrap();
    let map = artifact(common::case_component("map-type-export", "app"));
    let plain = hello();
    assert!(
        map.entry
            .platform
            .as_ref()
            .unwrap()
            .os_features
            .contains(&"wasm:feature/component-model-map".to_string())
    );
    let entries = vec![map.entry.clone(), plain.entry.clone()];
    let oci = layout(tmp.path(), &[&map, &plain], entries, vec![]);
    let oci = oci.to_str().unwrap();
    for confirm in [true, false] {
        let mut args = vec![oci];
        if !confirm {
            args.push("--no-confirm");
        }
        let (code, j, stderr) = select(&args);
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(
            j.selected.as_ref().map(|s| s.digest.as_str()),
            Some(plain.entry.digest.as_str())
        );
        let first = &j.entries[0];
        assert_eq!(first.verdict, "incompatible", "{first:?}");
        assert_eq!(first.level.as_deref(), Some("no"), "{first:?}");
        assert!(
            first
                .reasons
                .iter()
                .any(|r| r.contains("wasm:feature/component-model-map")
                    && r.contains("-W component-model-map=y")),
            "{first:?}"
        );
    }
}

#[test]
fn builds_for_one_os_with_different_features_sit_side_by_side_and_rank_by_specificity() {
    let synth = Synth::new();
    let tmp = tempfile::tempdir().unwrap();
    let oci = tmp.path().join("oci");
    let lean = synth.component_file("cli-0212");
    let http = synth.component_file("cli-http-client");
    let tagged = run(worldfit_command()
        .args(["tag", "--tag", "1.0", "--json", "--layout"])
        .arg(&oci)
        .arg(&lean)
        .arg(&http));
    assert!(
        tagged.status.success(),
        "{}",
        String::from_utf8_lossy(&tagged.stderr)
    );
    let tagged: serde_json::Value = serde_json::from_slice(&tagged.stdout).unwrap();
    let digest = |i: usize| tagged["entries"][i]["digest"].as_str().unwrap().to_string();
    let (lean_digest, http_digest) = (digest(0), digest(1));
    let oci = format!("{}:1.0", oci.display());
    // A host with wasi:http runs both: the more specific build wins, though
    // it comes second, confirmed or not.
    for confirm in [true, false] {
        let mut args = vec![oci.as_str()];
        if !confirm {
            args.push("--no-confirm");
        }
        let (code, j, stderr) = select(&args);
        assert_eq!(code, Some(0), "{stderr}");
        assert_eq!(j.selected.as_ref().unwrap().digest, http_digest, "{j:?}");
        assert_eq!(
            j.entries[0].reasons.last().unwrap(),
            "a more specific build (more os.features, all met) was selected",
            "{j:?}"
        );
        assert_eq!(j.entries[0].verdict, "compatible");
    }
    // The wasmtime CLI's `run` links wasi:http only with `-S http`: the lean
    // build, and the reason the other isn't.
    let (code, j, stderr) = select(&[&oci, "--host", "wasmtime@49"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert_eq!(j.selected.as_ref().unwrap().digest, lean_digest, "{j:?}");
    assert_eq!(j.entries[1].verdict, "incompatible", "{j:?}");
    assert!(
        j.entries[1].reasons.iter().any(|r| r.contains("wasi:http")),
        "{j:?}"
    );
    let (code, j, _) = select(&[&oci, "--host", "wasmtime@49 run -S http"]);
    assert_eq!(code, Some(0));
    assert_eq!(j.selected.as_ref().unwrap().digest, http_digest, "{j:?}");
}
