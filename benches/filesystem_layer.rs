//! Reading the entrypoint out of a `tar+gzip` filesystem layer, against
//! `tar -xzOf` of the same layer file, whole process against whole process:
//!
//! ```text
//! worldfit   (this binary, --read LAYOUT): Source → binary::find → binary::read
//! peer       tar -xzOf LAYER hello.wasm
//! ```
//!
//! The layer is about 50 MB: 44 MB of filler files (pseudo-random, so gzip
//! can't shrink them), then the entrypoint, the 18 MB Python component of
//! `../shared/bench` (`$WORLDFIT_BENCH_DIR`), last in the archive, so both
//! sides read the whole stream. worldfit also verifies the layer's sha256
//! as it streams; the peer checks nothing. Both write the file to stdout
//! (`/dev/null`).
//!
//! Each side gets 2 warm-up runs, then N alternating runs (N=15, 5 with
//! `--quick`). Reported: median wall times, their ratio (target ≤ 1.5×),
//! and each side's peak RSS (`ru_maxrss` from `wait4`) beside the layer's
//! and the file's size: worldfit's memory is bounded by the file, not the
//! layer. The layout is written by a child run of this binary (`--make`),
//! so the parent, whose peak RSS every child inherits as a floor, stays
//! small.
//!
//! `cargo bench --bench filesystem_layer [-- --quick]`. Under `cargo test
//! --benches` it builds a small layer (1 MB of filler, a 200 KB file), runs
//! each side once and checks they extract the same bytes.

mod support;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use support::{MIB, Mode, median, parse_args, wasm_files};

const WHO: &str = "filesystem_layer";
const TARGET_RATIO: f64 = 1.5;
const WARMUP: usize = 2;
const RUNS: usize = 15;
const QUICK_RUNS: usize = 5;
const FILE: &str = "hello.wasm";

/// splitmix64 bytes: incompressible, the same on every run.
fn filler(seed: u64, len: usize) -> Vec<u8> {
    let mut state = seed;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        out.extend_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    out.truncate(len);
    out
}

/// Writes `dir` as a layout (tag `1.0`) of one `wasi/wasm` image whose
/// tar+gzip layer holds `filler_mb` MiB of filler in 4 MiB files, then
/// `entry` as `/hello.wasm`. Also writes the layer as `dir/layer.tgz`.
fn make(dir: &Path, filler_mib: usize, entry: &[u8]) -> std::io::Result<()> {
    use worldfit::oci::artifact::{Blob, Descriptor, Manifest};
    use worldfit::oci::layout::{Index, write_tagged};
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    let mut add = |name: &str, data: &[u8]| {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        tar.append_data(&mut h, name, data)
    };
    for i in 0..filler_mib.div_ceil(4) {
        let len = (4usize << 20).min((filler_mib << 20) - i * (4 << 20));
        add(&format!("assets/blob-{i}.bin"), &filler(i as u64, len))?;
    }
    add(FILE, entry)?;
    let layer = tar.into_inner()?.finish()?;
    std::fs::create_dir_all(dir)?;
    std::fs::write(dir.join("layer.tgz"), &layer)?;
    let config = serde_json::json!({
        "architecture": "wasm", "os": "wasi",
        "config": {"Entrypoint": [format!("/{FILE}")]},
        "rootfs": {"type": "layers", "diff_ids": []},
    });
    let config = Blob::new(
        "application/vnd.oci.image.config.v1+json",
        serde_json::to_vec(&config)?,
    );
    let layer = Blob::new("application/vnd.oci.image.layer.v1.tar+gzip", layer);
    let manifest = Manifest {
        schema_version: 2,
        media_type: worldfit::oci::MANIFEST_MEDIA_TYPE.into(),
        artifact_type: None,
        config: config.descriptor.clone(),
        layers: vec![layer.descriptor.clone()],
        annotations: Default::default(),
    };
    let manifest = Blob::new(
        worldfit::oci::MANIFEST_MEDIA_TYPE,
        serde_json::to_vec(&manifest)?,
    );
    let index = Index {
        schema_version: 2,
        media_type: Some(worldfit::oci::INDEX_MEDIA_TYPE.into()),
        manifests: vec![Descriptor {
            platform: None,
            ..manifest.descriptor.clone()
        }],
        annotations: Default::default(),
    };
    let index = Blob::new(worldfit::oci::INDEX_MEDIA_TYPE, serde_json::to_vec(&index)?);
    let layout = dir.join("oci");
    let _ = std::fs::remove_dir_all(&layout);
    write_tagged(
        &layout,
        "1.0",
        &[&layer, &config, &manifest, &index],
        &index.descriptor,
    )
    .map_err(std::io::Error::other)?;
    Ok(())
}

/// Polls a future that never waits (a layout source) to completion.
fn now<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("a layout read waited"),
    }
}

/// worldfit's side: the entrypoint file of the layout's one entry, read
/// through the library as `select` reads it.
fn read(layout: &Path) -> anyhow::Result<Vec<u8>> {
    use worldfit::oci::binary;
    let source = worldfit::oci::source::Source::parse_layout(&format!("{}:1.0", layout.display()))?
        .ok_or_else(|| anyhow::anyhow!("no layout"))?;
    now(async {
        let (_, root) = source.root().await?;
        let index: worldfit::oci::layout::Index = serde_json::from_slice(&root)?;
        let manifest = &index.manifests[0];
        let location = binary::find(&source, manifest)
            .await?
            .map_err(anyhow::Error::msg)?;
        Ok(binary::read(&source, &location, &manifest.digest)
            .await?
            .bytes)
    })
}

/// One measured run that must exit 0 (see [`support::measure`]).
fn run(cmd: &mut Command) -> Result<support::Measured, String> {
    let m = support::measure(cmd).map_err(|e| e.to_string())?;
    if m.code != 0 {
        return Err(format!("`{cmd:?}` exited {}", m.code));
    }
    Ok(m)
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    match args.next().as_deref() {
        // Child modes: make the layout, or read the file to stdout.
        Some("--make") => {
            let dir = PathBuf::from(args.next().expect("a directory"));
            let filler_mib: usize = args.next().expect("MiB").parse().expect("MiB");
            let entry = std::fs::read(args.next().expect("a file")).expect("the entry file");
            make(&dir, filler_mib, &entry).expect("the layout is written");
            return ExitCode::SUCCESS;
        }
        Some("--read") => {
            let bytes = read(Path::new(&args.next().expect("a layout"))).expect("read");
            std::io::stdout().write_all(&bytes).expect("stdout");
            return ExitCode::SUCCESS;
        }
        _ => {}
    }
    let config = match parse_args(WHO, WARMUP, RUNS, QUICK_RUNS) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let tmp = tempfile::tempdir().expect("a temporary directory");
    let me = std::env::current_exe().expect("this binary");
    let (filler_mib, entry) = match config.mode {
        Mode::Smoke => {
            let entry = tmp.path().join("entry.wasm");
            std::fs::write(&entry, filler(99, 200 << 10)).unwrap();
            (1, entry)
        }
        Mode::Bench => {
            let files = wasm_files(&support::bench_dir()).unwrap_or_default();
            let Some(py) = files
                .iter()
                .find(|f| support::file_name(f).starts_with("py-"))
            else {
                return support::error(WHO, "no py-*.wasm in the bench directory");
            };
            (44, py.clone())
        }
    };
    let made = run(Command::new(&me)
        .arg("--make")
        .arg(tmp.path())
        .arg(filler_mib.to_string())
        .arg(&entry));
    if let Err(e) = made {
        return support::error(WHO, &format!("making the layer: {e}"));
    }
    let layout = tmp.path().join("oci");
    let layer = tmp.path().join("layer.tgz");
    if config.mode == Mode::Smoke {
        let ours = read(&layout).expect("worldfit reads the file");
        let peer = Command::new("tar")
            .arg("-xzOf")
            .arg(&layer)
            .arg(FILE)
            .output()
            .expect("tar runs");
        assert!(peer.status.success());
        assert_eq!(
            ours, peer.stdout,
            "worldfit and tar extract different bytes"
        );
        assert_eq!(ours, std::fs::read(&entry).unwrap());
        println!("{WHO}: smoke run: worldfit and tar -xzOf extract the same bytes");
        return ExitCode::SUCCESS;
    }
    let mut ours_cmd = Command::new(&me);
    ours_cmd.arg("--read").arg(&layout);
    let mut peer_cmd = Command::new("tar");
    peer_cmd.arg("-xzOf").arg(&layer).arg(FILE);
    let (mut ours, mut peer) = (Vec::new(), Vec::new());
    for i in 0..config.warmup + config.runs {
        let a = run(&mut ours_cmd);
        let b = run(&mut peer_cmd);
        let (a, b) = match (a, b) {
            (Ok(a), Ok(b)) => (a, b),
            (Err(e), _) | (_, Err(e)) => return support::error(WHO, &e),
        };
        if i >= config.warmup {
            ours.push(a);
            peer.push(b);
        }
    }
    let stats = |v: &[support::Measured]| {
        let mut w: Vec<f64> = v.iter().map(|r| r.wall.as_secs_f64() * 1e3).collect();
        w.sort_by(f64::total_cmp);
        let rss = v.iter().map(|r| r.maxrss_kib).max().unwrap_or(0) as f64 / 1024.0;
        (median(&w), rss)
    };
    let ((ours_ms, ours_rss), (peer_ms, peer_rss)) = (stats(&ours), stats(&peer));
    let layer_mib = std::fs::metadata(&layer).unwrap().len() as f64 / MIB;
    let file_mib = std::fs::metadata(&entry).unwrap().len() as f64 / MIB;
    let ratio = ours_ms / peer_ms;
    println!(
        "{WHO}: entrypoint ({file_mib:.1} MiB, last) out of a {layer_mib:.1} MiB tar+gzip layer, \
         {} runs",
        config.runs
    );
    println!("  worldfit  median {ours_ms:8.1} ms  peak RSS {ours_rss:6.1} MiB");
    println!("  tar -xzOf median {peer_ms:8.1} ms  peak RSS {peer_rss:6.1} MiB");
    println!(
        "  ratio {ratio:.2}x (target <= {TARGET_RATIO}x): {}; worldfit's peak RSS is {:.2}x the \
         file, {:.2}x the layer",
        if ratio <= TARGET_RATIO {
            "met"
        } else {
            "MISSED"
        },
        ours_rss / file_mib,
        ours_rss / layer_mib
    );
    ExitCode::SUCCESS
}
