//! Confirmation speed, in-process, on the large real components in
//! `../shared/bench` (or `$WORLDFIT_BENCH_DIR`):
//!
//! - **types**: decode + type-level verdict against the built-in host;
//! - **validate** (the peer): wasmparser 0.263's `validate_all` with every
//!   feature on, what `wasm-tools validate` runs;
//! - **cold**: confirm with an empty cache, the default path: for a binary
//!   without start functions, validate it in full, re-encode its stub, compile
//!   the stub (Winch) and instantiate it (`worldfit::stub`); broken down as
//!   *stub validate*, *re-encode*, and the rest (compile + instantiate);
//! - **cold full**: confirm with an empty cache compiling the real code
//!   (`ConfirmOptions::full`, Winch, or Cranelift where Winch can't);
//! - **warm**: confirm again, the compiled stub coming from the cache;
//! - **baseline**: `Component::new` with wasmtime's default (Cranelift)
//!   configuration — what an embedder pays without worldfit's choices;
//! - **process**: a whole `worldfit check --no-cache FILE` (cold), wall time.
//!
//! Targets: cold ≤ 0.05× baseline and ≤ 3× validate; the process ≤ 0.25 s
//! for the 18 MB component; warm ≤ 50 ms.
//! `cargo bench --bench confirm [-- --quick]`. Under `cargo test --benches`
//! it only confirms the smallest fixture once.

mod support;

use std::path::PathBuf;
use std::time::Duration;
use support::{bench_dir_unresolved, time, wasm_entries};
use worldfit::cache::CompileCache;
use worldfit::confirm::{ConfirmOptions, Path};
use worldfit::{Host, check, decode};

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1e3)
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let benching = args.iter().any(|a| a == "--bench");
    let quick = args.iter().any(|a| a == "--quick");
    let host = Host::wasmtime();
    if !benching {
        // `cargo test --benches`: a smoke run on a small fixture.
        let bytes = std::fs::read(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/fixtures/hello-cli.wasm"
        ))
        .unwrap();
        let c = host.confirm(&bytes, &ConfirmOptions::default()).unwrap();
        assert!(c.instantiated, "{:?}", c.message);
        return;
    }
    let dir = bench_dir_unresolved();
    let mut files: Vec<PathBuf> = wasm_entries(&dir)
        .unwrap_or_else(|e| panic!("no bench inputs in `{}`: {e}", dir.display()))
        .map(Result::unwrap)
        .collect();
    files.sort();
    let (slow_runs, fast_runs) = if quick { (1, 5) } else { (3, 20) };

    let mut config = wasmtime::Config::new();
    config.wasm_component_model_async(true);
    let baseline_engine = wasmtime::Engine::new(&config).unwrap();
    let bin = support::worldfit_bin("confirm").unwrap_or_else(|e| panic!("{e}"));

    println!(
        "{:<18} {:>7} {:>9} {:>10} {:>10} {:>10} {:>10} {:>11} {:>9} {:>9} {:>10} {:>10}",
        "component",
        "size",
        "types",
        "validate",
        "baseline",
        "stub val",
        "re-encode",
        "cold",
        "cold/base",
        "cold/val",
        "cold full",
        "process"
    );
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let types = time(fast_runs, || {
            check(&decode(&bytes).unwrap(), &host).compatible
        });
        let validate = time(fast_runs, || {
            wasmparser::Validator::new_with_features(wasmparser::WasmFeatures::all())
                .validate_all(&bytes)
                .unwrap()
        });
        let stub_validate = time(fast_runs, || worldfit::stub::validate(&bytes).unwrap());
        let reencode = time(fast_runs, || worldfit::stub::stub(&bytes).unwrap());
        let baseline = time(slow_runs, || {
            wasmtime::component::Component::new(&baseline_engine, &bytes).unwrap()
        });
        let cold_with = |full: bool| {
            time(slow_runs, || {
                let cache = tempfile::tempdir().unwrap();
                let options = ConfirmOptions {
                    cache: Some(CompileCache::new(cache.path())),
                    full,
                    ..Default::default()
                };
                let c = host.confirm(&bytes, &options).unwrap();
                assert!(c.instantiated && !c.cached, "{:?}", c.message);
                assert_eq!(c.path == Path::Stub, !full);
                c
            })
        };
        let cold = cold_with(false);
        let cold_full = cold_with(true);
        let cache = tempfile::tempdir().unwrap();
        let options = ConfirmOptions {
            cache: Some(CompileCache::new(cache.path())),
            ..Default::default()
        };
        assert!(host.confirm(&bytes, &options).unwrap().instantiated);
        let warm = time(fast_runs, || {
            let c = host.confirm(&bytes, &options).unwrap();
            assert!(c.instantiated && c.cached, "{:?}", c.message);
            c
        });
        let process = time(slow_runs, || {
            let out = std::process::Command::new(&bin)
                .args(["check", "--no-cache"])
                .arg(&file)
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        });
        println!(
            "{:<18} {:>4.1} MB {:>9} {:>10} {:>10} {:>10} {:>10} {:>11} {:>8.3}x {:>8.2}x {:>10} {:>10}",
            name,
            bytes.len() as f64 / 1e6,
            ms(types),
            ms(validate),
            ms(baseline),
            ms(stub_validate),
            ms(reencode),
            ms(cold),
            cold.as_secs_f64() / baseline.as_secs_f64(),
            cold.as_secs_f64() / validate.as_secs_f64(),
            ms(cold_full),
            ms(process),
        );
        println!("{:<18} warm {}", "", ms(warm));
    }
    println!(
        "\ntargets: cold/base <= 0.05; cold/validate <= 3; process <= 250 ms for the 18 MB \
         component; warm <= 50 ms"
    );
}
