//! `select` from containerd against the same selection from a local layout,
//! whole process, with a cold and a warm compile cache, in one run.
//!
//! The image is the 18 MB bench component `py-hello-cli.wasm` (in
//! `$WORLDFIT_BENCH_DIR`, else `../shared/bench` next to the repository),
//! tagged `1.0` into an OCI layout by `worldfit tag` (`SOURCE_DATE_EPOCH=0`),
//! tarred, and imported by `ctr images import --all-platforms --no-unpack`
//! into a private containerd (Debian's `containerd`, started with its own
//! root, state and socket under `/tmp`, the configuration of
//! `tests/common/containerd.rs`; stopped with SIGTERM when the bench ends,
//! also on error). The measurements, each a whole `worldfit` process, wall
//! time from spawn to reap:
//!
//! * (a) `select containerd://docker.io/library/wf:1.0 --containerd-address
//!   SOCK --cache-dir C --json`, cold: C is a fresh empty directory each run,
//!   so the layer is compiled.
//! * (b) the same, warm: one C for all runs, filled by an untimed run first.
//! * (c), (d): the same two with the layout as the source, `DIR/oci:1.0`.
//!
//! Every run must exit 0 and report in its JSON a selected entry, `checked`
//! `instantiated`, the same digest for both sources; anything else fails the
//! bench. Cache directories are created and removed outside the timings.
//!
//! After the untimed cache fills, 1 warm-up round, then N rounds (N=11, or 5
//! with `--quick`, or `--runs N`), the four measurements rotating order each
//! round. Reported: median and min per source and cache, and the
//! containerd/layout ratio of the medians.
//!
//! Target (the issue): select + confirm from containerd with a warm cache
//! in ≤ 100 ms, whole process. A missed target is reported, not an error.
//!
//! `cargo bench --bench containerd [-- --quick]`.
//! Under `cargo test --benches` (no `--bench`
//! argument) it runs each measurement once (the cache fills are the cold
//! runs), checks the selections, and skips (exit 0) when the component,
//! `containerd`, `ctr` or `tar` is missing; under `cargo bench` those are
//! errors.

#[path = "../tests/common/containerd_config.rs"]
mod containerd_config;
mod support;

use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Output, Stdio};
use std::time::{Duration, Instant};
use support::{CommandLine, Mode, median, on_path, parse_args, worldfit_bin};

/// The name this bench's messages start with.
const WHO: &str = "containerd bench";
/// Target: median wall time of (b), select from containerd with a warm cache.
const TARGET_MS: f64 = 100.0;
const WARMUP: usize = 1;
const RUNS: usize = 11;
const QUICK_RUNS: usize = 5;
const COMPONENT: &str = "py-hello-cli.wasm";
const TAG: &str = "1.0";
/// What `ctr images import --base-name docker.io/library/wf` names the tag.
const IMAGE: &str = "docker.io/library/wf:1.0";
const START_TIMEOUT: Duration = Duration::from_secs(20);
const MB: f64 = 1e6;

/// Runs a command to completion with null stdin, its output captured; a
/// failure to spawn or a non-zero exit is an error showing that output.
fn ok(line: &CommandLine, cmd: &mut Command) -> Result<Output, String> {
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run `{}`: {e}", line.display()))?;
    if out.status.success() {
        Ok(out)
    } else {
        Err(format!(
            "`{}` exited {}\n  stdout: {}\n  stderr: {}",
            line.display(),
            out.status,
            String::from_utf8_lossy(&out.stdout).trim_end(),
            String::from_utf8_lossy(&out.stderr).trim_end()
        ))
    }
}

/// A private containerd, stopped on drop.
struct Containerd {
    ctr: PathBuf,
    socket: PathBuf,
    child: Child,
    dir: tempfile::TempDir,
}

impl Containerd {
    /// Starts `containerd` with its own root, state and socket in a new
    /// directory under `/tmp`, and waits until `ctr version` answers.
    fn start(containerd: &Path, ctr: &Path) -> Result<Containerd, String> {
        // A short path: a Unix socket's path is limited to 108 bytes.
        let dir = tempfile::Builder::new()
            .prefix("wf-cbench")
            .tempdir_in("/tmp")
            .map_err(|e| format!("cannot create a directory in /tmp: {e}"))?;
        let d = dir.path();
        let containerd_config::Layout { socket, config, .. } = containerd_config::layout(d);
        let config_file = d.join("config.toml");
        std::fs::write(&config_file, config)
            .map_err(|e| format!("cannot write `{}`: {e}", config_file.display()))?;
        let log_file = d.join("log.txt");
        let log = std::fs::File::create(&log_file)
            .map_err(|e| format!("cannot create `{}`: {e}", log_file.display()))?;
        let log2 = log
            .try_clone()
            .map_err(|e| format!("cannot duplicate the log's descriptor: {e}"))?;
        let child = Command::new(containerd)
            .arg("--config")
            .arg(&config_file)
            .stdin(Stdio::null())
            .stdout(log2)
            .stderr(log)
            .spawn()
            .map_err(|e| format!("cannot run `{}`: {e}", containerd.display()))?;
        // From here on, dropping `c` stops containerd.
        let mut c = Containerd {
            ctr: ctr.to_path_buf(),
            socket,
            child,
            dir,
        };
        let started = Instant::now();
        loop {
            let answered = c
                .ctr(&["version"])
                .command()
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if answered {
                return Ok(c);
            }
            if let Ok(Some(status)) = c.child.try_wait() {
                return Err(format!("containerd exited {status}:\n{}", c.log()));
            }
            if started.elapsed() > START_TIMEOUT {
                return Err(format!(
                    "containerd did not answer `ctr version` within {} s:\n{}",
                    START_TIMEOUT.as_secs(),
                    c.log()
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// containerd's log so far.
    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log.txt")).unwrap_or_default()
    }

    /// `ctr --address SOCKET ARGS...`.
    fn ctr(&self, args: &[&str]) -> CommandLine {
        let mut all: Vec<OsString> = vec!["--address".into(), self.socket.clone().into()];
        all.extend(args.iter().map(OsString::from));
        CommandLine::new(&self.ctr, all)
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        // SIGTERM: containerd removes its socket and exits.
        // SAFETY: `kill` takes plain integers; the pid is our unreaped child.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        eprintln!("{WHO}: containerd ignored SIGTERM for 10 s; killing it");
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// One `worldfit select` as measured: wall time, the selected digest, and
/// anything it wrote to stderr.
struct Selected {
    wall: Duration,
    digest: String,
    stderr: String,
}

/// Runs one select, timed from spawn to reap (stdout and stderr captured
/// through pipes), and checks its JSON: a selected entry, instantiated.
fn select(line: &CommandLine) -> Result<Selected, String> {
    let start = Instant::now();
    let out = line.command().stdin(Stdio::null()).output();
    let wall = start.elapsed();
    let out = out.map_err(|e| format!("cannot run `{}`: {e}", line.display()))?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr).trim_end().to_string();
    let bad = |why: &str| {
        format!(
            "`{}`: {why}\n  exit: {}\n  stdout: {}\n  stderr: {stderr}",
            line.display(),
            out.status,
            stdout.trim_end()
        )
    };
    if !out.status.success() {
        return Err(bad("did not exit 0"));
    }
    let json: serde_json::Value =
        serde_json::from_str(&stdout).map_err(|e| bad(&format!("stdout is not JSON: {e}")))?;
    let chosen = &json["selected"];
    if chosen.is_null() {
        return Err(bad("no entry selected"));
    }
    if chosen["checked"] != "instantiated" {
        return Err(bad(&format!(
            "the selected entry was checked `{}`, not `instantiated`",
            chosen["checked"]
        )));
    }
    let digest = chosen["digest"]
        .as_str()
        .ok_or_else(|| bad("the selected entry has no digest"))?
        .to_string();
    Ok(Selected {
        wall,
        digest,
        stderr,
    })
}

/// One source, both ways.
struct Source {
    name: &'static str,
    reference: String,
    /// The cache directory the warm runs share.
    warm: tempfile::TempDir,
    cold_runs: Vec<Duration>,
    warm_runs: Vec<Duration>,
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

/// What the measurements need besides the sources.
struct Bench<'a> {
    worldfit: &'a Path,
    socket: &'a Path,
    work: &'a Path,
    /// The digest every run must select (the first run's).
    expected: Option<String>,
    /// Distinct stderr seen from successful runs.
    notes: Vec<String>,
}

impl Bench<'_> {
    fn line(&self, source: &Source, cache: &Path) -> CommandLine {
        CommandLine::new(
            self.worldfit,
            [
                OsString::from("select"),
                source.reference.clone().into(),
                "--containerd-address".into(),
                self.socket.into(),
                "--cache-dir".into(),
                cache.into(),
                "--json".into(),
            ],
        )
    }

    /// Runs one select and checks it picked the same entry as every other.
    fn run(&mut self, source: &Source, cache: &Path) -> Result<Duration, String> {
        let line = self.line(source, cache);
        let s = select(&line)?;
        match &self.expected {
            None => self.expected = Some(s.digest),
            Some(d) if *d == s.digest => {}
            Some(d) => {
                return Err(format!(
                    "`{}` selected {} but an earlier run selected {d}",
                    line.display(),
                    s.digest
                ));
            }
        }
        if !s.stderr.is_empty() && !self.notes.contains(&s.stderr) {
            self.notes.push(s.stderr);
        }
        Ok(s.wall)
    }

    /// A run with a fresh, empty cache directory, made and removed outside
    /// the timing.
    fn cold(&mut self, source: &Source) -> Result<Duration, String> {
        let cache = fresh_dir(self.work, "cold")?;
        self.run(source, cache.path())
    }

    fn warm(&mut self, source: &Source) -> Result<Duration, String> {
        self.run(source, source.warm.path())
    }
}

fn fresh_dir(root: &Path, prefix: &str) -> Result<tempfile::TempDir, String> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(root)
        .map_err(|e| format!("cannot create a directory in `{}`: {e}", root.display()))
}

/// Where the layout, the tar and the cache directories go: the target
/// directory's `tmp/`, as in the tag bench.
fn tmp_root() -> Result<PathBuf, String> {
    let root = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&root)
        .map_err(|e| format!("cannot create `{}`: {e}", root.display()))?;
    Ok(root)
}

fn first_line(line: &CommandLine) -> String {
    match line.command().stdin(Stdio::null()).output() {
        Ok(o) => String::from_utf8_lossy(&o.stdout)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string(),
        Err(e) => format!("version unknown: {e}"),
    }
}

fn main() -> ExitCode {
    let config = match parse_args(WHO, WARMUP, RUNS, QUICK_RUNS) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // Missing prerequisites fail `cargo bench` but only skip the smoke run.
    let missing = |msg: String| support::missing(WHO, &config.mode, &msg);

    let mut tools = Vec::new();
    for name in ["containerd", "ctr", "tar"] {
        match on_path(name) {
            Some(p) => tools.push(p),
            None => {
                return missing(format!(
                    "`{name}` is not on PATH (Debian: apt-get install containerd tar)"
                ));
            }
        }
    }
    let [containerd, ctr, tar] = <[PathBuf; 3]>::try_from(tools).expect("three tools");
    let component = support::bench_dir().join(COMPONENT);
    let size = match std::fs::metadata(&component) {
        Ok(m) if m.is_file() => m.len(),
        Ok(_) => return missing(format!("`{}` is not a file", component.display())),
        Err(e) => {
            return missing(format!(
                "cannot read `{}`: {e} (set WORLDFIT_BENCH_DIR)",
                component.display()
            ));
        }
    };
    let worldfit = match worldfit_bin(WHO) {
        Ok(p) => p,
        Err(e) => return support::error(WHO, &e),
    };
    match run(
        &config,
        &worldfit,
        &containerd,
        &ctr,
        &tar,
        &component,
        size,
    ) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("\n{WHO}: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Everything after the prerequisites, returning errors (rather than
/// exiting) so that containerd and the temporary directories are dropped.
fn run(
    config: &support::Config,
    worldfit: &Path,
    containerd_bin: &Path,
    ctr: &Path,
    tar: &Path,
    component: &Path,
    size: u64,
) -> Result<(), String> {
    let root = tmp_root()?;
    let work = fresh_dir(&root, "worldfit-bench-containerd")?;
    let layout = work.path().join("oci");
    let archive = work.path().join("wf.tar");

    let line = CommandLine::new(
        worldfit,
        [
            OsString::from("tag"),
            component.into(),
            "--layout".into(),
            layout.clone().into(),
            "--tag".into(),
            TAG.into(),
        ],
    );
    ok(&line, line.command().env("SOURCE_DATE_EPOCH", "0"))?;
    let line = CommandLine::new(
        tar,
        [
            OsString::from("-C"),
            layout.clone().into(),
            "-cf".into(),
            archive.clone().into(),
            "oci-layout".into(),
            "index.json".into(),
            "blobs".into(),
        ],
    );
    ok(&line, &mut line.command())?;

    let c = Containerd::start(containerd_bin, ctr)?;
    let archive_arg = archive.to_string_lossy();
    let line = c.ctr(&[
        "-n",
        "default",
        "images",
        "import",
        "--all-platforms",
        "--no-unpack",
        "--base-name",
        "docker.io/library/wf",
        &archive_arg,
    ]);
    ok(&line, &mut line.command())?;

    let containerd_version = first_line(&CommandLine::new(containerd_bin, ["--version"]));
    let plan = match config.mode {
        Mode::Smoke => "1 run".to_string(),
        Mode::Bench => format!(
            "untimed cache fills, {} warm-up + {} rotating runs",
            config.warmup, config.runs
        ),
    };
    println!(
        "{WHO}: {plan} per measurement; whole process, wall time spawn→reap; {COMPONENT} ({:.1} MB = 10^6 bytes)",
        size as f64 / MB
    );
    println!("  worldfit    {}", worldfit.display());
    println!(
        "  containerd  {} ({containerd_version})",
        containerd_bin.display()
    );
    println!("  socket      {}", c.socket.display());
    println!("  layout      {}:{TAG}", layout.display());
    println!("  image       containerd://{IMAGE} (ctr images import --all-platforms --no-unpack)");
    if !worldfit.components().any(|p| p.as_os_str() == "release") {
        println!("  note: worldfit is not a release build; its timings are not comparable");
    }
    if config.mode == Mode::Smoke {
        println!(
            "  smoke run (no --bench): checking selections only; use `cargo bench --bench containerd` for figures"
        );
    }

    let mut sources = [
        Source {
            name: "containerd",
            reference: format!("containerd://{IMAGE}"),
            warm: fresh_dir(work.path(), "warm")?,
            cold_runs: Vec::new(),
            warm_runs: Vec::new(),
        },
        Source {
            name: "layout",
            reference: format!("{}:{TAG}", layout.display()),
            warm: fresh_dir(work.path(), "warm")?,
            cold_runs: Vec::new(),
            warm_runs: Vec::new(),
        },
    ];
    let mut bench = Bench {
        worldfit,
        socket: &c.socket,
        work: work.path(),
        expected: None,
        notes: Vec::new(),
    };

    // Fill each warm cache: a cold run into it. In the smoke run these are
    // the cold measurements.
    for s in &mut sources {
        let wall = bench.run(s, s.warm.path())?;
        if config.mode == Mode::Smoke {
            s.cold_runs.push(wall);
        }
    }
    if config.mode == Mode::Smoke {
        for s in &mut sources {
            let wall = bench.warm(s)?;
            s.warm_runs.push(wall);
        }
    } else {
        for i in 0..config.warmup + config.runs {
            let keep = i >= config.warmup;
            // Rotate which measurement goes first, so none always follows
            // another's cache and frequency effects.
            for k in 0..4 {
                let m = (i + k) % 4;
                let s = &mut sources[m / 2];
                let wall = if m % 2 == 0 {
                    bench.cold(s)?
                } else {
                    bench.warm(s)?
                };
                if keep {
                    if m % 2 == 0 {
                        s.cold_runs.push(wall);
                    } else {
                        s.warm_runs.push(wall);
                    }
                }
            }
        }
    }

    // The table.
    let rows: Vec<(&str, Stats, Stats)> = sources
        .iter()
        .map(|s| (s.name, stats(&s.cold_runs), stats(&s.warm_runs)))
        .collect();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<18}  {:>11}  {:>11}  {:>11}  {:>11}",
        "source", "cold median", "cold min", "warm median", "warm min"
    );
    for (name, cold, warm) in &rows {
        let _ = writeln!(
            out,
            "{name:<18}  {:>8.1} ms  {:>8.1} ms  {:>8.1} ms  {:>8.1} ms",
            cold.median_ms, cold.min_ms, warm.median_ms, warm.min_ms
        );
    }
    let (_, ctd_cold, ctd_warm) = rows[0];
    let (_, lay_cold, lay_warm) = rows[1];
    let _ = writeln!(
        out,
        "{:<18}  {:>10.2}x  {:>11}  {:>10.2}x",
        "containerd/layout",
        ctd_cold.median_ms / lay_cold.median_ms,
        "",
        ctd_warm.median_ms / lay_warm.median_ms,
    );
    let warm_ms = ctd_warm.median_ms;
    let verdict = match config.mode {
        Mode::Smoke => "n/a (smoke run)",
        Mode::Bench if warm_ms <= TARGET_MS => "PASS",
        Mode::Bench => "FAIL",
    };
    let _ = writeln!(
        out,
        "target: warm containerd ≤ {TARGET_MS:.0} ms: {verdict} ({warm_ms:.1} ms)"
    );
    if let Some(d) = &bench.expected {
        let _ = writeln!(out, "selected {d}, checked instantiated, in every run");
    }
    for note in &bench.notes {
        let _ = writeln!(out, "note: a run wrote to stderr: {note}");
    }
    print!("{out}");
    drop(c);
    Ok(())
}
