//! The bad-input corpus (`fixtures/bad/`, described in its README.md): every
//! malformed binary through every command that reads it, and every broken
//! layout through every command that reads the broken part.
//!
//! docs/COMMANDS.md promises that bad input is "one `error:` line naming the input,
//! plus `caused by:` lines where useful; never a panic", with exit 2. Shims
//! run worldfit on every container start, so each run here must also end
//! quickly and write nothing. One test walks every case and reports every
//! failure at the end (not just the first), so one run shows the whole
//! picture.
#![cfg(all(feature = "registry", feature = "wasmtime"))]

mod common;

use common::{fixture, worldfit_command};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::{Read, Seek};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use worldfit::oci::artifact::{Blob, Descriptor, Manifest, WasmConfig, build};
use worldfit::oci::layout::{Index, write_tagged};
use worldfit::oci::limits::ReadLimits;
use worldfit::oci::{
    INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE,
};
use worldfit::platform::Platform;

/// The tag every layout of this test is read by.
const TAG: &str = "1.0";

/// How long one run may take before it counts as a hang. Bad input should
/// fail in well under a second; this is generous so a slow machine never
/// flakes, and still bounds the whole test.
const RUN_DEADLINE: Duration = Duration::from_secs(60);

/// The address space each run may use. Linux overcommits, so a reader that
/// believed a huge declared size (a 4 GiB section, a 10^15-byte blob) could
/// reserve that much and still exit 2 in time; under this bound the
/// reservation itself fails and the run aborts, which the test reports.
/// Bad input is refused long before a real need comes near it.
const ADDRESS_SPACE_BOUND: u64 = 1 << 30;

/// How deep the deeply nested JSON goes: far past serde_json's recursion
/// limit (128), and deep enough to overflow a stack if anything parsed it
/// recursively without one.
const JSON_DEPTH: usize = 200_000;

/// A declared size no reader may believe (10^15 bytes, about 888 TiB).
const HUGE_SIZE: u64 = 1_000_000_000_000_000;

/// A digest whose "hex" is a path: from `blobs/sha256/` three levels up is
/// the directory holding the layout, so this names a file outside it.
const ESCAPING_DIGEST: &str = "sha256:../../../x";

/// A bad binary of the corpus.
struct BadFile {
    /// Its corpus name (README.md of `fixtures/bad/`).
    name: String,
    bytes: Vec<u8>,
}

/// splitmix64: a fixed-seed generator, so the "random" files are the same
/// bytes on every run and a failure reproduces.
fn random_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        out.extend_from_slice(&z.to_le_bytes());
    }
    out.truncate(len);
    out
}

/// The preamble of a component (`\0asm`, version 0x0d, layer 1).
const COMPONENT_HEADER: &[u8] = b"\0asm\x0d\x00\x01\x00";
/// The preamble of a core module (`\0asm`, version 1).
const MODULE_HEADER: &[u8] = b"\0asm\x01\x00\x00\x00";

/// Every bad binary: the committed `fixtures/bad/*.wasm` (all of them, so a
/// file added there is covered without touching this test), then the ones
/// generated from real fixtures or a seed, as `fixtures/bad/README.md` lists.
fn bad_files() -> Vec<BadFile> {
    let mut files: Vec<BadFile> = std::fs::read_dir(fixture("bad"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm"))
        .map(|p| BadFile {
            name: p.file_stem().unwrap().to_string_lossy().into_owned(),
            bytes: std::fs::read(&p).unwrap(),
        })
        .collect();
    files.sort_by(|a, b| a.name.cmp(&b.name));
    assert!(
        files.len() >= 5,
        "the committed corpus is missing files: {:?}",
        files.iter().map(|f| &f.name).collect::<Vec<_>>()
    );

    let mut generated = |name: &str, bytes: Vec<u8>| {
        files.push(BadFile {
            name: name.into(),
            bytes,
        })
    };
    generated("random-bytes", random_bytes(6, 4096));
    generated(
        "random-after-component-header",
        [COMPONENT_HEADER, &random_bytes(7, 4096)].concat(),
    );
    generated(
        "random-after-module-header",
        [MODULE_HEADER, &random_bytes(8, 4096)].concat(),
    );
    let component = std::fs::read(fixture("hello-cli.wasm")).unwrap();
    generated(
        "truncated-component-half",
        component[..component.len() / 2].to_vec(),
    );
    generated(
        "truncated-component-last-byte",
        component[..component.len() - 1].to_vec(),
    );
    let module = common::wat_module("wasip1-hello.wat");
    generated("truncated-module-half", module[..module.len() / 2].to_vec());
    generated(
        "truncated-module-last-byte",
        module[..module.len() - 1].to_vec(),
    );
    let mut resolve = wit_parser::Resolve::default();
    let package = resolve
        .push_file(fixture("bad/wit-package.wit"))
        .expect("the WIT parses");
    generated(
        "wit-package",
        wit_component::encode(&resolve, package, false).expect("the WIT encodes"),
    );
    files
}

/// A real build (`fixtures/hello-cli.wasm`) as worldfit tags it: the CNCF
/// wasm config and index platform the bad layouts reuse, so that only the
/// part a case breaks is wrong.
struct Good {
    layer: Vec<u8>,
    config: WasmConfig,
    platform: Platform,
}

fn good() -> Good {
    let layer = std::fs::read(fixture("hello-cli.wasm")).unwrap();
    let wasm = worldfit::decode(&layer).unwrap();
    let artifact = build(
        layer.clone(),
        &wasm,
        &worldfit::host::standard_worlds(),
        Some(0),
    );
    Good {
        config: serde_json::from_slice(&artifact.config.bytes).unwrap(),
        platform: artifact.entry.platform.unwrap(),
        layer,
    }
}

/// A blob of a layout's image, from the root down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Part {
    /// The image index `index.json` names.
    Index,
    /// The manifest the index lists.
    Manifest,
    /// The manifest's CNCF wasm config.
    Config,
    /// The manifest's `application/wasm` layer.
    Layer,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Part::Index => "index",
            Part::Manifest => "manifest",
            Part::Config => "config",
            Part::Layer => "layer",
        }
    }
}

/// What is wrong with a blob of a layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// Its descriptor's digest is [`ESCAPING_DIGEST`] (and a copy of the
    /// blob waits at that path outside the layout).
    EscapingDigest,
    /// The blob file is a symlink to an identical copy outside the layout.
    Symlink,
    /// One byte of the blob flipped (size unchanged, digest wrong).
    Tampered,
    /// The blob file is gone.
    Missing,
    /// Its descriptor declares [`HUGE_SIZE`] bytes.
    HugeSize,
    /// The blob is JSON nested [`JSON_DEPTH`] deep (digest and size right).
    DeepJson,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::EscapingDigest => "escaping-digest",
            Fault::Symlink => "symlink-out",
            Fault::Tampered => "tampered",
            Fault::Missing => "missing",
            Fault::HugeSize => "huge-size",
            Fault::DeepJson => "deep-json",
        }
    }
}

/// A JSON object `{"schemaVersion":2,"KEY":[[[...]]]}` nested
/// [`JSON_DEPTH`] arrays deep, shaped like an index or manifest so that only
/// the depth is wrong.
fn deep_json(key: &str) -> Vec<u8> {
    let mut out = format!(r#"{{"schemaVersion":2,"{key}":"#).into_bytes();
    out.resize(out.len() + JSON_DEPTH, b'[');
    out.resize(out.len() + JSON_DEPTH, b']');
    out.push(b'}');
    out
}

/// The blobs of one wasm image, from the layer up to its index.
struct Image {
    layer: Blob,
    config: Blob,
    manifest: Blob,
    index: Blob,
    /// The index's descriptor, as `index.json` will name it.
    root: Descriptor,
}

impl Image {
    /// An image index of one wasm manifest with `layer` as its
    /// `application/wasm` layer and a valid CNCF config (`good`'s, pointing
    /// at this layer); the index entry carries `platform` (without one,
    /// every reader must fetch the manifest and config to judge the entry).
    /// `fault` changes a descriptor (digest, size) or a blob's content (deep
    /// JSON); faults in the files are for [`write_image`].
    fn new(
        good: &Good,
        layer: Vec<u8>,
        platform: Option<Platform>,
        fault: Option<(Part, Fault)>,
    ) -> Image {
        let hits = |part: Part, kind: Fault| fault == Some((part, kind));
        let describe = |part: Part, blob: &Blob| {
            let mut d = blob.descriptor.clone();
            if hits(part, Fault::EscapingDigest) {
                d.digest = ESCAPING_DIGEST.into();
            }
            if hits(part, Fault::HugeSize) {
                d.size = HUGE_SIZE;
            }
            d
        };
        let layer = Blob::new(WASM_LAYER_MEDIA_TYPE, layer);
        let config = WasmConfig {
            layer_digests: vec![layer.descriptor.digest.clone()],
            ..good.config.clone()
        };
        let config = Blob::new(WASM_CONFIG_MEDIA_TYPE, serde_json::to_vec(&config).unwrap());
        let manifest = Manifest {
            schema_version: 2,
            media_type: MANIFEST_MEDIA_TYPE.into(),
            artifact_type: Some(WASM_LAYER_MEDIA_TYPE.into()),
            config: describe(Part::Config, &config),
            layers: vec![describe(Part::Layer, &layer)],
            annotations: BTreeMap::new(),
        };
        let manifest = Blob::new(
            MANIFEST_MEDIA_TYPE,
            if hits(Part::Manifest, Fault::DeepJson) {
                deep_json("layers")
            } else {
                serde_json::to_vec(&manifest).unwrap()
            },
        );
        let entry = Descriptor {
            platform,
            ..describe(Part::Manifest, &manifest)
        };
        let index = if hits(Part::Index, Fault::DeepJson) {
            Blob::new(INDEX_MEDIA_TYPE, deep_json("manifests"))
        } else {
            index_of(entry)
        };
        Image {
            root: describe(Part::Index, &index),
            layer,
            config,
            manifest,
            index,
        }
    }

    fn blob(&self, part: Part) -> &Blob {
        match part {
            Part::Index => &self.index,
            Part::Manifest => &self.manifest,
            Part::Config => &self.config,
            Part::Layer => &self.layer,
        }
    }
}

/// An image index blob of one entry.
fn index_of(entry: Descriptor) -> Blob {
    let index = Index {
        schema_version: 2,
        media_type: Some(INDEX_MEDIA_TYPE.into()),
        manifests: vec![entry],
        annotations: BTreeMap::new(),
    };
    Blob::new(INDEX_MEDIA_TYPE, serde_json::to_vec(&index).unwrap())
}

/// Writes `dir` as a layout whose tag [`TAG`] is the [`Image`] of these
/// arguments, then breaks the file of the part `fault` names, if it is a
/// fault of files (symlink, tampered, missing; an escaping digest gets a
/// copy of the blob at the path it names, outside the layout).
fn write_image(
    dir: &Path,
    good: &Good,
    layer: Vec<u8>,
    platform: Option<Platform>,
    fault: Option<(Part, Fault)>,
) {
    let image = Image::new(good, layer, platform, fault);
    let blobs = [&image.layer, &image.config, &image.manifest, &image.index];
    write_tagged(dir, TAG, &blobs, &image.root).unwrap();
    let Some((part, kind)) = fault else { return };
    let blob = image.blob(part);
    let path = dir
        .join("blobs/sha256")
        .join(blob.descriptor.digest.strip_prefix("sha256:").unwrap());
    let outside = dir.parent().unwrap();
    match kind {
        Fault::EscapingDigest => std::fs::write(outside.join("x"), &blob.bytes).unwrap(),
        Fault::Symlink => {
            let copy = outside.join(format!("outside-{}", part.name()));
            std::fs::write(&copy, &blob.bytes).unwrap();
            std::fs::remove_file(&path).unwrap();
            std::os::unix::fs::symlink(&copy, &path).unwrap();
        }
        Fault::Tampered => {
            let mut bytes = blob.bytes.clone();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0xff;
            std::fs::write(&path, bytes).unwrap();
        }
        Fault::Missing => std::fs::remove_file(&path).unwrap(),
        Fault::HugeSize | Fault::DeepJson => {}
    }
}

/// Writes a layout whose tag is a chain of indexes (an index of an index of
/// ...) one longer than the default limit (`max_index_depth`, docs/LIMITS.md
/// "Deepest chain of indexes"), the innermost listing a good build.
fn write_too_deep(dir: &Path, good: &Good) {
    let image = Image::new(good, good.layer.clone(), Some(good.platform.clone()), None);
    let mut top = image.root;
    let mut blobs = vec![image.layer, image.config, image.manifest, image.index];
    // The image's own index is the first level.
    for _ in 0..ReadLimits::default().max_index_depth {
        let blob = index_of(top);
        top = blob.descriptor.clone();
        blobs.push(blob);
    }
    let refs: Vec<&Blob> = blobs.iter().collect();
    write_tagged(dir, TAG, &refs, &top).unwrap();
}

/// A broken layout.
#[derive(Clone, Copy, Debug)]
enum Broken {
    /// One blob of the image (or its descriptor) is wrong.
    Blob(Part, Fault),
    /// `index.json` cut in half.
    TruncatedIndexJson,
    /// `index.json` is JSON nested [`JSON_DEPTH`] deep.
    DeepIndexJson,
    /// A chain of indexes one longer than the limit.
    NestingOverLimit,
}

/// `inspect`, `select` and `select --no-confirm` all read the index, and
/// the manifest and config of an entry the index doesn't describe.
const EVERY_READER: &[&[&str]] = &[&["inspect"], &["select"], &["select", "--no-confirm"]];
/// Only confirming a selection reads the layer of an entry the index
/// describes.
const CONFIRMING: &[&[&str]] = &[&["select"]];

impl Broken {
    /// Every broken layout of the corpus.
    fn all() -> Vec<Broken> {
        let mut all = Vec::new();
        for fault in [
            Fault::EscapingDigest,
            Fault::Symlink,
            Fault::Tampered,
            Fault::Missing,
            Fault::HugeSize,
            Fault::DeepJson,
        ] {
            for part in [Part::Index, Part::Manifest, Part::Config, Part::Layer] {
                // A config that isn't the CNCF shape is passed over by
                // design (the layer still says what the build needs), and a
                // layer is never JSON: deep JSON is hostile only where JSON
                // is required.
                if fault == Fault::DeepJson && matches!(part, Part::Config | Part::Layer) {
                    continue;
                }
                all.push(Broken::Blob(part, fault));
            }
        }
        all.extend([
            Broken::TruncatedIndexJson,
            Broken::DeepIndexJson,
            Broken::NestingOverLimit,
        ]);
        all
    }

    fn name(self) -> String {
        match self {
            Broken::Blob(part, fault) => format!("{}-{}", fault.name(), part.name()),
            Broken::TruncatedIndexJson => "truncated-index-json".into(),
            Broken::DeepIndexJson => "deep-json-index-json".into(),
            Broken::NestingOverLimit => "index-nesting-over-limit".into(),
        }
    }

    /// The commands that read the broken part. Without a platform in the
    /// index entry, every reader fetches the manifest and config; with one,
    /// only confirmation reads past the index, and it reads the layer.
    fn readers(self) -> &'static [&'static [&'static str]] {
        match self {
            Broken::Blob(Part::Layer, _) => CONFIRMING,
            _ => EVERY_READER,
        }
    }

    /// Writes the broken layout at `dir`.
    fn make(self, dir: &Path, good: &Good) {
        let described = Some(good.platform.clone());
        match self {
            Broken::Blob(part @ (Part::Manifest | Part::Config), fault) => {
                write_image(dir, good, good.layer.clone(), None, Some((part, fault)));
            }
            Broken::Blob(part, fault) => {
                write_image(
                    dir,
                    good,
                    good.layer.clone(),
                    described,
                    Some((part, fault)),
                );
            }
            Broken::TruncatedIndexJson => {
                write_image(dir, good, good.layer.clone(), described, None);
                let path = dir.join("index.json");
                let text = std::fs::read(&path).unwrap();
                std::fs::write(&path, &text[..text.len() / 2]).unwrap();
            }
            Broken::DeepIndexJson => {
                write_image(dir, good, good.layer.clone(), described, None);
                std::fs::write(dir.join("index.json"), deep_json("manifests")).unwrap();
            }
            Broken::NestingOverLimit => write_too_deep(dir, good),
        }
    }
}

/// What a run must leave as it was.
enum Guard {
    /// Every file, directory and symlink under this directory (the layout,
    /// and the files beside it that its bad parts point at) must be
    /// byte-identical afterwards.
    Unchanged(PathBuf),
    /// `tag` must not create this layout, nor leave its staging directory
    /// (`.NAME.*.partial`) or anything else in its parent, which starts empty.
    NotCreated(PathBuf),
}

/// One command to run on a bad input.
struct Run {
    /// The case and command, for the failure report.
    case: String,
    args: Vec<OsString>,
    /// What the `error:` line must name: the file, or the layout directory.
    input: String,
    guards: Vec<Guard>,
}

/// A directory's contents, for comparing before and after a run.
#[derive(Debug, PartialEq, Eq)]
enum Node {
    Dir,
    File(Vec<u8>),
    Link(PathBuf),
}

fn snapshot(root: &Path) -> BTreeMap<PathBuf, Node> {
    fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<PathBuf, Node>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(root).unwrap().to_path_buf();
            let kind = std::fs::symlink_metadata(&path).unwrap().file_type();
            if kind.is_symlink() {
                out.insert(rel, Node::Link(std::fs::read_link(&path).unwrap()));
            } else if kind.is_dir() {
                out.insert(rel, Node::Dir);
                walk(root, &path, out);
            } else {
                out.insert(rel, Node::File(std::fs::read(&path).unwrap()));
            }
        }
    }
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

/// How a run ended.
struct Ended {
    code: Option<i32>,
    stdout: String,
    stderr: String,
    elapsed: Duration,
}

/// Runs worldfit with a deadline (a hang is killed and reported, not
/// waited on) and [`ADDRESS_SPACE_BOUND`]. Output goes to unnamed temp
/// files, so a chatty child can't block on a full pipe while we poll.
fn run_with_deadline(args: &[OsString]) -> Result<Ended, String> {
    use std::os::unix::process::CommandExt;
    let mut stdout = tempfile::tempfile().unwrap();
    let mut stderr = tempfile::tempfile().unwrap();
    let started = Instant::now();
    let mut command = worldfit_command();
    // SAFETY: runs in the forked child before exec, and only calls
    // setrlimit, which is async-signal-safe.
    unsafe {
        command.pre_exec(|| {
            let bound = libc::rlimit {
                rlim_cur: ADDRESS_SPACE_BOUND,
                rlim_max: ADDRESS_SPACE_BOUND,
            };
            if libc::setrlimit(libc::RLIMIT_AS, &bound) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let mut child = command
        .args(args)
        .stdin(Stdio::null())
        .stdout(stdout.try_clone().unwrap())
        .stderr(stderr.try_clone().unwrap())
        .spawn()
        .expect("worldfit starts");
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > RUN_DEADLINE {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("still running after {RUN_DEADLINE:?}; killed"));
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    let read = |f: &mut std::fs::File| {
        let mut text = String::new();
        f.rewind().unwrap();
        f.read_to_string(&mut text).unwrap();
        text
    };
    Ok(Ended {
        code: status.code(),
        stdout: read(&mut stdout),
        stderr: read(&mut stderr),
        elapsed: started.elapsed(),
    })
}

/// Runs one command and returns what it did wrong (empty when it failed
/// the way docs/LIMITS.md promises).
fn check_run(run: &Run) -> (Vec<String>, Option<Ended>) {
    let before: Vec<_> = run
        .guards
        .iter()
        .map(|g| match g {
            Guard::Unchanged(dir) => Some(snapshot(dir)),
            Guard::NotCreated(_) => None,
        })
        .collect();
    let ended = match run_with_deadline(&run.args) {
        Ok(e) => e,
        Err(why) => return (vec![why], None),
    };
    let mut wrong = Vec::new();
    if ended.code != Some(2) {
        wrong.push(format!("exit {:?}, not 2", ended.code));
    }
    if ended.stderr.contains("panicked") {
        wrong.push("it panicked".into());
    }
    let lines: Vec<&str> = ended.stderr.lines().collect();
    let errors: Vec<&&str> = lines.iter().filter(|l| l.starts_with("error:")).collect();
    if errors.len() != 1 || !lines.first().is_some_and(|l| l.starts_with("error:")) {
        wrong.push(format!(
            "stderr has {} `error:` lines (one, first, is required)",
            errors.len()
        ));
    }
    if let Some(stray) = lines
        .iter()
        .skip(1)
        .find(|l| !l.starts_with("  caused by:"))
    {
        wrong.push(format!("stray stderr line `{stray}`"));
    }
    if let Some(error) = errors.first()
        && !error.contains(&run.input)
    {
        wrong.push(format!("the `error:` line doesn't name `{}`", run.input));
    }
    if !ended.stdout.is_empty() {
        wrong.push("stdout is not empty".into());
    }
    for (guard, before) in run.guards.iter().zip(before) {
        match guard {
            Guard::Unchanged(dir) => {
                let after = snapshot(dir);
                let before = before.unwrap();
                let changed: Vec<_> = before
                    .keys()
                    .chain(after.keys())
                    .filter(|k| before.get(*k) != after.get(*k))
                    .collect::<std::collections::BTreeSet<_>>()
                    .into_iter()
                    .collect();
                if !changed.is_empty() {
                    wrong.push(format!("it changed {changed:?} under {}", dir.display()));
                }
            }
            Guard::NotCreated(layout) => {
                if layout.exists() {
                    wrong.push(format!("it created `{}`", layout.display()));
                }
                let parent = layout.parent().unwrap();
                let left: Vec<_> = std::fs::read_dir(parent)
                    .unwrap()
                    .map(|e| e.unwrap().file_name())
                    .collect();
                if !left.is_empty() {
                    wrong.push(format!("it left {left:?} in {}", parent.display()));
                }
            }
        }
    }
    (wrong, Some(ended))
}

/// Every run: each bad file through `inspect`, `check`, `check --json`,
/// `tag` and `select` of a layout holding it as its layer; each broken
/// layout through the commands that read its broken part.
fn runs(tmp: &Path) -> Vec<Run> {
    let good = good();
    let mut runs = Vec::new();
    let files_dir = tmp.join("files");
    std::fs::create_dir(&files_dir).unwrap();
    for (n, file) in bad_files().into_iter().enumerate() {
        let path = files_dir.join(format!("{}.wasm", file.name));
        std::fs::write(&path, &file.bytes).unwrap();
        let input = path.display().to_string();
        let case = |what: &str| format!("file {}: {what}", file.name);
        for args in [&["inspect"][..], &["check"], &["check", "--json"]] {
            let mut argv: Vec<OsString> = vec![args[0].into(), path.clone().into()];
            argv.extend(args[1..].iter().map(OsString::from));
            runs.push(Run {
                case: case(&args.join(" ")),
                args: argv,
                input: input.clone(),
                guards: vec![Guard::Unchanged(files_dir.clone())],
            });
        }
        let parent = tmp.join(format!("tag-{n:02}"));
        std::fs::create_dir(&parent).unwrap();
        let new_layout = parent.join("oci");
        runs.push(Run {
            case: case("tag --layout NEWDIR"),
            args: vec![
                "tag".into(),
                path.clone().into(),
                "--layout".into(),
                new_layout.clone().into(),
            ],
            input: input.clone(),
            guards: vec![
                Guard::NotCreated(new_layout),
                Guard::Unchanged(files_dir.clone()),
            ],
        });
        // `tag` refuses the file, so the library writes the layout: a
        // valid index entry, manifest and config, with the bad bytes as
        // the wasm layer, which confirming the selection must read.
        let case_dir = tmp.join(format!("select-{n:02}"));
        let layout = case_dir.join("oci");
        std::fs::create_dir(&case_dir).unwrap();
        write_image(
            &layout,
            &good,
            file.bytes.clone(),
            Some(good.platform.clone()),
            None,
        );
        runs.push(Run {
            case: case("select LAYOUT:TAG (the file is its layer)"),
            args: vec!["select".into(), source(&layout)],
            input: layout.display().to_string(),
            guards: vec![Guard::Unchanged(case_dir)],
        });
    }
    for (n, broken) in Broken::all().into_iter().enumerate() {
        // A fresh layout per command, so one command's writes (if any) are
        // reported against it alone.
        for (m, command) in broken.readers().iter().enumerate() {
            let case_dir = tmp.join(format!("layout-{n:02}-{m}"));
            let layout = case_dir.join("oci");
            std::fs::create_dir(&case_dir).unwrap();
            broken.make(&layout, &good);
            let mut args: Vec<OsString> = vec![command[0].into(), source(&layout)];
            args.extend(command[1..].iter().map(OsString::from));
            runs.push(Run {
                case: format!("layout {}: {} DIR:TAG", broken.name(), command.join(" ")),
                args,
                input: layout.display().to_string(),
                guards: vec![Guard::Unchanged(case_dir)],
            });
        }
    }
    runs
}

fn source(layout: &Path) -> OsString {
    format!("{}:{TAG}", layout.display()).into()
}

#[test]
fn every_bad_input_is_one_error_line_and_writes_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let runs = runs(tmp.path());
    let next = AtomicUsize::new(0);
    let failures = Mutex::new(Vec::new());
    let slowest = Mutex::new((Duration::ZERO, String::new()));
    let started = Instant::now();
    // Runs are independent (each has its own directories): use every core.
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    std::thread::scope(|s| {
        for _ in 0..workers {
            s.spawn(|| {
                while let Some(run) = runs.get(next.fetch_add(1, Ordering::Relaxed)) {
                    let (wrong, ended) = check_run(run);
                    // Each case's error, to see that it failed for the
                    // intended reason (shown with --nocapture).
                    if let Some(e) = &ended {
                        println!(
                            "{} -> exit {:?}\n    {}",
                            run.case,
                            e.code,
                            e.stderr.trim_end().replace('\n', "\n    ")
                        );
                        let mut slowest = slowest.lock().unwrap();
                        if e.elapsed > slowest.0 {
                            *slowest = (e.elapsed, run.case.clone());
                        }
                    }
                    if wrong.is_empty() {
                        continue;
                    }
                    let mut report = format!("{}\n  problems: {}", run.case, wrong.join("; "));
                    if let Some(e) = ended {
                        report.push_str(&format!(
                            "\n  exit {:?}\n  stderr: {}\n  stdout: {}",
                            e.code,
                            e.stderr.trim_end().replace('\n', "\n          "),
                            first_lines(&e.stdout, 8).replace('\n', "\n          "),
                        ));
                    }
                    failures.lock().unwrap().push(report);
                }
            });
        }
    });
    let (slow, slow_case) = slowest.into_inner().unwrap();
    println!(
        "{} runs in {:.1?} ({workers} at a time); slowest {slow:.1?} ({slow_case})",
        runs.len(),
        started.elapsed()
    );
    let mut failures = failures.into_inner().unwrap();
    failures.sort();
    assert!(
        failures.is_empty(),
        "{} of {} runs failed:\n\n{}",
        failures.len(),
        runs.len(),
        failures.join("\n\n")
    );
}

/// The first `n` lines of a command's output, for a readable report.
fn first_lines(text: &str, n: usize) -> String {
    let mut out: Vec<&str> = text.lines().take(n).collect();
    if text.lines().count() > n {
        out.push("...");
    }
    out.join("\n")
}
