//! Helpers shared by the bench binaries: where the bench components are, the
//! `*.wasm` files there, external tools on `PATH`, the worldfit binary, the
//! argument convention of the process benches, and medians.
//!
//! Each bench includes this with `mod support;`. It is a directory module
//! (`benches/support/mod.rs`) because cargo would take `benches/support.rs`
//! for a bench target of its own.
//!
//! Messages that name a bench take that name as `who` (e.g. `"cli_vs_peer"`,
//! `"tag bench"`), so each bench prints exactly what it printed before.

// Each bench is its own crate and uses only part of this module.
#![allow(dead_code)]

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

/// Bytes in a MiB.
pub const MIB: f64 = 1024.0 * 1024.0;

/// The bench directory as configured: `$WORLDFIT_BENCH_DIR`, else
/// `../shared/bench` next to the repository. Not resolved; see [`bench_dir`].
pub fn bench_dir_unresolved() -> PathBuf {
    match std::env::var_os("WORLDFIT_BENCH_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/bench"),
    }
}

/// [`bench_dir_unresolved`], canonicalized where it exists, so messages
/// show the real path rather than one through `..`.
pub fn bench_dir() -> PathBuf {
    let dir = bench_dir_unresolved();
    std::fs::canonicalize(&dir).unwrap_or(dir)
}

/// The `*.wasm` entries of `dir`, in directory order, with each entry that
/// could not be read as an error. The benches treat such an entry
/// differently (an error, a panic, or skipped), so the choice stays theirs;
/// [`wasm_files`] is the skipping one.
pub fn wasm_entries(dir: &Path) -> std::io::Result<impl Iterator<Item = std::io::Result<PathBuf>>> {
    Ok(std::fs::read_dir(dir)?.filter_map(|entry| match entry {
        Ok(entry) => {
            let path = entry.path();
            path.extension()
                .is_some_and(|e| e == "wasm")
                .then_some(Ok(path))
        }
        Err(e) => Some(Err(e)),
    }))
}

/// The `*.wasm` files in `dir`, sorted; entries that cannot be read are
/// skipped.
pub fn wasm_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut out: Vec<PathBuf> = wasm_entries(dir)?.filter_map(Result::ok).collect();
    out.sort();
    Ok(out)
}

/// What `list` finds in [`bench_dir`], or, when it finds nothing or cannot
/// read the directory, the message saying so (pointing at
/// `WORLDFIT_BENCH_DIR`), for [`missing`].
pub fn bench_inputs<T>(
    list: impl FnOnce(&Path) -> std::io::Result<Vec<T>>,
) -> Result<Vec<T>, String> {
    let dir = bench_dir();
    match list(&dir) {
        Ok(v) if !v.is_empty() => Ok(v),
        Ok(_) => Err(format!(
            "no *.wasm in `{}` (set WORLDFIT_BENCH_DIR)",
            dir.display()
        )),
        Err(e) => Err(format!(
            "cannot read `{}`: {e} (set WORLDFIT_BENCH_DIR)",
            dir.display()
        )),
    }
}

/// The file name of `path`, for tables.
pub fn file_name(path: &Path) -> String {
    path.file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned()
}

/// The first executable file called `name` in a `PATH` directory.
pub fn on_path(name: &str) -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|p| {
            std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}

/// The worldfit binary: `$WORLDFIT_BIN`, else the one cargo built for this
/// bench (`target/release/worldfit` under `cargo bench`), else a fresh
/// `cargo build --release --bin worldfit`, announced on stderr as `who`.
pub fn worldfit_bin(who: &str) -> Result<PathBuf, String> {
    if let Some(p) = std::env::var_os("WORLDFIT_BIN") {
        return Ok(PathBuf::from(p));
    }
    let built = PathBuf::from(env!("CARGO_BIN_EXE_worldfit"));
    if built.is_file() {
        return Ok(built);
    }
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    eprintln!(
        "{who}: `{}` is missing; running cargo build --release --bin worldfit",
        built.display()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .args(["build", "--release", "--bin", "worldfit", "--manifest-path"])
        .arg(manifest.join("Cargo.toml"))
        .status()
        .map_err(|e| format!("failed to run cargo: {e}"))?;
    if !status.success() {
        return Err(format!(
            "cargo build --release --bin worldfit failed: {status}"
        ));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target"));
    let bin = target.join("release/worldfit");
    if bin.is_file() {
        Ok(bin)
    } else {
        Err(format!("`{}` not found after building", bin.display()))
    }
}

/// A command line to run: a program and its arguments.
pub struct CommandLine {
    pub program: PathBuf,
    pub args: Vec<OsString>,
}

impl CommandLine {
    pub fn new(program: &Path, args: impl IntoIterator<Item = impl Into<OsString>>) -> Self {
        CommandLine {
            program: program.to_path_buf(),
            args: args.into_iter().map(Into::into).collect(),
        }
    }

    pub fn command(&self) -> Command {
        let mut cmd = Command::new(&self.program);
        cmd.args(&self.args);
        cmd
    }

    /// The command line as a shell would show it, for messages.
    pub fn display(&self) -> String {
        let mut s = self.program.display().to_string();
        for a in &self.args {
            s.push(' ');
            s.push_str(&a.to_string_lossy());
        }
        s
    }
}

/// How a process bench runs.
#[derive(PartialEq)]
pub enum Mode {
    /// `cargo bench`: N runs, targets judged.
    Bench,
    /// `cargo test --benches`: one run each, agreement only.
    Smoke,
}

/// The run counts of a process bench (cli_vs_peer, tag).
pub struct Config {
    pub mode: Mode,
    pub warmup: usize,
    pub runs: usize,
}

/// Parses a process bench's arguments: `--bench` (passed by `cargo bench`),
/// `--quick` (`quick_runs` runs), `--runs N`. With none of them, as under
/// `cargo test --benches`, it is a smoke run: no warm-up, one run. Anything
/// else is ignored with a note naming `who`. A bad `--runs` is reported, and
/// is the exit code to return.
pub fn parse_args(
    who: &str,
    warmup: usize,
    runs: usize,
    quick_runs: usize,
) -> Result<Config, ExitCode> {
    parse(who, warmup, runs, quick_runs).map_err(|e| {
        eprintln!("{who}: {e}");
        ExitCode::FAILURE
    })
}

fn parse(who: &str, warmup: usize, runs: usize, quick_runs: usize) -> Result<Config, String> {
    let mut bench = false;
    let mut runs_arg = None;
    let mut quick = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--bench" => bench = true,
            "--quick" => quick = true,
            "--runs" => {
                let n = args.next().ok_or("--runs needs a number")?;
                runs_arg = Some(
                    n.parse::<usize>()
                        .map_err(|e| format!("--runs {n}: {e}"))?
                        .max(1),
                );
            }
            // cargo may pass a filter or libtest flags; nothing to filter here.
            other => eprintln!("{who}: ignoring argument `{other}`"),
        }
    }
    if !bench && !quick && runs_arg.is_none() {
        return Ok(Config {
            mode: Mode::Smoke,
            warmup: 0,
            runs: 1,
        });
    }
    Ok(Config {
        mode: Mode::Bench,
        warmup,
        runs: runs_arg.unwrap_or(if quick { quick_runs } else { runs }),
    })
}

/// Reports an error that stops the bench before it measures anything.
pub fn error(who: &str, msg: &str) -> ExitCode {
    eprintln!("{who}: error: {msg}");
    ExitCode::FAILURE
}

/// Reports a missing prerequisite (an input or a tool): an [`error`] under
/// `cargo bench`, but only a skip (exit 0) in the smoke run, so that
/// `cargo test --benches` passes where the bench inputs or tools are absent.
pub fn missing(who: &str, mode: &Mode, msg: &str) -> ExitCode {
    let code = error(who, msg);
    if *mode == Mode::Smoke {
        eprintln!("{who}: skipping (smoke run)");
        ExitCode::SUCCESS
    } else {
        code
    }
}

/// The median of sorted values; the mean of the middle two for an even count.
pub fn median(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    if n % 2 == 1 {
        sorted[n / 2]
    } else {
        (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
    }
}

/// The median wall time of `n` calls of `f`; the upper middle one for an
/// even `n`. The result of each call is dropped inside its timing.
pub fn time<T>(n: usize, mut f: impl FnMut() -> T) -> Duration {
    let mut v: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            std::hint::black_box(f());
            t.elapsed()
        })
        .collect();
    v.sort();
    v[v.len() / 2]
}

/// The width of a table's first column: the longest name, at least as wide
/// as its heading `component`.
pub fn name_width<'a>(names: impl IntoIterator<Item = &'a str>) -> usize {
    names
        .into_iter()
        .map(str::len)
        .max()
        .unwrap_or(0)
        .max("component".len())
}

/// Entry `i` of a synthetic image index, mixing what real indexes hold:
/// wasip2 builds needing CLI or HTTP worlds at various 0.2.x patches,
/// wasip3 builds, wasip1 modules, an unsupported future track, and
/// `linux/amd64` images (distinct digests; the blobs they name are never
/// read: the index decides every entry).
pub fn mixed_entry(i: usize) -> worldfit::oci::artifact::Descriptor {
    let (arch, os, features): (&str, &str, Vec<String>) = match i % 6 {
        0 => (
            "wasm",
            "wasip2",
            vec![format!("wasi:cli/command@0.2.{}", i % 13)],
        ),
        1 => (
            "wasm",
            "wasip2",
            vec![
                format!("wasi:http/proxy@0.2.{}", i % 13),
                format!("wasi:keyvalue/store@0.2.0-draft{}", i % 3),
            ],
        ),
        2 => ("wasm", "wasip3", vec!["wasi:http/service@0.3.0".into()]),
        3 => ("wasm", "wasip1", vec![]),
        4 => (
            "wasm",
            "wasip2",
            vec![format!("wasi:cli/command@0.{}.0", 4 + i % 3)],
        ),
        _ => ("amd64", "linux", vec![]),
    };
    worldfit::oci::artifact::Descriptor {
        media_type: worldfit::oci::MANIFEST_MEDIA_TYPE.into(),
        digest: format!("sha256:{i:064x}"),
        size: 400 + (i % 100) as u64,
        platform: Some(worldfit::platform::Platform {
            architecture: arch.into(),
            os: os.into(),
            os_version: None,
            os_features: features,
            variant: None,
        }),
        annotations: std::collections::BTreeMap::new(),
    }
}

/// A layout at `dir` whose tag `bench` is an index of `n` [`mixed_entry`]s;
/// returns the index blob.
pub fn mixed_index_layout(dir: &Path, n: usize) -> worldfit::oci::artifact::Blob {
    use worldfit::oci::INDEX_MEDIA_TYPE;
    let index = worldfit::oci::layout::Index {
        schema_version: 2,
        media_type: Some(INDEX_MEDIA_TYPE.into()),
        manifests: (0..n).map(mixed_entry).collect(),
        annotations: std::collections::BTreeMap::new(),
    };
    let blob = worldfit::oci::artifact::Blob::new(
        INDEX_MEDIA_TYPE,
        serde_json::to_vec(&index).expect("an index serializes"),
    );
    worldfit::oci::layout::write_tagged(dir, "bench", &[&blob], &blob.descriptor)
        .expect("the bench layout is written");
    blob
}

/// One measured process: wall time, peak RSS, exit code.
#[derive(Clone, Copy)]
pub struct Measured {
    pub wall: Duration,
    /// `ru_maxrss`, KiB on Linux.
    pub maxrss_kib: i64,
    /// The exit code, or 128 + signal number.
    pub code: i32,
}

/// Spawns `cmd` with null stdio and reaps it with `wait4`, which reports
/// the child's resource usage.
///
/// Linux caveat: at `exec` the kernel folds the peak RSS of the address
/// space the child leaves (the parent's, shared with `posix_spawn`/vfork
/// or copied with fork) into the child's `ru_maxrss`. So a child never
/// reports less than the bench process's own peak: a bench that measures
/// memory keeps its own small.
pub fn measure(cmd: &mut Command) -> std::io::Result<Measured> {
    let start = std::time::Instant::now();
    let child = cmd
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let pid = child.id() as libc::pid_t;
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `pid` is our unreaped child; the pointers are to live locals.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        if err.kind() != std::io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    let wall = start.elapsed();
    // Reaped above: `Child` must not wait again. Dropping it neither waits
    // nor kills.
    drop(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else if libc::WIFSIGNALED(status) {
        128 + libc::WTERMSIG(status)
    } else {
        -1
    };
    Ok(Measured {
        wall,
        maxrss_kib: usage.ru_maxrss,
        code,
    })
}
