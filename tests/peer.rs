//! Agreement with the peer: for every fixture and every standard WASI world,
//! worldfit's boolean verdict equals `wasm-tools component targets
//! --semver-compatible` (wasm-tools >= 1.263; `.ci/run` installs it).
//!
//! The two compute the same thing by different means: wasm-tools re-encodes
//! both sides with canonical `@0.2`-style names and lets wasmparser's
//! validator type-check one against the other; worldfit compares the decoded
//! WIT. A disagreement is a bug in worldfit's rules (or a documented
//! difference), never a case to skip.

mod common;

use common::{SYNTH_CASES, Synth, fixture, root, wat_module};
use std::path::{Path, PathBuf};
use std::process::Command;
use worldfit::component::decode;
use worldfit::host::Host;
use worldfit::verdict::check;

fn wasm_tools() -> PathBuf {
    let out = Command::new("wasm-tools").arg("--version").output().unwrap_or_else(|e| {
        panic!("`wasm-tools` is needed for the peer test ({e}); install it: cargo install wasm-tools --locked")
    });
    let version = String::from_utf8_lossy(&out.stdout).to_string();
    let minor: u32 = version
        .split_whitespace()
        .nth(1)
        .and_then(|v| v.split('.').nth(1))
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    assert!(
        minor >= 263,
        "wasm-tools >= 1.263 is needed for --semver-compatible, found {version}"
    );
    PathBuf::from("wasm-tools")
}

fn peer_says(tool: &Path, wit: &Path, world: &str, file: &Path) -> bool {
    let out = Command::new(tool)
        .args(["component", "targets", "--semver-compatible"])
        .arg(wit)
        .args(["--world", world])
        .arg(file)
        .output()
        .unwrap();
    match out.status.code() {
        Some(0) => true,
        Some(1) => false,
        other => panic!(
            "wasm-tools exited with {other:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ),
    }
}

#[test]
fn worldfit_agrees_with_wasm_tools_targets() {
    let tool = wasm_tools();
    let synth = Synth::new();
    let mut files: Vec<PathBuf> = vec![fixture("hello-cli.wasm"), fixture("http-handler.wasm")];
    files.extend(SYNTH_CASES.iter().map(|c| synth.component_file(c)));
    for wat in ["wasip1-hello.wat", "wasip1-bad.wat"] {
        let path = synth.dir.path().join(wat.replace(".wat", ".wasm"));
        std::fs::write(&path, wat_module(wat)).unwrap();
        files.push(path);
    }
    let wasi_020 = root().join("tests/wit/wasi-0.2.0");
    let current = root().join("wit");
    let worlds: &[(&Path, &str)] = &[
        (&wasi_020, "wasi:cli/command@0.2.0"),
        (&wasi_020, "wasi:http/proxy@0.2.0"),
        (&current, "wasi:cli/command@0.2.12"),
        (&current, "wasi:http/proxy@0.2.12"),
        (&current, "wasi:cli/command@0.3.0"),
        (&current, "wasi:http/service@0.3.0"),
    ];
    let mut agreed = 0;
    let mut compatible = 0;
    let mut disagreements = Vec::new();
    for (wit, world) in worlds {
        let host = Host::from_wit(wit, &[world.to_string()]).unwrap();
        for file in &files {
            let ours = check(&decode(&std::fs::read(file).unwrap()).unwrap(), &host);
            let theirs = peer_says(&tool, wit, world, file);
            if ours.compatible == theirs {
                agreed += 1;
                compatible += usize::from(theirs);
            } else {
                disagreements.push(format!(
                    "{} on {world}: worldfit {} ({:?}), wasm-tools {theirs}",
                    file.file_name().unwrap().to_string_lossy(),
                    ours.compatible,
                    ours.problems.iter().map(|p| &p.detail).collect::<Vec<_>>()
                ));
            }
        }
    }
    println!(
        "peer agreement: {agreed}/{} pairs ({compatible} compatible)",
        files.len() * worlds.len()
    );
    assert!(
        disagreements.is_empty(),
        "disagreements:\n{}",
        disagreements.join("\n")
    );
    // The matrix must exercise both answers, or it proves little.
    assert!(
        compatible >= 10 && agreed - compatible >= 10,
        "{compatible} compatible of {agreed}"
    );
}
