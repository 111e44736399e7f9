//! Whole-process comparison with the peer tool on the same question:
//!
//! ```text
//! worldfit   check --no-confirm --wit W --world cmd FILE
//! wasm-tools component targets --semver-compatible W --world cmd FILE
//! ```
//!
//! W is a temporary WIT directory: the repository's `wit/deps/*.wit` plus a
//! root package whose world `cmd` is `wasi:cli/command@0.2.12` with
//! `wasi:http` 0.2.12 types and outgoing-handler, so every bench component
//! fits and both tools should exit 0. FILE is each `*.wasm` in
//! `$WORLDFIT_BENCH_DIR`, else `../shared/bench` next to the repository.
//!
//! Each command gets 3 warm-up runs, then N alternating runs (N=30, or 5
//! with `--quick`, or `--runs N`). Per run: wall time from spawn to reap, and
//! the child's peak RSS (`ru_maxrss` from `wait4`). Reported per component:
//! median and p90 wall time, worldfit/peer ratio of medians (target ≤ 1.0),
//! peak RSS, and worldfit's peak RSS as a multiple of the file size
//! (target ≤ 3×).
//!
//! `cargo bench --bench cli_vs_peer [-- --quick]`. Under `cargo test
//! --benches` (no `--bench` argument) it only checks that both tools agree,
//! with one run each, and skips (exit 0) when an input or `wasm-tools` is
//! missing; under `cargo bench` those are errors.

mod support;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use support::{
    CommandLine, MIB, Mode, bench_inputs, median, name_width, on_path, parse_args, wasm_entries,
    worldfit_bin,
};

/// The name this bench's messages start with.
const WHO: &str = "cli_vs_peer";

/// Target: worldfit's median wall time / the peer's.
const TARGET_RATIO: f64 = 1.0;
/// Target: worldfit's peak RSS / the component's size.
const TARGET_RSS_MULTIPLE: f64 = 3.0;
const WARMUP: usize = 3;
const RUNS: usize = 30;
const QUICK_RUNS: usize = 5;

const ROOT_WIT: &str = "package bench:host;\n\
world cmd { include wasi:cli/command@0.2.12; import wasi:http/types@0.2.12; import wasi:http/outgoing-handler@0.2.12; }\n";

/// One measured process.
type Run = support::Measured;

/// A command line to measure.
struct Tool {
    name: &'static str,
    line: CommandLine,
}

impl Tool {
    fn command(&self) -> Command {
        self.line.command()
    }

    fn display(&self) -> String {
        self.line.display()
    }

    /// One measured run (see [`support::measure`]).
    fn run(&self) -> std::io::Result<Run> {
        support::measure(&mut self.command())
    }

    /// Runs once more with output captured, to show why it exited as it did.
    fn explain(&self) -> String {
        match self.command().stdin(Stdio::null()).output() {
            Ok(o) => format!(
                "  $ {}\n  exit: {}\n  stdout: {}\n  stderr: {}\n",
                self.display(),
                o.status,
                String::from_utf8_lossy(&o.stdout).trim_end(),
                String::from_utf8_lossy(&o.stderr).trim_end()
            ),
            Err(e) => format!("  $ {}\n  failed to spawn: {e}\n", self.display()),
        }
    }
}

/// The bench components with their sizes; only metadata is read, so the
/// bench process stays small (see [`Tool::run`]).
fn inputs(dir: &Path) -> std::io::Result<Vec<(PathBuf, u64)>> {
    let mut out = Vec::new();
    for path in wasm_entries(dir)? {
        let path = path?;
        let size = std::fs::metadata(&path)?.len();
        out.push((path, size));
    }
    out.sort();
    Ok(out)
}

/// W: `deps/` from the repository's `wit/deps/*.wit`, plus `root.wit`.
fn make_wit_dir() -> std::io::Result<tempfile::TempDir> {
    let dir = tempfile::Builder::new()
        .prefix("worldfit-bench-wit")
        .tempdir()?;
    let deps = dir.path().join("deps");
    std::fs::create_dir(&deps)?;
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("wit/deps");
    let mut copied = 0;
    for entry in std::fs::read_dir(&src)? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "wit") {
            std::fs::copy(&path, deps.join(path.file_name().expect("a file name")))?;
            copied += 1;
        }
    }
    if copied == 0 {
        return Err(std::io::Error::other(format!(
            "no .wit files in `{}`",
            src.display()
        )));
    }
    std::fs::write(dir.path().join("root.wit"), ROOT_WIT)?;
    Ok(dir)
}

/// Nearest-rank percentile.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

struct Stats {
    code: i32,
    median_ms: f64,
    p90_ms: f64,
    min_ms: f64,
    peak_rss_mib: f64,
}

fn stats(runs: &[Run]) -> Stats {
    let mut ms: Vec<f64> = runs.iter().map(|r| r.wall.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    Stats {
        code: runs[0].code,
        median_ms: median(&ms),
        p90_ms: percentile(&ms, 90.0),
        min_ms: ms[0],
        peak_rss_mib: runs.iter().map(|r| r.maxrss_kib).max().unwrap_or(0) as f64 / 1024.0,
    }
}

/// This process's own peak RSS (`VmHWM`), in MiB. Not `getrusage(RUSAGE_SELF)`:
/// that includes cargo's footprint, folded in when cargo spawned us.
fn self_hwm_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Fails loudly: the tools disagree, or a tool changed its answer.
fn disagreement(what: &str, tools: &[&Tool]) -> ExitCode {
    let mut msg = format!("\ncli_vs_peer: FAILED: {what}\n");
    for t in tools {
        msg.push_str(&t.explain());
    }
    eprintln!("{msg}");
    ExitCode::FAILURE
}

fn main() -> ExitCode {
    let config = match parse_args(WHO, WARMUP, RUNS, QUICK_RUNS) {
        Ok(c) => c,
        Err(code) => return code,
    };
    // Missing prerequisites fail `cargo bench` but only skip the smoke run.
    let missing = |msg: String| support::missing(WHO, &config.mode, &msg);

    let Some(peer) = on_path("wasm-tools") else {
        return missing(
            "`wasm-tools` is not on PATH; install it with `cargo install wasm-tools --locked`"
                .into(),
        );
    };
    let inputs = match bench_inputs(inputs) {
        Ok(v) => v,
        Err(msg) => return missing(msg),
    };
    let worldfit = match worldfit_bin(WHO) {
        Ok(p) => p,
        Err(e) => return support::error(WHO, &e),
    };
    let wit = match make_wit_dir() {
        Ok(d) => d,
        Err(e) => {
            return support::error(WHO, &format!("cannot create the host WIT directory: {e}"));
        }
    };
    let peer_version = Command::new(&peer)
        .arg("--version")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|e| format!("version unknown: {e}"));

    let plan = match config.mode {
        Mode::Smoke => "1 run".to_string(),
        Mode::Bench => format!(
            "{} warm-up + {} alternating runs",
            config.warmup, config.runs
        ),
    };
    println!(
        "cli_vs_peer: {plan} per tool and component; wall time spawn→reap, peak RSS = wait4 ru_maxrss"
    );
    println!("  worldfit   {}", worldfit.display());
    println!("  wasm-tools {} ({peer_version})", peer.display());
    println!("  host WIT   {} (world cmd)", wit.path().display());
    let release = worldfit.components().any(|c| c.as_os_str() == "release");
    if !release {
        println!("  note: worldfit is not a release build; its timings are not comparable");
    }
    if config.mode == Mode::Smoke {
        println!(
            "  smoke run (no --bench): checking agreement only; use `cargo bench --bench cli_vs_peer` for figures"
        );
    }

    struct Row {
        name: String,
        size: u64,
        wf: Stats,
        peer: Stats,
    }
    let mut rows = Vec::new();
    for (path, size) in &inputs {
        let name = support::file_name(path);
        let wf = Tool {
            name: "worldfit",
            line: CommandLine {
                program: worldfit.clone(),
                args: vec![
                    "check".into(),
                    "--no-confirm".into(),
                    "--wit".into(),
                    wit.path().into(),
                    "--world".into(),
                    "cmd".into(),
                    path.into(),
                ],
            },
        };
        let pe = Tool {
            name: "wasm-tools",
            line: CommandLine {
                program: peer.clone(),
                args: vec![
                    "component".into(),
                    "targets".into(),
                    "--semver-compatible".into(),
                    wit.path().into(),
                    "--world".into(),
                    "cmd".into(),
                    path.into(),
                ],
            },
        };
        let measure = |t: &Tool| {
            t.run().unwrap_or_else(|e| {
                eprintln!("cli_vs_peer: failed to run `{}`: {e}", t.display());
                std::process::exit(1);
            })
        };

        // The first run of each decides the expected exit codes.
        let first = [measure(&wf), measure(&pe)];
        if first[0].code != first[1].code {
            return disagreement(
                &format!(
                    "on {name}: worldfit exit {} but wasm-tools exit {}",
                    first[0].code, first[1].code
                ),
                &[&wf, &pe],
            );
        }
        if first[0].code != 0 {
            eprintln!(
                "cli_vs_peer: warning: both tools exit {} on {name}; expected 0 (compatible)",
                first[0].code
            );
        }
        let expected = first[0].code;
        for _ in 1..config.warmup {
            for t in [&wf, &pe] {
                let r = measure(t);
                if r.code != expected {
                    return disagreement(
                        &format!(
                            "{} exited {} on {name} after exiting {expected}",
                            t.name, r.code
                        ),
                        &[t],
                    );
                }
            }
        }

        let mut wf_runs = Vec::with_capacity(config.runs);
        let mut pe_runs = Vec::with_capacity(config.runs);
        if config.warmup == 0 {
            // Smoke: the agreement runs are the measurement.
            wf_runs.push(first[0]);
            pe_runs.push(first[1]);
        } else {
            for i in 0..config.runs {
                // Alternate which tool goes first, so neither always follows
                // the other's cache and frequency effects.
                let order = if i % 2 == 0 {
                    [(&wf, 0), (&pe, 1)]
                } else {
                    [(&pe, 1), (&wf, 0)]
                };
                for (t, slot) in order {
                    let r = measure(t);
                    if r.code != expected {
                        return disagreement(
                            &format!(
                                "{} exited {} on {name} after exiting {expected}",
                                t.name, r.code
                            ),
                            &[t],
                        );
                    }
                    if slot == 0 {
                        wf_runs.push(r)
                    } else {
                        pe_runs.push(r)
                    }
                }
            }
        }
        rows.push(Row {
            name,
            size: *size,
            wf: stats(&wf_runs),
            peer: stats(&pe_runs),
        });
    }

    // The table.
    let name_w = name_width(rows.iter().map(|r| r.name.as_str()));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "\n{:<name_w$}  {:>8}  {:<10}  {:>4}  {:>8}  {:>8}  {:>8}  {:>9}  {:>8}",
        "component", "size MiB", "tool", "exit", "median", "p90", "min", "peak RSS", "RSS/size"
    );
    let mut missed = Vec::new();
    for r in &rows {
        for (i, (tool, s)) in [("worldfit", &r.wf), ("wasm-tools", &r.peer)]
            .into_iter()
            .enumerate()
        {
            let (name, size) = if i == 0 {
                (r.name.as_str(), format!("{:.1}", r.size as f64 / MIB))
            } else {
                ("", String::new())
            };
            let _ = writeln!(
                out,
                "{name:<name_w$}  {size:>8}  {tool:<10}  {:>4}  {:>5.1} ms  {:>5.1} ms  {:>5.1} ms  {:>5.1} MiB  {:>7.2}x",
                s.code,
                s.median_ms,
                s.p90_ms,
                s.min_ms,
                s.peak_rss_mib,
                s.peak_rss_mib * MIB / r.size as f64,
            );
        }
        let ratio = r.wf.median_ms / r.peer.median_ms;
        let rss_multiple = r.wf.peak_rss_mib * MIB / r.size as f64;
        let judge = |ok: bool| {
            if config.mode == Mode::Smoke {
                "n/a"
            } else if ok {
                "met"
            } else {
                "MISSED"
            }
        };
        let _ = writeln!(
            out,
            "{:<name_w$}  {:>8}  worldfit/peer median {ratio:.2}x (target <= {TARGET_RATIO:.1}: {}), worldfit RSS {rss_multiple:.2}x size (target <= {TARGET_RSS_MULTIPLE:.0}x: {})",
            "",
            "",
            judge(ratio <= TARGET_RATIO),
            judge(rss_multiple <= TARGET_RSS_MULTIPLE),
        );
        if config.mode == Mode::Bench {
            if ratio > TARGET_RATIO {
                missed.push(format!("{}: time ratio {ratio:.2}", r.name));
            }
            if rss_multiple > TARGET_RSS_MULTIPLE {
                missed.push(format!("{}: RSS {rss_multiple:.2}x size", r.name));
            }
        }
    }
    if let Some(hwm) = self_hwm_mib() {
        let _ = writeln!(
            out,
            "bench process peak RSS {hwm:.1} MiB (a floor under each child's reported peak RSS; see Tool::run)"
        );
    }
    if !missed.is_empty() {
        let _ = writeln!(out, "targets missed: {}", missed.join("; "));
    }
    print!("{out}");
    ExitCode::SUCCESS
}
