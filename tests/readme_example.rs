//! Writes the synthesized "newer patch function" component where the README's
//! example expects it, when asked (`WORLDFIT_WRITE_EXAMPLE=DIR`); otherwise
//! checks that the README's incompatible example still reads as documented.

mod common;

#[test]
fn readme_incompatible_example_matches() {
    let synth = common::Synth::new();
    let file = synth.component_file("cli-newer-function");
    if let Ok(dir) = std::env::var("WORLDFIT_WRITE_EXAMPLE") {
        std::fs::copy(&file, std::path::Path::new(&dir).join("newer.wasm")).unwrap();
    }
    let out = common::worldfit(&["check", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout)
        .unwrap()
        .replace(file.to_str().unwrap(), "newer.wasm");
    let readme = std::fs::read_to_string(common::root().join("README.md")).unwrap();
    assert!(
        readme.contains(&text),
        "README.md should show this output:\n{text}"
    );
}

#[cfg(feature = "wasmtime")]
#[test]
fn readme_timeout_example_matches() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("loop-forever.wasm"),
        common::wat_module("sandbox/loop-forever.wat"),
    )
    .unwrap();
    let out = common::worldfit_command()
        .current_dir(dir.path())
        .args(["check", "loop-forever.wasm", "--time-limit", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8(out.stdout).unwrap();
    let doc = std::fs::read_to_string(common::root().join("docs/COMMANDS.md")).unwrap();
    assert!(
        doc.contains(&text),
        "docs/COMMANDS.md should show this output:\n{text}"
    );
}

/// The catalog-host example in README.md and docs/HOSTS.md: the
/// `command-imports-http-client` case on `wasmtime@49`, and across releases.
#[test]
fn readme_runtime_host_example_matches() {
    let synth = common::Synth::new();
    let file = synth.component_file("cli-http-client");
    let run = |host: &str| {
        let out = common::worldfit(&["check", file.to_str().unwrap(), "--host", host]);
        assert_eq!(out.status.code(), Some(1));
        String::from_utf8(out.stdout)
            .unwrap()
            .replace(file.to_str().unwrap(), "comp.wasm")
    };
    let one = run("wasmtime@49");
    let across = run("wasmtime@*");
    let last = across.lines().last().unwrap();
    for doc in ["README.md", "docs/HOSTS.md"] {
        let text = std::fs::read_to_string(common::root().join(doc)).unwrap();
        assert!(text.contains(&one), "{doc} should show this output:\n{one}");
        assert!(text.contains(last), "{doc} should show this line:\n{last}");
    }
}
