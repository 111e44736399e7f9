//! In-process cost of a type-level verdict on large real components.
//!
//! For each `*.wasm` in the bench directory (`$WORLDFIT_BENCH_DIR`, else
//! `../shared/bench` next to the repository) this measures
//!
//! * `decode`: `worldfit::component::decode` of the bytes (already in memory);
//! * `decode_check`: `decode` plus `verdict::check` against `Host::wasmtime()`
//!   (the host is built once, outside the timing loop);
//! * `scan`: `worldfit::engine_features::scan` alone (the section walk that
//!   finds engine features and checks framing; part of `decode`);
//! * `validate` (the peer): wasmparser 0.263's `Validator::validate_all` with
//!   every feature on, what `wasm-tools validate` runs, on one thread;
//! * `body_walk`: reading every instruction of every function body, the
//!   cost engine-feature detection would add if it walked bodies (it reads
//!   sections only; see `worldfit::engine_features`);
//!
//! and, once, `Host::wasmtime()` itself (parsing the embedded WIT).
//!
//! Targets: median decode + check of the 12 MB JS component ≤ 10 ms, and
//! decode + check ≤ 0.5× `validate` of the same file (printed as `ratio`).
//!
//! Run with `cargo bench --bench verdict` (criterion arguments work after
//! `--`, e.g. `-- --quick` or a name filter). After criterion's own output it
//! prints a table of the medians it measured in this run.

mod support;

use criterion::{BenchmarkId, Criterion, SamplingMode, black_box};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};
use support::{MIB, bench_dir, wasm_files};
use worldfit::component::{Wasm, decode};
use worldfit::host::Host;
use worldfit::verdict::check;

/// The target for decode + check of the JS component, in milliseconds.
const TARGET_MS: f64 = 10.0;
/// The component the target applies to.
const TARGET_COMPONENT: &str = "js-echo-cli";

struct Input {
    /// File stem, used as the criterion group name.
    name: String,
    bytes: Vec<u8>,
}

fn load_inputs(dir: &Path) -> std::io::Result<Vec<Input>> {
    wasm_files(dir)?
        .into_iter()
        .map(|p| {
            let name = p
                .file_stem()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned();
            Ok(Input {
                name,
                bytes: std::fs::read(&p)?,
            })
        })
        .collect()
}

/// Where criterion writes its results: `$CRITERION_HOME`, else
/// `$CARGO_TARGET_DIR/criterion`, else `criterion/` in the target directory
/// this bench binary was built into (`<target>/release/deps/verdict-…`).
/// Set explicitly so the summary reads back exactly what criterion wrote.
fn criterion_dir() -> PathBuf {
    if let Some(home) = std::env::var_os("CRITERION_HOME") {
        return PathBuf::from(home);
    }
    if let Some(target) = std::env::var_os("CARGO_TARGET_DIR") {
        return Path::new(&target).join("criterion");
    }
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(Path::to_path_buf))
        .map(|target| target.join("criterion"))
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target/criterion"))
}

/// One line about what the verdict is, so a regression that makes the
/// check trivially fast (e.g. an early error) is visible.
fn describe(input: &Input, host: &Host) -> String {
    let size = input.bytes.len() as f64 / MIB;
    match decode(&input.bytes) {
        Err(e) => format!("{}.wasm ({size:.1} MiB): decode error: {e}", input.name),
        Ok(wasm) => {
            let kind = match &wasm {
                Wasm::Component(c) => {
                    format!(
                        "component, {} imports",
                        c.resolve.worlds[c.world].imports.len()
                    )
                }
                Wasm::Module(m) => format!("core module, {} imports", m.imports.len()),
            };
            let v = check(&wasm, host);
            let outcome = if v.compatible {
                format!("compatible (world {})", v.world.unwrap_or_default())
            } else {
                let first = v
                    .problems
                    .first()
                    .map(|p| format!("; first: {} {}", p.name, p.detail))
                    .unwrap_or_default();
                format!(
                    "incompatible, {} problem(s) vs closest {}{first}",
                    v.problems.len(),
                    v.closest.unwrap_or_default()
                )
            };
            format!(
                "{}.wasm ({size:.1} MiB, {kind}) vs wasmtime: {outcome}",
                input.name
            )
        }
    }
}

/// The median (ns) criterion estimated for `group/function` in this run, or
/// `None` if it did not run (filtered out, or test mode).
fn median_ns(dir: &Path, group: &str, function: &str, since: SystemTime) -> Option<f64> {
    let path = dir.join(group).join(function).join("new/estimates.json");
    let fresh = std::fs::metadata(&path)
        .and_then(|m| m.modified())
        .is_ok_and(|t| t >= since);
    if !fresh {
        return None;
    }
    let json: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).ok()?).ok()?;
    json["median"]["point_estimate"].as_f64()
}

fn fmt_ms(ns: Option<f64>) -> String {
    match ns {
        Some(ns) => format!("{:.2} ms", ns / 1e6),
        None => "-".into(),
    }
}

/// Reads every instruction of every function body (nested modules
/// included), returning how many there were.
fn body_walk(bytes: &[u8]) -> usize {
    let mut count = 0;
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        if let Ok(wasmparser::Payload::CodeSectionEntry(body)) = payload {
            let mut ops = body.get_operators_reader().expect("bench input reads");
            while !ops.eof() {
                ops.read().expect("bench input reads");
                count += 1;
            }
        }
    }
    count
}

fn main() {
    let started = SystemTime::now();
    let args: Vec<String> = std::env::args().collect();
    // `cargo bench` passes `--bench`; `cargo test --benches` does not, and
    // criterion then runs each routine once as a smoke test.
    let bench_mode = args.iter().any(|a| a == "--bench") && !args.iter().any(|a| a == "--test");

    let dir = bench_dir();
    let inputs = match load_inputs(&dir) {
        Ok(v) if !v.is_empty() => v,
        result => {
            let why = match result {
                Err(e) => e.to_string(),
                Ok(_) => "no *.wasm files".into(),
            };
            eprintln!(
                "verdict bench: no inputs in `{}` ({why}); set WORLDFIT_BENCH_DIR to a directory of .wasm components",
                dir.display()
            );
            if bench_mode {
                std::process::exit(1);
            }
            eprintln!("verdict bench: skipping component benchmarks in test mode");
            Vec::new()
        }
    };

    let host = Host::wasmtime();
    for input in &inputs {
        println!("input: {}", describe(input, &host));
    }

    let out_dir = criterion_dir();
    let mut c = Criterion::default()
        .sample_size(20)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4))
        .nresamples(20_000)
        .output_directory(&out_dir)
        .configure_from_args();

    for input in &inputs {
        let mut group = c.benchmark_group(&input.name);
        // Each iteration takes milliseconds: flat sampling keeps the sample
        // count modest without criterion extending the measurement time.
        group.sampling_mode(SamplingMode::Flat);
        group.bench_with_input(
            BenchmarkId::from_parameter("decode"),
            &input.bytes,
            |b, bytes| b.iter(|| decode(black_box(bytes)).expect("bench input decodes")),
        );
        group.bench_with_input(
            BenchmarkId::from_parameter("decode_check"),
            &input.bytes,
            |b, bytes| {
                b.iter(|| {
                    let wasm = decode(black_box(bytes)).expect("bench input decodes");
                    check(&wasm, black_box(&host))
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::from_parameter("scan"),
            &input.bytes,
            |b, bytes| {
                b.iter(|| {
                    worldfit::engine_features::scan(black_box(bytes)).expect("bench input scans")
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::from_parameter("validate"),
            &input.bytes,
            |b, bytes| {
                b.iter(|| {
                    wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
                        .validate_all(black_box(bytes))
                        .expect("bench input validates")
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::from_parameter("body_walk"),
            &input.bytes,
            |b, bytes| b.iter(|| body_walk(black_box(bytes))),
        );
        group.finish();
    }
    {
        let mut group = c.benchmark_group("host");
        group.sampling_mode(SamplingMode::Flat);
        group.bench_function(BenchmarkId::from_parameter("wasmtime"), |b| {
            b.iter(Host::wasmtime)
        });
        group.finish();
    }
    c.final_summary();

    if !bench_mode {
        return;
    }

    // The medians, read back from what criterion just wrote.
    println!();
    println!("worldfit in-process medians (criterion, this run)");
    let name_w = inputs
        .iter()
        .map(|i| i.name.len() + 5)
        .max()
        .unwrap_or(0)
        .max("Host::wasmtime()".len());
    println!(
        "  {:<name_w$}  {:>9}  {:>10}  {:>10}  {:>14}  {:>10}  {:>9}  {:>10}  target",
        "component", "size", "scan", "decode", "decode+check", "validate", "ratio", "body walk"
    );
    let mut missed = false;
    for input in &inputs {
        let d = median_ns(&out_dir, &input.name, "decode", started);
        let dc = median_ns(&out_dir, &input.name, "decode_check", started);
        let target = if input.name == TARGET_COMPONENT {
            match dc {
                Some(ns) if ns / 1e6 <= TARGET_MS => format!("<= {TARGET_MS} ms: MET"),
                Some(_) => {
                    missed = true;
                    format!("<= {TARGET_MS} ms: MISSED")
                }
                None => "(not run)".into(),
            }
        } else {
            String::new()
        };
        let v = median_ns(&out_dir, &input.name, "validate", started);
        let walk = median_ns(&out_dir, &input.name, "body_walk", started);
        let ratio = match (dc, v) {
            (Some(dc), Some(v)) => format!("{:.2}x", dc / v),
            _ => "-".into(),
        };
        let line = format!(
            "  {:<name_w$}  {:>5.1} MiB  {:>10}  {:>10}  {:>14}  {:>10}  {:>9}  {:>10}  {target}",
            format!("{}.wasm", input.name),
            input.bytes.len() as f64 / MIB,
            fmt_ms(median_ns(&out_dir, &input.name, "scan", started)),
            fmt_ms(d),
            fmt_ms(dc),
            fmt_ms(v),
            ratio,
            fmt_ms(walk),
        );
        println!("{}", line.trim_end());
    }
    println!(
        "  {:<name_w$}  {:>9}  {:>10}",
        "Host::wasmtime()",
        "",
        fmt_ms(median_ns(&out_dir, "host", "wasmtime", started))
    );
    if missed {
        println!(
            "  note: decode + check of {TARGET_COMPONENT}.wasm is over the {TARGET_MS} ms target"
        );
    }
}
