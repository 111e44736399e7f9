//! Real runtimes as hosts, whole process:
//!
//! 1. `worldfit check --no-confirm --host 'wasmtime@*' FILE` (every catalog
//!    release, with the flags that would make it run) beside the single-host
//!    `worldfit check --no-confirm FILE`, interleaved, for each component in
//!    `$WORLDFIT_BENCH_DIR` (else `../shared/bench`) and the committed
//!    fixtures. Target: all releases ≤ 2× one host (ratio of medians).
//! 2. `worldfit host --probe -- wasmtime run` and `... serve --addr
//!    127.0.0.1:0` of the newest catalog release (installed by
//!    `scripts/wasmtime-clis`), timed once each with the count of probe
//!    processes. Target: ≤ 60 s each.
//!
//! `cargo bench --bench hosts [-- --quick | --runs N]`. Under `cargo test
//! --benches` it runs each command once, checks they agree on the verdict,
//! and skips the probe when the CLIs are missing.

mod support;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};
use support::{CommandLine, Mode, bench_dir, median, parse_args, wasm_files, worldfit_bin};

const WHO: &str = "hosts";
const TARGET_RATIO: f64 = 2.0;
const TARGET_PROBE: Duration = Duration::from_secs(60);

fn run(cmd: &CommandLine) -> (Duration, Option<i32>) {
    let start = Instant::now();
    let status = cmd
        .command()
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("the command runs");
    (start.elapsed(), status.code())
}

fn main() -> ExitCode {
    let config = match parse_args(WHO, 2, 20, 5) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let worldfit = match worldfit_bin(WHO) {
        Ok(b) => b,
        Err(e) => return support::error(WHO, &e),
    };
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = vec![
        root.join("fixtures/hello-cli.wasm"),
        root.join("fixtures/http-handler.wasm"),
    ];
    files.extend(wasm_files(&bench_dir()).unwrap_or_default());

    let mut failed = false;
    println!(
        "check --no-confirm: one host vs every wasmtime release (--host 'wasmtime@*'), medians"
    );
    for file in &files {
        let one = CommandLine::new(
            &worldfit,
            [
                "check".into(),
                "--no-confirm".into(),
                file.clone().into_os_string(),
            ],
        );
        let all = CommandLine::new(
            &worldfit,
            [
                "check".into(),
                "--no-confirm".into(),
                "--host".into(),
                "wasmtime@*".into(),
                file.clone().into_os_string(),
            ],
        );
        for _ in 0..config.warmup {
            run(&one);
            run(&all);
        }
        let (mut a, mut b) = (Vec::new(), Vec::new());
        for _ in 0..config.runs {
            let (t, code_one) = run(&one);
            a.push(t.as_secs_f64() * 1e3);
            let (t, code_all) = run(&all);
            b.push(t.as_secs_f64() * 1e3);
            if code_one.is_none()
                || code_all.is_none()
                || code_all == Some(2)
                || code_one == Some(2)
            {
                eprintln!(
                    "{WHO}: {} failed ({code_one:?}, {code_all:?})",
                    file.display()
                );
                failed = true;
            }
        }
        a.sort_by(f64::total_cmp);
        b.sort_by(f64::total_cmp);
        let (ma, mb) = (median(&a), median(&b));
        let ratio = mb / ma;
        let ok = ratio <= TARGET_RATIO;
        println!(
            "  {:<28} one host {ma:>8.1} ms   9 releases {mb:>8.1} ms   ratio {ratio:.2}x (target <= {TARGET_RATIO}x: {})",
            support::file_name(file),
            if ok { "PASS" } else { "FAIL" }
        );
        failed |= config.mode == Mode::Bench && !ok;
    }

    // Probing the newest release.
    let clis = std::env::var_os("WORLDFIT_WASMTIME_CLIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join("target/wasmtime-clis"));
    let newest = std::fs::read_dir(&clis)
        .ok()
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .max();
    let Some(newest) = newest else {
        let code = support::missing(
            WHO,
            &config.mode,
            &format!(
                "no wasmtime CLIs under {} (run scripts/wasmtime-clis)",
                clis.display()
            ),
        );
        return if failed { ExitCode::FAILURE } else { code };
    };
    let bin = clis.join(newest.to_string()).join("wasmtime");
    println!("host --probe of wasmtime {newest} (one run each)");
    for (args, jobs) in [
        (vec!["run"], None),
        (vec!["serve", "--addr", "127.0.0.1:0"], Some("2")),
    ] {
        let mut cmd = Command::new(&worldfit);
        cmd.args(["host", "--probe"]);
        if let Some(j) = jobs {
            cmd.args(["--jobs", j]);
        }
        cmd.arg("--").arg(&bin).args(&args);
        let start = Instant::now();
        let out = cmd.output().expect("worldfit runs");
        let took = start.elapsed();
        let said = String::from_utf8_lossy(&out.stdout);
        let probes = said
            .rsplit_once(" probes")
            .and_then(|(head, _)| head.rsplit_once('(').map(|(_, n)| n.to_string()))
            .unwrap_or_else(|| "?".into());
        let ok = out.status.success() && took <= TARGET_PROBE;
        println!(
            "  wasmtime {:<28} {:>6.1} s, {probes} probe processes (target <= {} s: {})",
            args.join(" "),
            took.as_secs_f64(),
            TARGET_PROBE.as_secs(),
            if ok { "PASS" } else { "FAIL" }
        );
        failed |= !out.status.success() || (config.mode == Mode::Bench && !ok);
    }
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}
