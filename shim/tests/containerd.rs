//! The shim under a real containerd (Debian's package, a private instance
//! per test, the shim found on its `PATH` as runtime
//! `io.containerd.worldfit.v1`), started by `ctr run` exactly as the README
//! tells shim users: containerd 1.6 can't make a container from a wasm-only
//! index, so the container gets an empty root filesystem (`--rootfs`) and a
//! `worldfit.image` label naming the image, which the shim selects from.

#[path = "../../tests/common/containerd.rs"]
mod containerd;
#[path = "../../tests/common/containerd_config.rs"]
mod containerd_config;

use containerd::{Containerd, layout_tar};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Output;
use worldfit::oci::INDEX_MEDIA_TYPE;
use worldfit::oci::artifact::{Artifact, Blob, Descriptor, build};
use worldfit::oci::layout::{Index, write_tagged};

const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-worldfit-v1");
const RUNTIME: &str = "io.containerd.worldfit.v1";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

/// A containerd whose shims find `containerd-shim-worldfit-v1` on `PATH`
/// and keep compiled code in a cache of their own.
struct Node {
    containerd: Containerd,
    dir: tempfile::TempDir,
}

impl Node {
    fn start() -> Node {
        let dir = tempfile::tempdir().unwrap();
        let shim_dir = Path::new(SHIM).parent().unwrap();
        let mut path = OsString::from(shim_dir);
        path.push(":");
        path.push(std::env::var_os("PATH").unwrap_or_default());
        let cache = dir.path().join("cache");
        let containerd = Containerd::start_with_env(&[
            ("PATH", path.as_os_str()),
            ("XDG_CACHE_HOME", cache.as_os_str()),
        ]);
        std::fs::create_dir(dir.path().join("empty")).unwrap();
        Node { containerd, dir }
    }

    /// Imports an OCI layout tar with every platform, unpacking nothing.
    fn import(&self, tar: &Path, name: &str) {
        let out = self.containerd.ctr(&[
            "images",
            "import",
            "--all-platforms",
            "--no-unpack",
            "--base-name",
            name,
            tar.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", text(&out.stderr));
    }

    /// `ctr run --rm --runtime io.containerd.worldfit.v1 [--label
    /// worldfit.image=IMAGE] [--env ...] --rootfs ROOT ID ARGS...`.
    fn run(
        &self,
        id: &str,
        image: Option<&str>,
        root: &Path,
        env: &[&str],
        args: &[&str],
    ) -> Output {
        let mut argv: Vec<String> = vec![
            "run".into(),
            "--rm".into(),
            "--runtime".into(),
            RUNTIME.into(),
        ];
        if let Some(image) = image {
            argv.extend(["--label".into(), format!("worldfit.image={image}")]);
        }
        for e in env {
            argv.extend(["--env".into(), e.to_string()]);
        }
        argv.extend(["--rootfs".into(), root.display().to_string(), id.into()]);
        argv.extend(args.iter().map(|a| a.to_string()));
        let argv: Vec<&str> = argv.iter().map(String::as_str).collect();
        self.containerd.ctr(&argv)
    }

    fn empty_root(&self) -> PathBuf {
        self.dir.path().join("empty")
    }

    /// The shim's `worldfit:` lines in containerd's log.
    fn shim_log(&self) -> String {
        self.containerd
            .log()
            .lines()
            .filter(|l| l.contains("worldfit: "))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn artifact(bytes: Vec<u8>) -> Artifact {
    let wasm = worldfit::decode(&bytes).unwrap();
    build(bytes, &wasm, &worldfit::host::standard_worlds(), Some(0))
}

fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap()
}

/// A linux/amd64 image entry (a tar layer), as a multi-platform index
/// holding a container build beside wasm builds has.
fn linux_amd64() -> Vec<Blob> {
    let layer = Blob::new("application/vnd.oci.image.layer.v1.tar", vec![0; 1024]);
    let config = Blob::new(
        "application/vnd.oci.image.config.v1+json",
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer.descriptor.digest]},
            "config": {"Entrypoint": ["/app"]}
        }))
        .unwrap(),
    );
    let manifest = Blob::new(
        "application/vnd.oci.image.manifest.v1+json",
        serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config.descriptor,
            "layers": [layer.descriptor],
        }))
        .unwrap(),
    );
    vec![layer, config, manifest]
}

/// A tar of a layout whose tag `1.0` is an index of `builds` (in order),
/// then a linux/amd64 entry if `linux`.
fn image_tar(dir: &Path, name: &str, builds: &[&Artifact], linux: bool) -> PathBuf {
    let mut blobs: Vec<Blob> = Vec::new();
    let mut entries: Vec<Descriptor> = Vec::new();
    for a in builds {
        blobs.extend([a.layer.clone(), a.config.clone(), a.manifest.clone()]);
        entries.push(a.entry.clone());
    }
    if linux {
        let linux = linux_amd64();
        let mut entry = linux[2].descriptor.clone();
        entry.platform = Some(
            serde_json::from_value(serde_json::json!({"architecture": "amd64", "os": "linux"}))
                .unwrap(),
        );
        entries.push(entry);
        blobs.extend(linux);
    }
    let index = Blob::new(
        INDEX_MEDIA_TYPE,
        serde_json::to_vec(&Index {
            schema_version: 2,
            media_type: Some(INDEX_MEDIA_TYPE.into()),
            manifests: entries,
            annotations: BTreeMap::new(),
        })
        .unwrap(),
    );
    blobs.push(index.clone());
    let layout = dir.join(name);
    let refs: Vec<&Blob> = blobs.iter().collect();
    write_tagged(&layout, "1.0", &refs, &index.descriptor).unwrap();
    let tar = dir.join(format!("{name}.tar"));
    layout_tar(&layout, &tar);
    tar
}

/// A WASI preview 1 command that prints `line`.
fn p1_printing(line: &str) -> Vec<u8> {
    p1_printing_then(line, "")
}

/// A WASI preview 1 command that prints `line`, then runs `then` (WAT).
fn p1_printing_then(line: &str, then: &str) -> Vec<u8> {
    wat(&format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "{line}\n")
  (func (export "_start")
    (i32.store (i32.const 0) (i32.const 16))
    (i32.store (i32.const 4) (i32.const {len}))
    (drop (call $w (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 8)))
    {then}))"#,
        len = line.len() + 1
    ))
}

/// A WASI preview 1 command that prints each argument on a line and exits
/// with the number of arguments.
fn p1_args() -> Vec<u8> {
    wat(r#"(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $sizes (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (local $i i32) (local $end i32)
    (drop (call $sizes (i32.const 0) (i32.const 4)))
    (drop (call $get (i32.const 64) (i32.const 1024)))
    (local.set $i (i32.const 1024))
    (local.set $end (i32.add (i32.const 1024) (i32.load (i32.const 4))))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (local.get $end)))
      (if (i32.eqz (i32.load8_u (local.get $i)))
        (then (i32.store8 (local.get $i) (i32.const 10))))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (i32.store (i32.const 16) (i32.const 1024))
    (i32.store (i32.const 20) (i32.load (i32.const 4)))
    (drop (call $w (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 8)))
    (call $exit (i32.load (i32.const 0)))))"#)
}

#[test]
fn the_shim_runs_the_build_this_host_should_run_from_a_multi_build_index() {
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    let p3 = artifact(std::fs::read(fixture("p3-hello.wasm")).unwrap());
    let p2 = artifact(std::fs::read(fixture("hello-cli.wasm")).unwrap());
    let p1 = artifact(p1_printing("the wasip1 build"));
    let tar = image_tar(dir.path(), "app", &[&p3, &p2, &p1], true);
    node.import(&tar, "docker.io/library/app");
    // A decoy in the root filesystem, where runwasi's shims would look.
    let root = dir.path().join("decoy-root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(
        root.join("app.wasm"),
        p1_printing("the decoy from the root filesystem"),
    )
    .unwrap();

    // The embedded wasmtime 48 has wasi:cli@0.3.0, and the p3 build needs
    // 0.3.2: the host should run the p2 build (worldfit's ranking puts a
    // build whose features all fit above one that may fit).
    let out = node.run(
        "first",
        Some("docker.io/library/app:1.0"),
        &root,
        &[],
        &["/app.wasm"],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        node.containerd.log()
    );
    assert_eq!(text(&out.stdout), "hello from worldfit\n");
    let log = node.shim_log();
    let digest = &p2.layer.descriptor.digest;
    assert!(
        log.contains(&format!("layer {digest}")) && log.contains(&p2.entry.digest),
        "the p2 layer {digest} is not named in the shim's log:\n{log}"
    );
    assert!(log.contains("(compiled now"), "{log}");

    // The second start loads the compiled code from the cache.
    let out = node.run(
        "second",
        Some("docker.io/library/app:1.0"),
        &root,
        &[],
        &["/app.wasm"],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "hello from worldfit\n");
    let log = node.shim_log();
    assert!(
        log.lines()
            .any(|l| l.contains("container second") && l.contains("compiled code from the cache")),
        "{log}"
    );
}

#[test]
fn a_p3_build_runs_with_the_containers_env() {
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    let p3 = artifact(std::fs::read(fixture("p3-hello.wasm")).unwrap());
    let tar = image_tar(dir.path(), "p3", &[&p3], true);
    node.import(&tar, "docker.io/library/p3");
    let out = node.run(
        "p3",
        Some("docker.io/library/p3:1.0"),
        &node.empty_root(),
        &["WORLDFIT_NAME=the p3 build"],
        &["p3"],
    );
    assert!(
        out.status.success(),
        "{}\n{}",
        text(&out.stderr),
        node.shim_log()
    );
    assert_eq!(text(&out.stdout), "hello from the p3 build (WASI 0.3.2)\n");
    assert!(node.shim_log().contains(&p3.layer.descriptor.digest));
}

#[test]
fn an_image_with_no_build_for_this_host_fails_the_start_saying_why() {
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    let missing = artifact(wat(r#"(component
  (import "wasi:cli/environment@0.2.0" (instance (export "get-arguments" (func (result (list string))))))
  (import "example:missing/api@1.0.0" (instance (export "f" (func)))))"#));
    let p1 = artifact(wat(
        &std::fs::read_to_string(fixture("wasip1-bad.wat")).unwrap()
    ));
    let tar = image_tar(dir.path(), "bad", &[&missing, &p1], true);
    node.import(&tar, "docker.io/library/bad");

    let out = node.run(
        "bad",
        Some("docker.io/library/bad:1.0"),
        &node.empty_root(),
        &[],
        &["bad"],
    );
    let stderr = text(&out.stderr);
    assert!(!out.status.success(), "started: {stderr}");
    for reason in [
        "no build of `containerd://default/docker.io/library/bad:1.0` runs on host `embedded-wasmtime@48`",
        "needs example:missing/api@1.0.0; host lacks it",
        "imports from module `env`",
        "linux/amd64",
    ] {
        assert!(
            stderr.contains(reason),
            "task error lacks `{reason}`: {stderr}"
        );
        assert!(
            node.shim_log().contains(reason),
            "shim log lacks `{reason}`: {}",
            node.shim_log()
        );
    }
    assert!(text(&out.stdout).is_empty());

    // containerd is unharmed, and the next container runs.
    let ok = node.containerd.ctr(&["version"]);
    assert!(ok.status.success());
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("args.wasm"), p1_args()).unwrap();
    let out = node.run("after", None, &root, &[], &["/args.wasm", "x"]);
    assert_eq!(
        text(&out.stdout),
        "/args.wasm\nx\n",
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn a_container_with_no_image_runs_its_program_from_the_root_filesystem() {
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(root.join("args.wasm"), p1_args()).unwrap();
    let out = node.run(
        "plain",
        None,
        &root,
        &[],
        &["/args.wasm", "one", "two words"],
    );
    assert_eq!(
        text(&out.stdout),
        "/args.wasm\none\ntwo words\n",
        "{}",
        text(&out.stderr)
    );
    // Its exit status is the guest's: proc_exit(argc).
    assert_eq!(out.status.code(), Some(3), "{}", text(&out.stderr));
    assert!(
        node.shim_log()
            .contains("from the root filesystem (no image: not selected)")
    );
}

#[test]
fn a_kill_stops_a_running_guest_and_its_status_says_so() {
    use std::io::BufRead;
    let node = Node::start();
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    std::fs::create_dir(&root).unwrap();
    std::fs::write(
        root.join("spin.wasm"),
        p1_printing_then("spinning", "(loop (br 0))"),
    )
    .unwrap();
    let mut run = std::process::Command::new("ctr")
        .arg("--address")
        .arg(&node.containerd.socket)
        .args(["run", "--rm", "--runtime", RUNTIME, "--rootfs"])
        .arg(&root)
        .args(["spin", "/spin.wasm"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    std::io::BufReader::new(run.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert_eq!(first, "spinning\n");
    // The guest spins in wasm, never calling the host: the kill must
    // still stop it.
    let kill = node.containerd.ctr(&["task", "kill", "spin"]);
    assert!(kill.status.success(), "{}", text(&kill.stderr));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        if let Some(status) = run.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the guest was not stopped"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    // SIGTERM (ctr's default): 128 + 15.
    assert_eq!(status.code(), Some(143));
    assert!(
        node.shim_log()
            .contains("container spin: exited with status 143")
    );
}
