//! What a shim does before it starts a container: check the types, then
//! confirm by instantiating in the embedded wasmtime, with a compile cache so
//! the next start of the same component is fast.
//!
//! ```text
//! cargo run --release --example confirm -- fixtures/hello-cli.wasm
//! ```

use std::process::ExitCode;
use worldfit::cache::CompileCache;
use worldfit::confirm::ConfirmOptions;
use worldfit::{Host, check, decode};

fn main() -> ExitCode {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: confirm FILE.wasm");
        return ExitCode::from(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: failed to read `{path}`: {e}");
            return ExitCode::from(2);
        }
    };
    let wasm = match decode(&bytes) {
        Ok(w) => w,
        Err(e) => {
            eprintln!("error: `{path}` {e}");
            return ExitCode::from(2);
        }
    };
    let host = Host::wasmtime();

    // 1. Types: cheap, and every reason at once.
    let verdict = check(&wasm, &host);
    if !verdict.compatible {
        for p in &verdict.problems {
            eprintln!("{path}: {}: {}", p.name, p.detail);
        }
        return ExitCode::from(1);
    }

    // 2. Instantiate in the sandbox; the cache makes the second call cheap.
    let options = ConfirmOptions {
        cache: CompileCache::default_dir().map(CompileCache::new),
        ..Default::default()
    };
    let confirmation = host
        .confirm(&bytes, &options)
        .expect("the built-in host confirms");
    if confirmation.instantiated {
        println!(
            "{path}: runs on {} ({:?}, {} in {:.1} ms, instantiated in {:.1} ms)",
            verdict.world.unwrap_or_default(),
            confirmation.backend.expect("compiled"),
            if confirmation.cached {
                "loaded from cache"
            } else {
                "compiled"
            },
            confirmation.compile.as_secs_f64() * 1e3,
            confirmation.instantiate.as_secs_f64() * 1e3,
        );
        ExitCode::SUCCESS
    } else {
        eprintln!("{path}: {}", confirmation.message.unwrap_or_default());
        ExitCode::from(1)
    }
}
