//! `worldfit affinity` on a 1,000-entry image index in a local layout, whole
//! process, beside `skopeo inspect --raw` reading the same index (the peer:
//! a process that only opens the layout and prints the index), in one run.
//!
//! The entries mix what real indexes hold: wasip2 builds needing CLI or HTTP
//! worlds at various 0.2.x patches, wasip3 builds, wasip1 modules, an
//! unsupported future track, and `linux/amd64` images (the index decides
//! every one, so nothing else is read).
//!
//! Target (the issue): ≤ 50 ms whole process.
//!
//! `cargo bench --bench affinity [-- --quick | --runs N]`. Under `cargo test
//! --benches` it runs each command once and checks its output; a missing
//! `skopeo` is then a skip, under `cargo bench` an error.

mod support;

use std::process::ExitCode;
use std::time::Instant;
use support::{CommandLine, Mode};

const WHO: &str = "affinity bench";
const ENTRIES: usize = 1_000;
const TARGET_MS: f64 = 50.0;

/// Runs a command line `n` times (after `warmup` untimed runs) and returns
/// the sorted wall times in ms, failing on a non-zero exit; `check` sees the
/// first run's stdout.
fn time(
    cmd: &CommandLine,
    warmup: usize,
    n: usize,
    check: &dyn Fn(&[u8]) -> Result<(), String>,
) -> Result<Vec<f64>, String> {
    let mut times = Vec::with_capacity(n);
    for i in 0..warmup + n {
        let started = Instant::now();
        let out = cmd
            .command()
            .output()
            .map_err(|e| format!("{}: {e}", cmd.display()))?;
        let ms = started.elapsed().as_secs_f64() * 1e3;
        if !out.status.success() {
            return Err(format!(
                "{} failed: {}",
                cmd.display(),
                String::from_utf8_lossy(&out.stderr)
            ));
        }
        if i == 0 {
            check(&out.stdout)?;
        }
        if i >= warmup {
            times.push(ms);
        }
    }
    times.sort_by(f64::total_cmp);
    Ok(times)
}

fn main() -> ExitCode {
    let config = match support::parse_args(WHO, 3, 21, 7) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let worldfit = match support::worldfit_bin(WHO) {
        Ok(p) => p,
        Err(e) => return support::error(WHO, &e),
    };
    let Some(skopeo) = support::on_path("skopeo") else {
        return support::missing(
            WHO,
            &config.mode,
            "`skopeo` is not on PATH (Debian: skopeo)",
        );
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("oci");
    let index = support::mixed_index_layout(&dir, ENTRIES).bytes;
    let source = format!("{}:bench", dir.display());

    let ours = CommandLine::new(&worldfit, ["affinity", source.as_str(), "--json"]);
    let peer = CommandLine::new(
        &skopeo,
        ["inspect", "--raw", &format!("oci:{}:bench", dir.display())],
    );
    let wasm_entries = (0..ENTRIES).filter(|i| i % 6 != 5).count();
    let check_ours = |out: &[u8]| -> Result<(), String> {
        let a: serde_json::Value = serde_json::from_slice(out).map_err(|e| e.to_string())?;
        let terms = a["nodeAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"]
            ["nodeSelectorTerms"]
            .as_array()
            .ok_or("no nodeSelectorTerms")?
            .len();
        // Identical platforms make one term; every distinct wasm one is there.
        if terms == 0 || terms > wasm_entries {
            return Err(format!("{terms} terms for {wasm_entries} wasm entries"));
        }
        Ok(())
    };
    let check_peer = |out: &[u8]| -> Result<(), String> {
        if out == index.as_slice() {
            Ok(())
        } else {
            Err("skopeo printed another index".into())
        }
    };
    let (warmup, runs) = (config.warmup, config.runs);
    let results = time(&ours, warmup, runs, &check_ours)
        .and_then(|a| Ok((a, time(&peer, warmup, runs, &check_peer)?)));
    let (ours_ms, peer_ms) = match results {
        Ok(r) => r,
        Err(e) => return support::error(WHO, &e),
    };
    if config.mode == Mode::Smoke {
        println!("{WHO}: smoke run: both commands ran and agree on the index");
        return ExitCode::SUCCESS;
    }
    let (a, p) = (support::median(&ours_ms), support::median(&peer_ms));
    println!(
        "\n{ENTRIES}-entry index ({} bytes), whole process, median of {runs}:",
        index.len()
    );
    println!(
        "  worldfit affinity --json     {a:8.1} ms  (min {:.1})",
        ours_ms[0]
    );
    println!(
        "  skopeo inspect --raw (peer)  {p:8.1} ms  (min {:.1})",
        peer_ms[0]
    );
    println!("  ratio worldfit/skopeo        {:8.2}x", a / p);
    println!(
        "target: affinity ≤ {TARGET_MS} ms: {} ({a:.1} ms)",
        if a <= TARGET_MS { "PASS" } else { "FAIL" }
    );
    ExitCode::SUCCESS
}
