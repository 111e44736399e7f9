//! Confirmation speed, in-process, on the large real components in
//! `../shared/bench` (or `$WORLDFIT_BENCH_DIR`):
//!
//! - **types**: decode + type-level verdict against the built-in host;
//! - **cold**: confirm with an empty cache (Winch compile, or Cranelift where
//!   Winch can't, then instantiate);
//! - **warm**: confirm again, the compiled code coming from the cache;
//! - **baseline**: `Component::new` with wasmtime's default (Cranelift)
//!   configuration — what an embedder pays without worldfit's choices.
//!
//! Targets: cold ≤ 0.25× baseline; warm ≤ 50 ms for the 18 MB component.
//! `cargo bench --bench confirm [-- --quick]`. Under `cargo test --benches`
//! it only confirms the smallest fixture once.

mod support;

use std::path::PathBuf;
use std::time::Duration;
use support::{bench_dir_unresolved, time, wasm_entries};
use worldfit::cache::CompileCache;
use worldfit::confirm::ConfirmOptions;
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

    println!(
        "{:<22} {:>9} {:>10} {:>11} {:>10} {:>10} {:>11} {:>9}",
        "component", "size", "types", "baseline", "cold", "cold/base", "warm", "backend"
    );
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        let name = file.file_name().unwrap().to_string_lossy().to_string();
        let types = time(fast_runs, || {
            check(&decode(&bytes).unwrap(), &host).compatible
        });
        let baseline = time(slow_runs, || {
            wasmtime::component::Component::new(&baseline_engine, &bytes).unwrap()
        });
        let mut backend = None;
        let cold = time(slow_runs, || {
            let cache = tempfile::tempdir().unwrap();
            let options = ConfirmOptions {
                cache: Some(CompileCache::new(cache.path())),
                ..Default::default()
            };
            let c = host.confirm(&bytes, &options).unwrap();
            assert!(c.instantiated && !c.cached, "{:?}", c.message);
            backend = c.backend;
            c
        });
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
        println!(
            "{:<22} {:>6.1} MB {:>10} {:>11} {:>10} {:>9.3}x {:>11} {:>9}",
            name,
            bytes.len() as f64 / 1e6,
            ms(types),
            ms(baseline),
            ms(cold),
            cold.as_secs_f64() / baseline.as_secs_f64(),
            ms(warm),
            format!("{:?}", backend.unwrap()).to_lowercase()
        );
    }
    println!("\ntargets: cold/base <= 0.25; warm <= 50 ms for the 18 MB component");
}
