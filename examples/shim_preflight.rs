//! What a runwasi-style shim does when a container starts: containerd has
//! stored the image's index; pick the build this host runs, confirm it in
//! the embedded wasmtime, and take the chosen layer's bytes, or fail the
//! container with one line that says why. Runs the start twice: the second
//! loads the compiled code from the cache.
//!
//! ```text
//! cargo run --release --example shim_preflight -- \
//!     docker.io/library/app:1.0 [/run/containerd/containerd.sock]
//! ```

use std::process::ExitCode;
use std::time::Instant;
use worldfit::Host;
use worldfit::cache::CompileCache;
use worldfit::confirm::ConfirmOptions;
use worldfit::oci::containerd::{ContainerdOptions, DEFAULT_ADDRESS};
use worldfit::preflight::preflight;

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let Some(image) = args.next() else {
        eprintln!("usage: shim_preflight [NAMESPACE/]IMAGE [SOCKET]");
        return ExitCode::from(2);
    };
    let containerd = ContainerdOptions {
        address: args.next().unwrap_or(DEFAULT_ADDRESS.into()).into(),
        ..ContainerdOptions::default()
    };
    let host = Host::wasmtime();
    // A shim runs on its own runtime; this one is single-threaded.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    for start in ["first start", "second start"] {
        let confirm = ConfirmOptions {
            cache: CompileCache::default_dir().map(CompileCache::new),
            ..ConfirmOptions::default()
        };
        let began = Instant::now();
        match runtime.block_on(preflight(&image, &containerd, &host, confirm)) {
            Ok(p) => {
                let c = p.selection.confirmation.as_ref();
                println!(
                    "{start}: run {} ({} bytes), confirmed in {} ms{}",
                    p.digest,
                    p.layer.len(),
                    began.elapsed().as_millis(),
                    if c.is_some_and(|c| c.cached) {
                        " (compiled code from the cache)"
                    } else {
                        ""
                    }
                );
            }
            Err(e) => {
                // What the shim would report as the container's failure reason.
                eprintln!("error: {e:#}");
                return ExitCode::from(2);
            }
        }
    }
    ExitCode::SUCCESS
}
