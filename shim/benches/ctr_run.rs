//! `ctr run` through the shim, from spawning `ctr` to the guest's first
//! byte on `ctr`'s stdout, with the selection (index → entry → confirmed
//! layer) against the same build given directly, in one run.
//!
//! A private containerd (Debian's, as the tests start it) finds this
//! (release) build of `containerd-shim-worldfit-v1` on `PATH`. For each
//! component, an index holding it (wasip2), a wasip1 build and a
//! linux/amd64 entry is imported, and the same bytes are written as
//! `/app.wasm` into a root filesystem. Then, per component:
//!
//! * selected: `ctr run --rm --runtime io.containerd.worldfit.v1 --label
//!   worldfit.image=IMAGE --rootfs EMPTY ID /app.wasm`: the shim reads the
//!   container's label, selects from the index in containerd, confirms
//!   (stub, through the cache), reads the layer from containerd, loads the
//!   compiled code and runs it;
//! * direct (the peer, selection skipped): `ctr run ... --rootfs ROOT ID
//!   /app.wasm`, no label: the shim reads the file and runs it.
//!
//! Cold: the shims' compile cache is removed before each run (a new shim
//! process starts per container, so nothing else carries over). Warm: the
//! cache filled by an untimed run. Every run must exit 0 and print the
//! component's line. Reported: medians (and min) per path, and warm
//! selected − warm direct: the target is ≤ 100 ms.
//!
//! Components: `fixtures/hello-cli.wasm` (Rust, 0.1 MB) and the bench
//! components `js-echo-cli.wasm` (12 MB) and `py-hello-cli.wasm` (18 MB)
//! from `$WORLDFIT_BENCH_DIR`, else `../shared/bench` beside the
//! repository (an error when missing).
//!
//! `cargo bench -p containerd-shim-worldfit-v1 --bench ctr_run [-- --quick]`
//! (`--quick`: 1 cold and 5 warm rounds; default 3 and 11.)

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{ExitCode, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const TARGET_MS: f64 = 100.0;

struct Case {
    name: &'static str,
    image: String,
    root: PathBuf,
    /// What the guest prints first.
    line: String,
}

/// One `ctr run`: time to the first byte on stdout; checks exit 0 and the
/// whole output.
fn first_output(node: &Node, case: &Case, selected: bool) -> Result<Duration, String> {
    static ID: AtomicUsize = AtomicUsize::new(0);
    let id = format!("b{}", ID.fetch_add(1, Ordering::Relaxed));
    let empty = node.empty_root();
    let (image, root) = if selected {
        (Some(case.image.as_str()), empty.as_path())
    } else {
        (None, case.root.as_path())
    };
    let began = Instant::now();
    let mut child = node
        .ctr_run(&id, image, root, &[], &["/app.wasm"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ctr: {e}"))?;
    let mut stdout = child.stdout.take().expect("piped");
    let mut first = [0u8; 1];
    let n = stdout.read(&mut first).map_err(|e| e.to_string())?;
    let elapsed = began.elapsed();
    let mut rest = Vec::new();
    stdout.read_to_end(&mut rest).map_err(|e| e.to_string())?;
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    let printed = [&first[..n], &rest[..]].concat();
    if !out.status.success() || String::from_utf8_lossy(&printed) != case.line {
        return Err(format!(
            "{} ({}): exit {:?}, printed {:?}; {}",
            case.name,
            if selected { "selected" } else { "direct" },
            out.status.code(),
            String::from_utf8_lossy(&printed),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(elapsed)
}

/// `n` rounds of both paths, alternating which goes first; `cold` removes
/// the compile cache before each run. Milliseconds: (selected, direct).
fn rounds(node: &Node, case: &Case, n: usize, cold: bool) -> Result<(Vec<f64>, Vec<f64>), String> {
    let (mut selected_ms, mut direct_ms) = (Vec::new(), Vec::new());
    for round in 0..n {
        let order = if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        };
        for selected in order {
            if cold {
                let _ = std::fs::remove_dir_all(node.cache());
            }
            let t = ms(first_output(node, case, selected)?);
            if selected {
                selected_ms.push(t);
            } else {
                direct_ms.push(t);
            }
        }
    }
    Ok((selected_ms, direct_ms))
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn main() -> ExitCode {
    // A missed target is reported in the table, not an error.
    match run() {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ctr_run bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<bool, String> {
    let quick = std::env::args().any(|a| a == "--quick");
    let (cold_rounds, warm_rounds) = if quick { (1, 5) } else { (3, 11) };
    let bench_dir = std::env::var_os("WORLDFIT_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/bench"));
    let node = Node::start();
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let p1 = artifact(p1_printing("the wasip1 build"));
    let inputs = [
        (
            "hello-cli (0.1 MB)",
            fixture("hello-cli.wasm"),
            "hello from worldfit\n",
        ),
        (
            "js-echo-cli (12 MB)",
            bench_dir.join("js-echo-cli.wasm"),
            "{\"greeting\":\"echo\",\"items\":[2,4,6]}\n",
        ),
        (
            "py-hello-cli (18 MB)",
            bench_dir.join("py-hello-cli.wasm"),
            "{\"greeting\": \"hello from python\"}\n",
        ),
    ];
    let mut cases = Vec::new();
    for (i, (name, path, line)) in inputs.into_iter().enumerate() {
        let bytes = std::fs::read(&path).map_err(|e| {
            format!(
                "cannot read {} ({e}); set WORLDFIT_BENCH_DIR",
                path.display()
            )
        })?;
        let root = dir.path().join(format!("root{i}"));
        std::fs::create_dir(&root).map_err(|e| e.to_string())?;
        std::fs::write(root.join("app.wasm"), &bytes).map_err(|e| e.to_string())?;
        let build = artifact(bytes);
        let tar = image_tar(dir.path(), &format!("img{i}"), &[&build, &p1], true);
        let base = format!("docker.io/library/bench{i}");
        node.import(&tar, &base);
        cases.push(Case {
            name,
            image: format!("{base}:1.0"),
            root,
            line: line.to_string(),
        });
    }

    println!(
        "ctr run → first output, {cold_rounds} cold / {warm_rounds} warm rounds, medians (min)"
    );
    println!(
        "| component | cold selected | cold direct | warm selected | warm direct | warm selected − direct (≤ {TARGET_MS} ms) |"
    );
    println!("|---|---|---|---|---|---|");
    let mut all_met = true;
    for case in &cases {
        let (mut cold_s, mut cold_d) = rounds(&node, case, cold_rounds, true)?;
        // Fill the cache for both paths (untimed), one warm-up round.
        for selected in [true, false, true, false] {
            first_output(&node, case, selected)?;
        }
        let (mut warm_s, mut warm_d) = rounds(&node, case, warm_rounds, false)?;
        let min = |v: &[f64]| v.iter().copied().fold(f64::INFINITY, f64::min);
        let cell = |v: &mut Vec<f64>| {
            let m = min(v);
            format!("{:.1} ms ({m:.1})", median(v))
        };
        let added = median(&mut warm_s.clone()) - median(&mut warm_d.clone());
        let met = added <= TARGET_MS;
        all_met &= met;
        println!(
            "| {} | {} | {} | {} | {} | {added:.1} ms {} |",
            case.name,
            cell(&mut cold_s),
            cell(&mut cold_d),
            cell(&mut warm_s),
            cell(&mut warm_d),
            if met { "met" } else { "MISSED" }
        );
    }
    Ok(all_met)
}
