//! In-process cost of `select --no-confirm` over image indexes of 10, 100,
//! 1,000 and 10,000 entries in a local layout: reading and verifying the
//! index blob, parsing it, and judging every entry's features against the
//! built-in host (the host is built once, outside the timing).
//!
//! The entries mix what real indexes hold: wasip2 builds needing CLI or HTTP
//! worlds at various 0.2.x patches, wasip3 builds, wasip1 modules, an
//! unsupported future track, and `linux/amd64` images.
//!
//! Target: linear in the entry count, ≤ 20 ms at 10,000 entries.
//!
//! Run with `cargo bench --bench select` (criterion arguments after `--`).
//! After criterion's output it prints the medians and the cost per entry.

mod support;

use criterion::{BenchmarkId, Criterion};
use std::time::Duration;
use worldfit::host::Host;
use worldfit::oci::source::Source;
use worldfit::select::{SelectOptions, select};

const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];
const TARGET_MS: f64 = 20.0;

/// Polls a future that never waits (a layout source) to completion.
fn now<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("a layout read waited"),
    }
}

fn main() {
    let mut c = Criterion::default()
        .configure_from_args()
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(3));
    let host = Host::wasmtime();
    let _ = host.features();
    let options = SelectOptions {
        no_confirm: true,
        ..SelectOptions::default()
    };
    let tmp = tempfile::tempdir().unwrap();
    let mut rows = Vec::new();
    let mut group = c.benchmark_group("select_no_confirm");
    for n in SIZES {
        let dir = tmp.path().join(format!("oci-{n}"));
        let index_bytes = support::mixed_index_layout(&dir, n).descriptor.size;
        let source = Source::parse_layout(&format!("{}:bench", dir.display()))
            .unwrap()
            .unwrap();
        // Sanity: every entry is judged, and something is selected.
        let s = now(select(&source, &host, &options)).unwrap();
        assert_eq!(s.entries.len(), n);
        assert!(s.selected.is_some());
        group.bench_with_input(BenchmarkId::from_parameter(n), &n, |b, _| {
            b.iter(|| now(select(&source, &host, &options)).unwrap())
        });
        // Our own median for the table, from a fixed number of runs.
        let median = support::time(21, || now(select(&source, &host, &options)).unwrap());
        rows.push((n, index_bytes, median));
    }
    group.finish();
    c.final_summary();

    println!("\nselect --no-confirm, in process (median of 21 runs):");
    println!(
        "{:>8}  {:>12}  {:>10}  {:>12}",
        "entries", "index bytes", "median ms", "µs per entry"
    );
    for (n, bytes, t) in &rows {
        let ms = t.as_secs_f64() * 1e3;
        println!(
            "{n:>8}  {bytes:>12}  {ms:>10.3}  {:>12.2}",
            ms * 1e3 / *n as f64
        );
    }
    let (_, _, last) = rows.last().unwrap();
    let ms = last.as_secs_f64() * 1e3;
    println!(
        "target: ≤ {TARGET_MS} ms at 10,000 entries: {} ({ms:.2} ms)",
        if ms <= TARGET_MS { "PASS" } else { "FAIL" }
    );
}
