//! What the shim's tests and bench share: a private containerd whose
//! shims find this build of `containerd-shim-worldfit-v1` on `PATH`, `ctr
//! run` as the README tells shim users, and images built through
//! worldfit's library.
#![allow(dead_code)]

#[path = "../../../tests/common/containerd.rs"]
pub mod containerd;
#[path = "../../../tests/common/containerd_config.rs"]
mod containerd_config;

use containerd::{Containerd, layout_tar};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Output;
use worldfit::oci::INDEX_MEDIA_TYPE;
use worldfit::oci::artifact::{Artifact, Blob, Descriptor, build};
use worldfit::oci::layout::{Index, write_tagged};

pub const SHIM: &str = env!("CARGO_BIN_EXE_containerd-shim-worldfit-v1");
pub const RUNTIME: &str = "io.containerd.worldfit.v1";

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../fixtures")
        .join(name)
}

/// A containerd whose shims find `containerd-shim-worldfit-v1` on `PATH`
/// and keep compiled code in a cache of their own.
pub struct Node {
    pub containerd: Containerd,
    dir: tempfile::TempDir,
}

impl Node {
    pub fn start() -> Node {
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
    pub fn import(&self, tar: &Path, name: &str) {
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
    pub fn run(
        &self,
        id: &str,
        image: Option<&str>,
        root: &Path,
        env: &[&str],
        args: &[&str],
    ) -> Output {
        self.ctr_run(id, image, root, env, args)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    }

    /// `ctr run --rm --runtime io.containerd.worldfit.v1 IMAGE ID ARGS...`:
    /// the form for an index containerd can unpack for this machine (it has
    /// an entry for the machine's platform).
    pub fn run_image(&self, image: &str, id: &str, args: &[&str]) -> Output {
        self.containerd
            .ctr(&[&["run", "--rm", "--runtime", RUNTIME, image, id], args].concat())
    }

    /// The command [`Node::run`] runs, to spawn.
    pub fn ctr_run(
        &self,
        id: &str,
        image: Option<&str>,
        root: &Path,
        env: &[&str],
        args: &[&str],
    ) -> std::process::Command {
        let mut ctr = std::process::Command::new("ctr");
        ctr.arg("--address").arg(&self.containerd.socket).args([
            "run",
            "--rm",
            "--runtime",
            RUNTIME,
        ]);
        if let Some(image) = image {
            ctr.args(["--label", &format!("worldfit.image={image}")]);
        }
        for e in env {
            ctr.args(["--env", e]);
        }
        ctr.arg("--rootfs").arg(root).arg(id).args(args);
        ctr
    }

    /// The shims' compile cache (`$XDG_CACHE_HOME/worldfit`).
    pub fn cache(&self) -> PathBuf {
        self.dir.path().join("cache")
    }

    pub fn empty_root(&self) -> PathBuf {
        self.dir.path().join("empty")
    }

    /// The shim's `worldfit:` lines in containerd's log.
    pub fn shim_log(&self) -> String {
        self.containerd
            .log()
            .lines()
            .filter(|l| l.contains("worldfit: "))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

pub fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

pub fn artifact(bytes: Vec<u8>) -> Artifact {
    let wasm = worldfit::decode(&bytes).unwrap();
    build(bytes, &wasm, &worldfit::host::standard_worlds(), Some(0))
}

pub fn wat(text: &str) -> Vec<u8> {
    wat::parse_str(text).unwrap()
}

/// A linux/amd64 image entry, as a multi-platform index holding a
/// container build beside wasm builds has: one tar layer holding
/// `/app.wasm`, a decoy (a wasip1 command printing "the decoy from the
/// linux/amd64 layer"), which containerd unpacks into the root filesystem
/// when `ctr run IMAGE` picks this entry for the machine's platform.
pub fn linux_amd64() -> Vec<Blob> {
    let decoy = p1_printing("the decoy from the linux/amd64 layer");
    let mut tar = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_ustar();
    header.set_size(decoy.len() as u64);
    header.set_mode(0o755);
    header.set_mtime(0);
    header.set_cksum();
    tar.append_data(&mut header, "app.wasm", decoy.as_slice())
        .unwrap();
    let layer = Blob::new(
        "application/vnd.oci.image.layer.v1.tar",
        tar.into_inner().unwrap(),
    );
    let config = Blob::new(
        "application/vnd.oci.image.config.v1+json",
        serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [layer.descriptor.digest]},
            "config": {"Entrypoint": ["/app.wasm"]}
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
pub fn image_tar(dir: &Path, name: &str, builds: &[&Artifact], linux: bool) -> PathBuf {
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
pub fn p1_printing(line: &str) -> Vec<u8> {
    p1_printing_then(line, "")
}

/// A WASI preview 1 command that prints `line`, then runs `then` (WAT,
/// which may call `$w`, `fd_write`, and `$r`, `fd_read`).
pub fn p1_printing_then(line: &str, then: &str) -> Vec<u8> {
    wat(&format!(
        r#"(module
  (import "wasi_snapshot_preview1" "fd_write" (func $w (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $r (param i32 i32 i32 i32) (result i32)))
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
pub fn p1_args() -> Vec<u8> {
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
