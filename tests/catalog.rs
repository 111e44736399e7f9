//! The catalog against the real wasmtime CLIs (installed from PyPI by
//! `scripts/wasmtime-clis`, which `scripts/test` runs first): every release
//! probed again must give exactly the shipped profile, and for every
//! fixture, release and invocation, worldfit's verdict must agree with what
//! the real binary does with it.

#![cfg(feature = "wasmtime")] // run once, in the full build: they take minutes

mod common;

use common::{Synth, fixture, root, wat_module};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use worldfit::host::catalog;
use worldfit::host::profile::Selection;

/// Where the real CLIs are: `$WORLDFIT_WASMTIME_CLIS/<major>/wasmtime`.
fn clis_dir() -> PathBuf {
    std::env::var_os("WORLDFIT_WASMTIME_CLIS")
        .map(PathBuf::from)
        .unwrap_or_else(|| root().join("target/wasmtime-clis"))
}

/// The real binary of a catalog release; a missing one fails the test with
/// the command that installs it (no test skips itself).
fn cli(major: &str) -> PathBuf {
    let bin = clis_dir().join(major).join("wasmtime");
    assert!(
        bin.exists(),
        "{} is missing: run scripts/wasmtime-clis (scripts/test does)",
        bin.display()
    );
    bin
}

/// The two tests take turns: probing judges a server by how long it keeps
/// running, which a loaded machine must not blur.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn major(version: &str) -> &str {
    version.split('.').next().unwrap()
}

#[test]
fn every_catalog_profile_matches_a_fresh_probe_of_its_release() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let out = tempfile::tempdir().unwrap();
    let status = Command::new(root().join("scripts/probe-catalog"))
        .arg("--out")
        .arg(out.path())
        .env("WORLDFIT_BIN", env!("CARGO_BIN_EXE_worldfit"))
        .env("WORLDFIT_WASMTIME_CLIS", clis_dir())
        .status()
        .unwrap();
    assert!(status.success());
    let mut drift = Vec::new();
    for p in catalog::profiles() {
        let file = format!("wasmtime-{}.json", major(&p.version));
        let fresh = std::fs::read_to_string(out.path().join(&file)).unwrap();
        let shipped = std::fs::read_to_string(root().join("hosts").join(&file)).unwrap();
        if fresh != shipped {
            drift.push(file);
        }
    }
    assert!(
        drift.is_empty(),
        "the catalog drifted from the binaries: {drift:?} (scripts/probe-catalog rewrites hosts/)"
    );
}

/// Every fixture that links or doesn't without running long: the Rust
/// fixtures, the wasip1 modules, preview 0, a reactor, and every synthesized
/// case (their dummy bodies trap when run, after linking).
fn fixtures(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out = vec![
        ("hello-cli".to_string(), fixture("hello-cli.wasm")),
        ("http-handler".to_string(), fixture("http-handler.wasm")),
        ("p3-hello".to_string(), fixture("p3-hello.wasm")),
    ];
    for wat in [
        "wasip1-hello.wat",
        "wasip1-bad.wat",
        "wasip0-hello.wat",
        "wasip1-reactor.wat",
        "sandbox/trap-in-start.wat",
        "sandbox/wasip1-writes.wat",
    ] {
        let name = wat.trim_end_matches(".wat").replace('/', "-");
        let path = dir.join(format!("{name}.wasm"));
        std::fs::write(&path, wat_module(wat)).unwrap();
        out.push((name, path));
    }
    let synth = Synth::new();
    for case in common::SYNTH_CASES {
        let path = dir.join(format!("{case}.wasm"));
        std::fs::write(&path, synth.component(case)).unwrap();
        out.push((case.to_string(), path));
    }
    for (case, world) in [
        ("p3-http-service-prerelease", "serviceonly"),
        ("js-echo-cli-imports", "root"),
    ] {
        let path = dir.join(format!("{case}.wasm"));
        std::fs::write(&path, common::case_component(case, world)).unwrap();
        out.push((case.into(), path));
    }
    // Engine features: a `map` type, and the async ABI in a 0.2 command.
    let path = dir.join("map-type-export.wasm");
    std::fs::write(&path, common::case_component("map-type-export", "app")).unwrap();
    out.push(("map-type-export".into(), path));
    let path = dir.join("p2-command-async-builtins.wasm");
    std::fs::write(
        &path,
        common::case_component_async("p2-command-async-builtins", "cli"),
    )
    .unwrap();
    out.push(("p2-command-async-builtins".into(), path));
    out
}

/// What the real CLI did with a binary: linked (it ran, exited, trapped in
/// the dummy's body, or kept serving) or refused to link or compile it.
fn real_links(bin: &Path, invocation: &str, flags: &[&str], file: &Path) -> (bool, String) {
    let mut cmd = Command::new(bin);
    cmd.arg(invocation).args(flags);
    if invocation == "serve" {
        cmd.args(["--addr", "127.0.0.1:0"]);
    }
    let mut child = cmd
        .arg(file)
        .env_remove("RUST_BACKTRACE")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The reader reports each line as it comes: `wasmtime serve` says
    // `Serving HTTP on ...` once it has linked, and stays up.
    let stderr = child.stderr.take().unwrap();
    let (lines, seen) = std::sync::mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stderr)) {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    let start = Instant::now();
    let mut said = String::new();
    let status = loop {
        while let Ok(line) = seen.try_recv() {
            said.push_str(&line);
            said.push('\n');
        }
        if said.contains("Serving HTTP on") {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let _ = reader.join();
            while let Ok(line) = seen.try_recv() {
                said.push_str(&line);
                said.push('\n');
            }
            break Some(status);
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "{} {invocation} {flags:?} {}: neither exited nor served within 30 s",
            bin.display(),
            file.display()
        );
        std::thread::sleep(Duration::from_millis(5));
    };
    let linked = match status {
        None => true,
        Some(s) if s.success() => true,
        // It linked and ran into a trap (a dummy body, a trapping start).
        Some(_) => said.contains("wasm trap") || said.contains("wasm backtrace"),
    };
    let first = said
        .lines()
        .find(|l| {
            l.contains("matching implementation") || l.contains("wrong type") || l.contains("rror")
        })
        .unwrap_or("")
        .trim()
        .to_string();
    (linked, first)
}

#[test]
fn verdicts_agree_with_every_real_cli_fixture_by_fixture() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let fixtures = fixtures(dir.path());
    let variants: [(&str, &[&str]); 4] = [
        ("run", &[]),
        ("run", &["-S", "http"]),
        ("serve", &[]),
        ("serve", &["-S", "cli"]),
    ];
    let mut table = vec![format!("{:<28}", "fixture")];
    let mut disagreements = Vec::new();
    let profiles = catalog::profiles();
    for p in profiles {
        table[0].push_str(&format!(" {:>5}", major(&p.version)));
    }
    for (name, path) in &fixtures {
        let wasm = worldfit::decode(&std::fs::read(path).unwrap()).unwrap();
        let mut row = format!("{name:<28}");
        for p in profiles {
            let bin = cli(major(&p.version));
            let mut cell = String::new();
            for (invocation, flags) in variants {
                let selection = Selection {
                    invocation: Some(invocation.into()),
                    flags: if flags.is_empty() {
                        vec![]
                    } else {
                        vec![flags.iter().map(|s| s.to_string()).collect()]
                    },
                };
                let host = p.host(&selection).unwrap();
                let says = worldfit::check(&wasm, &host).compatible;
                let (does, why) = real_links(&bin, invocation, flags, path);
                cell.push(if says { 'y' } else { '.' });
                if says != does {
                    disagreements.push(format!(
                        "{name} on wasmtime {} {invocation} {}: worldfit says {}, the CLI {} ({why})",
                        p.version,
                        flags.join(" "),
                        if says { "runs" } else { "doesn't" },
                        if does { "linked it" } else { "refused it" }
                    ));
                }
            }
            row.push_str(&format!(" {cell:>5}"));
        }
        table.push(row);
    }
    println!("agreement (run, run -S http, serve, serve -S cli; y = runs):");
    for line in &table {
        println!("{line}");
    }
    assert!(disagreements.is_empty(), "{}", disagreements.join("\n"));
}
