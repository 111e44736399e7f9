//! `tag` throughput: hashing a large component and writing it into an OCI
//! image layout, against `sha256sum` on the same file in the same run.
//!
//! For each `*.wasm` in `$WORLDFIT_BENCH_DIR`, else `../shared/bench` next to
//! the repository, this measures:
//!
//! * (a) in process: `oci::artifact::build` (sha256 of the layer, the config
//!   and the manifest) plus `oci::layout::tag` into a new layout in a fresh
//!   temporary directory: the hashing and writing. The bytes are already in
//!   memory and decoded once beforehand; `decode` is timed separately, for
//!   context only. The two halves are also reported on their own.
//! * (b) the whole process: `worldfit tag FILE --layout TMP/oci` (read,
//!   decode, hash, write).
//! * (c) the peer: `sha256sum FILE`.
//! * (d) `cp FILE TMP/copy.wasm`, a write baseline, for context.
//!
//! Temporary directories are made under the target directory's `tmp/`
//! (`CARGO_TARGET_TMPDIR`), and created and removed outside the timings. The
//! file is read before the first run, so it is in the page cache; nothing is
//! synced to disk (neither `tag` nor `cp` syncs).
//!
//! Each measurement gets 2 warm-up runs, then N runs (N=15, or 5 with
//! `--quick`, or `--runs N`), the four measurements rotating order each
//! round. Reported per component: median and min wall time, throughput
//! (file size in MB = 10^6 bytes / median seconds), and the throughput of
//! (a) and (b) as a multiple of `sha256sum`'s.
//!
//! Target: (a) at >= 200 MB/s on the 18 MB bench component (judged for each
//! component). A missed target is reported, not an error.
//!
//! `cargo bench --bench tag [-- --quick]`. Under `cargo test --benches` (no
//! `--bench` argument) it runs each measurement once, checks the digests
//! agree, and skips (exit 0) when an input, `sha256sum` or `cp` is missing;
//! under `cargo bench` those are errors.

mod support;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};
use support::{
    CommandLine as Tool, Mode, bench_inputs, median, name_width, on_path, parse_args, wasm_files,
    worldfit_bin,
};
use worldfit::component::{Wasm, decode};
use worldfit::host::{KnownWorld, standard_worlds};
use worldfit::oci::artifact::build;
use worldfit::oci::layout;

/// Target: in-process hashing and writing, MB/s (10^6 bytes per second).
const TARGET_MBPS: f64 = 200.0;
const WARMUP: usize = 2;
const RUNS: usize = 15;
const QUICK_RUNS: usize = 5;
const MB: f64 = 1e6;
const TAG: &str = "latest";
/// The name this bench's messages start with.
const WHO: &str = "tag bench";

/// Where the temporary directories go: the target directory's `tmp/`, on the
/// same filesystem as the build.
fn tmp_root() -> std::io::Result<PathBuf> {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&root)?;
    Ok(root)
}

fn fresh_dir(root: &Path) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("worldfit-bench-tag")
        .tempdir_in(root)
        .unwrap_or_else(|e| fail(&format!("cannot create a temporary directory: {e}")))
}

fn fail(msg: &str) -> ! {
    eprintln!("\ntag bench: FAILED: {msg}");
    std::process::exit(1);
}

/// What this bench does with a command line to measure (the shared
/// `CommandLine`, called `Tool` here): time it, or capture its stdout.
impl Tool {
    /// Wall time from spawn to reap, with null stdio; a failure is fatal and
    /// shown with the command's output.
    fn time(&self) -> Duration {
        let start = Instant::now();
        let status = self
            .command()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let wall = start.elapsed();
        match status {
            Ok(s) if s.success() => wall,
            Ok(s) => {
                let out = self.command().stdin(Stdio::null()).output();
                let detail = match out {
                    Ok(o) => format!(
                        "stdout: {}\n  stderr: {}",
                        String::from_utf8_lossy(&o.stdout).trim_end(),
                        String::from_utf8_lossy(&o.stderr).trim_end()
                    ),
                    Err(e) => format!("(rerun failed: {e})"),
                };
                fail(&format!("`{}` exited {s}\n  {detail}", self.display()))
            }
            Err(e) => fail(&format!("cannot run `{}`: {e}", self.display())),
        }
    }

    /// Runs once with stdout captured.
    fn stdout(&self) -> String {
        match self.command().stdin(Stdio::null()).output() {
            Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
            Ok(o) => fail(&format!(
                "`{}` exited {}: {}",
                self.display(),
                o.status,
                String::from_utf8_lossy(&o.stderr).trim_end()
            )),
            Err(e) => fail(&format!("cannot run `{}`: {e}", self.display())),
        }
    }
}

/// One in-process `tag`: the hash-and-config half, the write half, and the
/// layer digest it computed.
struct InProcess {
    build: Duration,
    write: Duration,
    digest: String,
}

/// (a): `build` + `layout::tag` into a new layout in a fresh directory. The
/// copy of the bytes (`build` takes ownership) and the directory's creation
/// and removal are outside the timing.
fn in_process(root: &Path, bytes: &[u8], wasm: &Wasm, known: &[KnownWorld]) -> InProcess {
    let tmp = fresh_dir(root);
    let dest = tmp.path().join("oci");
    let owned = bytes.to_vec();
    let t0 = Instant::now();
    let artifact = build(owned, wasm, known, None);
    let t1 = Instant::now();
    let written = layout::tag(&dest, TAG, std::slice::from_ref(&artifact));
    let t2 = Instant::now();
    if let Err(e) = written {
        fail(&format!("layout::tag into `{}`: {e:#}", dest.display()));
    }
    InProcess {
        build: t1 - t0,
        write: t2 - t1,
        digest: artifact.layer.descriptor.digest.clone(),
    }
}

/// Median and min, in milliseconds.
#[derive(Clone, Copy)]
struct Stats {
    median_ms: f64,
    min_ms: f64,
}

fn stats(runs: &[Duration]) -> Stats {
    let mut ms: Vec<f64> = runs.iter().map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    Stats {
        median_ms: median(&ms),
        min_ms: ms[0],
    }
}

/// `bytes` per `ms`, in MB/s.
fn mbps(bytes: u64, ms: f64) -> f64 {
    bytes as f64 / MB / (ms / 1e3)
}

struct Row {
    name: String,
    size: u64,
    decode: Stats,
    build: Stats,
    write: Stats,
    tag_in_process: Stats,
    tag_process: Stats,
    sha256sum: Stats,
    cp: Stats,
}

fn main() -> ExitCode {
    let config = match parse_args(WHO, WARMUP, RUNS, QUICK_RUNS) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // Missing prerequisites fail `cargo bench` but only skip the smoke run.
    let missing = |msg: String| support::missing(WHO, &config.mode, &msg);

    let Some(sha256sum) = on_path("sha256sum") else {
        return missing("`sha256sum` is not on PATH (GNU coreutils)".into());
    };
    let Some(cp) = on_path("cp") else {
        return missing("`cp` is not on PATH".into());
    };
    let paths = match bench_inputs(wasm_files) {
        Ok(v) => v,
        Err(msg) => return missing(msg),
    };
    let worldfit = match worldfit_bin(WHO) {
        Ok(p) => p,
        Err(e) => return support::error(WHO, &e),
    };
    let root = match tmp_root() {
        Ok(r) => r,
        Err(e) => {
            let dir = env!("CARGO_TARGET_TMPDIR");
            return support::error(WHO, &format!("cannot create `{dir}`: {e}"));
        }
    };
    let known = standard_worlds();
    let sha_version = Tool::new(&sha256sum, ["--version"])
        .stdout()
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();

    let plan = match config.mode {
        Mode::Smoke => "1 run".to_string(),
        Mode::Bench => format!("{} warm-up + {} rotating runs", config.warmup, config.runs),
    };
    println!("tag bench: {plan} per measurement and component; MB = 10^6 bytes");
    // The features this bench was built with are the binary's, unless
    // `$WORLDFIT_BIN` names another one.
    let origin = match (std::env::var_os("WORLDFIT_BIN"), cfg!(feature = "wasmtime")) {
        (Some(_), _) => "from $WORLDFIT_BIN",
        (None, true) => "built with the wasmtime feature",
        (None, false) => "built without the wasmtime feature",
    };
    println!("  worldfit   {} ({origin})", worldfit.display());
    println!("  sha256sum  {} ({sha_version})", sha256sum.display());
    println!("  cp         {}", cp.display());
    println!("  temp dirs  {}", root.display());
    if !worldfit.components().any(|c| c.as_os_str() == "release") {
        println!("  note: worldfit is not a release build; its timings are not comparable");
    }
    if cfg!(debug_assertions) {
        println!("  note: this bench is a debug build; in-process timings are not comparable");
    }
    if config.mode == Mode::Smoke {
        println!(
            "  smoke run (no --bench): checking digests only; use `cargo bench --bench tag` for figures"
        );
    }

    let mut rows = Vec::new();
    for path in &paths {
        let name = support::file_name(path);
        // Reading it also puts the file in the page cache for the processes.
        let bytes = std::fs::read(path)
            .unwrap_or_else(|e| fail(&format!("cannot read `{}`: {e}", path.display())));
        let size = bytes.len() as u64;
        let wasm = decode(&bytes).unwrap_or_else(|e| fail(&format!("`{}` {e}", path.display())));

        // The digests must agree: in process, sha256sum, and the layer blob
        // the CLI writes.
        let first = in_process(&root, &bytes, &wasm, &known);
        let peer_hex = Tool::new(&sha256sum, [path])
            .stdout()
            .split_whitespace()
            .next()
            .unwrap_or_default()
            .to_string();
        if first.digest != format!("sha256:{peer_hex}") {
            fail(&format!(
                "{name}: layer digest {} but sha256sum says {peer_hex}",
                first.digest
            ));
        }
        {
            let tmp = fresh_dir(&root);
            let dest = tmp.path().join("oci");
            Tool::new(
                &worldfit,
                [
                    OsString::from("tag"),
                    path.into(),
                    "--layout".into(),
                    dest.clone().into(),
                ],
            )
            .time();
            let blob = dest.join("blobs/sha256").join(&peer_hex);
            match std::fs::metadata(&blob) {
                Ok(m) if m.len() == size => {}
                Ok(m) => fail(&format!(
                    "{name}: worldfit tag wrote a {}-byte layer, the file has {size}",
                    m.len()
                )),
                Err(e) => fail(&format!(
                    "{name}: worldfit tag wrote no blob `{}`: {e}",
                    blob.display()
                )),
            }
        }

        let mut decode_runs = Vec::with_capacity(config.runs);
        let mut build_runs = Vec::with_capacity(config.runs);
        let mut write_runs = Vec::with_capacity(config.runs);
        let mut total_runs = Vec::with_capacity(config.runs);
        let mut process_runs = Vec::with_capacity(config.runs);
        let mut sha_runs = Vec::with_capacity(config.runs);
        let mut cp_runs = Vec::with_capacity(config.runs);
        for i in 0..config.warmup + config.runs {
            let keep = i >= config.warmup;
            // Rotate which measurement goes first, so none always follows
            // another's cache and frequency effects.
            for k in 0..5 {
                match (i + k) % 5 {
                    0 => {
                        let start = Instant::now();
                        let w = decode(std::hint::black_box(&bytes));
                        let wall = start.elapsed();
                        drop(std::hint::black_box(w));
                        if keep {
                            decode_runs.push(wall);
                        }
                    }
                    1 => {
                        let r = in_process(&root, &bytes, &wasm, &known);
                        if keep {
                            build_runs.push(r.build);
                            write_runs.push(r.write);
                            total_runs.push(r.build + r.write);
                        }
                    }
                    2 => {
                        let tmp = fresh_dir(&root);
                        let wall = Tool::new(
                            &worldfit,
                            [
                                OsString::from("tag"),
                                path.into(),
                                "--layout".into(),
                                tmp.path().join("oci").into(),
                            ],
                        )
                        .time();
                        if keep {
                            process_runs.push(wall);
                        }
                    }
                    3 => {
                        let wall = Tool::new(&sha256sum, [path]).time();
                        if keep {
                            sha_runs.push(wall);
                        }
                    }
                    _ => {
                        let tmp = fresh_dir(&root);
                        let wall = Tool::new(
                            &cp,
                            [OsString::from(path), tmp.path().join("copy.wasm").into()],
                        )
                        .time();
                        if keep {
                            cp_runs.push(wall);
                        }
                    }
                }
            }
        }
        rows.push(Row {
            name,
            size,
            decode: stats(&decode_runs),
            build: stats(&build_runs),
            write: stats(&write_runs),
            tag_in_process: stats(&total_runs),
            tag_process: stats(&process_runs),
            sha256sum: stats(&sha_runs),
            cp: stats(&cp_runs),
        });
    }

    // The table: one line per measurement.
    let name_w = name_width(rows.iter().map(|r| r.name.as_str()));
    let what_w = 34;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<name_w$}  {:>7}  {:<what_w$}  {:>9}  {:>9}  {:>8}  {:>10}",
        "component", "size MB", "measurement", "median", "min", "MB/s", "/sha256sum"
    );
    let mut missed = Vec::new();
    for r in &rows {
        let sha_mbps = mbps(r.size, r.sha256sum.median_ms);
        let lines: [(&str, Stats, bool); 7] = [
            (
                "(a) build + layout::tag, in process",
                r.tag_in_process,
                true,
            ),
            ("    build: sha256 + config", r.build, false),
            ("    layout::tag: write", r.write, false),
            ("(b) worldfit tag (process)", r.tag_process, true),
            ("(c) sha256sum (process)", r.sha256sum, false),
            ("(d) cp (process)", r.cp, false),
            ("decode (context; not in a)", r.decode, false),
        ];
        for (i, (what, s, ratio)) in lines.iter().enumerate() {
            let (name, size) = if i == 0 {
                (r.name.as_str(), format!("{:.1}", r.size as f64 / MB))
            } else {
                ("", String::new())
            };
            let speed = mbps(r.size, s.median_ms);
            let vs = if *ratio {
                format!("{:.2}x", speed / sha_mbps)
            } else {
                String::new()
            };
            let _ = writeln!(
                out,
                "{name:<name_w$}  {size:>7}  {what:<what_w$}  {:>6.1} ms  {:>6.1} ms  {speed:>8.0}  {vs:>10}",
                s.median_ms, s.min_ms,
            );
        }
        let a = mbps(r.size, r.tag_in_process.median_ms);
        let verdict = match config.mode {
            Mode::Smoke => "n/a (smoke run)",
            Mode::Bench if a >= TARGET_MBPS => "PASS",
            Mode::Bench => {
                missed.push(format!("{}: (a) {a:.0} MB/s", r.name));
                "FAIL"
            }
        };
        let _ = writeln!(
            out,
            "{:<name_w$}  {:>7}  target (a) >= {TARGET_MBPS:.0} MB/s: {verdict} ({a:.0} MB/s; process (b) {:.0} MB/s)",
            "",
            "",
            mbps(r.size, r.tag_process.median_ms),
        );
    }
    if !missed.is_empty() {
        let _ = writeln!(out, "targets missed: {}", missed.join("; "));
    }
    print!("{out}");
    ExitCode::SUCCESS
}
