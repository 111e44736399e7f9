//! Shared test helpers: fixture paths, synthesized components, running the CLI.
#![allow(dead_code)]

pub mod containerd;
pub mod containerd_config;
pub mod oci;
pub mod registry;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use wit_component::{ComponentEncoder, StringEncoding, dummy_module, embed_component_metadata};
use wit_parser::{LiftLowerAbi, ManglingAndAbi, Resolve, WorldId};

/// The sandbox the confirmation tests use: a 1 s time limit, 64 MiB per
/// memory, no compile cache.
#[cfg(feature = "wasmtime")]
pub fn quick_confirm() -> worldfit::confirm::ConfirmOptions {
    worldfit::confirm::ConfirmOptions {
        limits: worldfit::confirm::Limits {
            time: std::time::Duration::from_secs(1),
            memory_bytes: 64 << 20,
            ..Default::default()
        },
        cache: None,
        full: false,
    }
}

/// The repository root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// A path under `fixtures/`.
pub fn fixture(name: &str) -> PathBuf {
    root().join("fixtures").join(name)
}

/// Every file under `dir` (recursively) with its bytes, sorted: for
/// asserting that a layout is byte-identical before and after.
pub fn files(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                out.push((p.strip_prefix(dir).unwrap().to_path_buf(), bytes));
            }
        }
    }
    out.sort();
    out
}

/// Copies a directory tree.
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// Every world of `fixtures/synth/cases.wit`, in file order.
pub const SYNTH_CASES: &[&str] = &[
    "cli-020",
    "proxy-020",
    "cli-newer-patch",
    "cli-newer-function",
    "cli-changed-type",
    "cli-prerelease",
    "cli-old-track",
    "cli-with-kv",
    "library",
    "cli-p3",
    "service-p3",
    "mixed-p2-p3",
    "cli-http-client",
    "cli-0212",
];

/// Assembles the WIT directory the synthesized cases are written against:
/// `fixtures/synth/cases.wit` with `deps/` = `wit/deps` (WASI 0.2.12, 0.3.0)
/// + `tests/wit/wasi-0.2.0/deps` + `fixtures/synth/deps`.
pub fn synth_wit_dir(dir: &Path) -> PathBuf {
    let wit = dir.join("synth-wit");
    copy_dir(&root().join("wit/deps"), &wit.join("deps"));
    copy_dir(&root().join("tests/wit/wasi-0.2.0/deps"), &wit.join("deps"));
    copy_dir(&fixture("synth/deps"), &wit.join("deps"));
    std::fs::copy(fixture("synth/cases.wit"), wit.join("cases.wit")).unwrap();
    wit
}

/// The resolve of the synthesized cases.
pub struct Synth {
    pub resolve: Resolve,
    pub root: wit_parser::PackageId,
    pub dir: tempfile::TempDir,
}

impl Synth {
    pub fn new() -> Synth {
        let dir = tempfile::tempdir().unwrap();
        let wit = synth_wit_dir(dir.path());
        let mut resolve = Resolve::default();
        let (root, _) = resolve.push_path(&wit).expect("fixture WIT parses");
        Synth { resolve, root, dir }
    }

    pub fn world(&self, name: &str) -> WorldId {
        self.resolve.select_world(&[self.root], Some(name)).unwrap()
    }

    /// Builds a component for a world of the cases package.
    pub fn component(&self, name: &str) -> Vec<u8> {
        component_for(&self.resolve, self.world(name))
    }

    /// Writes a component for a case into the temp dir and returns its path.
    pub fn component_file(&self, name: &str) -> PathBuf {
        let path = self.dir.path().join(format!("{name}.wasm"));
        std::fs::write(&path, self.component(name)).unwrap();
        path
    }
}

/// Synthesizes a component for any world: a dummy core module that imports
/// and exports everything, wrapped by wit-component. Worlds with async
/// functions get the async-callback ABI.
pub fn component_for(resolve: &Resolve, world: WorldId) -> Vec<u8> {
    let w = &resolve.worlds[world];
    let is_async = w
        .imports
        .values()
        .chain(w.exports.values())
        .any(|item| match item {
            wit_parser::WorldItem::Interface { id, .. } => resolve.interfaces[*id]
                .functions
                .values()
                .any(|f| f.kind.is_async()),
            wit_parser::WorldItem::Function(f) => f.kind.is_async(),
            _ => false,
        });
    let abi = if is_async {
        LiftLowerAbi::AsyncCallback
    } else {
        LiftLowerAbi::Sync
    };
    component_with_abi(resolve, world, abi)
}

/// [`component_for`] with the ABI given: `LiftLowerAbi::AsyncCallback` for a
/// WASI 0.2 world gives what async-enabled guest bindings emit (async
/// lowers and lifts, the async built-ins).
pub fn component_with_abi(resolve: &Resolve, world: WorldId, abi: LiftLowerAbi) -> Vec<u8> {
    let w = &resolve.worlds[world];
    let mut module = dummy_module(resolve, world, ManglingAndAbi::Legacy(abi));
    embed_component_metadata(&mut module, resolve, world, StringEncoding::UTF8, false).unwrap();
    ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap_or_else(|e| panic!("encoding world `{}`: {e:?}", w.name))
}

/// Builds a component for the root world of a WIT directory under
/// `fixtures/cases/` (a real case's imports and exports).
pub fn case_component(dir: &str, world: &str) -> Vec<u8> {
    let (resolve, world) = case_world(dir, world);
    component_for(&resolve, world)
}

/// [`case_component`] with the async ABI: the case's world as async-enabled
/// guest bindings build it.
pub fn case_component_async(dir: &str, world: &str) -> Vec<u8> {
    let (resolve, world) = case_world(dir, world);
    component_with_abi(&resolve, world, LiftLowerAbi::AsyncCallback)
}

fn case_world(dir: &str, world: &str) -> (Resolve, WorldId) {
    let mut resolve = Resolve::default();
    let (pkg, _) = resolve
        .push_path(fixture(&format!("cases/{dir}")))
        .unwrap_or_else(|e| panic!("fixtures/cases/{dir}: {e:#}"));
    let world = resolve.select_world(&[pkg], Some(world)).unwrap();
    (resolve, world)
}

/// Builds a core module from a WAT fixture.
pub fn wat_module(name: &str) -> Vec<u8> {
    wat::parse_file(fixture(name)).unwrap()
}

/// A compile cache private to this test process, so tests never touch the
/// user's `~/.cache`.
fn test_cache_home() -> &'static Path {
    static DIR: std::sync::OnceLock<tempfile::TempDir> = std::sync::OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

/// The `worldfit` binary, with the test cache and an empty Docker config
/// (so no test reads the user's registry credentials).
pub fn worldfit_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_worldfit"));
    cmd.env("XDG_CACHE_HOME", test_cache_home());
    cmd.env("DOCKER_CONFIG", test_cache_home().join("docker-config"));
    cmd
}

/// Asserts a process succeeded (showing its status and both streams when it
/// didn't) and returns its stdout.
pub fn ok(out: &Output) -> String {
    assert!(
        out.status.success(),
        "status {:?}\nstdout: {}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout.clone()).unwrap()
}

/// Runs the `worldfit` binary.
pub fn worldfit(args: &[&str]) -> Output {
    worldfit_command()
        .args(args)
        .output()
        .expect("worldfit runs")
}

/// Runs `worldfit` with path arguments.
pub fn worldfit_os(args: &[&std::ffi::OsStr]) -> Output {
    worldfit_command()
        .args(args)
        .output()
        .expect("worldfit runs")
}
