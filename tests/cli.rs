//! The command line: exit codes, pinned `--json` shapes, human output, and
//! bad input (exit 2, one `error:` line naming the input, never a panic).

mod common;

use common::{Synth, fixture, root, worldfit, worldfit_os};
use serde::Deserialize;
use std::ffi::OsStr;
use std::path::Path;

// The `--json` contract, redeclared here with `deny_unknown_fields` so a
// silent format change breaks a test. docs/JSON.md documents the same shapes.

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct CheckJson {
    file: String,
    host: String,
    /// `embedded`, `profile` or `wit`.
    host_kind: String,
    compatible: bool,
    world: Option<String>,
    closest: Option<String>,
    confirmed: bool,
    level: String,
    problems: Vec<ProblemJson>,
    /// The flags with which a runtime's profile would run it (empty for
    /// the embedded and WIT hosts).
    runs_with: Vec<serde_json::Value>,
    /// Present (and non-null) only when instantiation was attempted; absent
    /// when worldfit is built without the `wasmtime` feature.
    #[serde(default)]
    confirmation: Option<ConfirmationJson>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct ConfirmationJson {
    instantiated: bool,
    failure: Option<String>,
    message: Option<String>,
    backend: Option<String>,
    path: String,
    cached: bool,
    cache_note: Option<String>,
    compile_ms: f64,
    instantiate_ms: f64,
    stdout: String,
    stderr: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ProblemJson {
    kind: String,
    name: String,
    detail: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct InspectJson {
    file: String,
    kind: String,
    wasi: String,
    targets: Vec<String>,
    platform: PlatformJson,
    engine_features: Vec<FeatureUseJson>,
    imports: Vec<ItemJson>,
    exports: Vec<ItemJson>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct FeatureUseJson {
    feature: String,
    at: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct PlatformJson {
    architecture: String,
    os: String,
    #[serde(rename = "os.features")]
    os_features: Vec<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct ItemJson {
    name: String,
    kind: String,
    #[serde(rename = "type")]
    ty: Option<String>,
    #[serde(default)]
    functions: Vec<FunctionJson>,
    #[serde(default)]
    types: Vec<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct FunctionJson {
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct HostJson {
    name: String,
    builtin: bool,
    os: Vec<String>,
    wasip1: bool,
    core: Vec<String>,
    engine: Vec<String>,
    worlds: Vec<HostWorldJson>,
    features: Vec<String>,
}

#[derive(Deserialize, Debug)]
#[serde(deny_unknown_fields)]
struct HostWorldJson {
    name: String,
    drives: Vec<String>,
    supports: Vec<String>,
    provides: Vec<String>,
}

fn stdout(o: &std::process::Output) -> String {
    String::from_utf8(o.stdout.clone()).unwrap()
}

fn stderr(o: &std::process::Output) -> String {
    String::from_utf8(o.stderr.clone()).unwrap()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn check_exit_codes_and_json() {
    let hello = fixture("hello-cli.wasm");
    let out = worldfit(&["check", path(&hello), "--no-confirm", "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let j: CheckJson = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(j.compatible && !j.confirmed && j.problems.is_empty() && j.confirmation.is_none());
    assert_eq!(
        j.world.as_deref(),
        Some("worldfit:wasmtime/wasip2-command@48.0.0")
    );
    assert_eq!(
        (j.host.as_str(), j.level.as_str(), j.closest),
        ("embedded-wasmtime@48", "types", None)
    );
    assert_eq!(j.host_kind, "embedded");
    assert!(j.runs_with.is_empty());
    assert!(j.file.ends_with("hello-cli.wasm"));

    let synth = Synth::new();
    let bad = synth.component_file("cli-newer-function");
    let out = worldfit(&["check", path(&bad), "--json"]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let j: CheckJson = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(!j.compatible && j.world.is_none());
    assert_eq!(
        j.closest.as_deref(),
        Some("worldfit:wasmtime/wasip2-command@48.0.0")
    );
    assert_eq!(j.problems.len(), 1);
    assert_eq!(j.problems[0].kind, "missing-function");
    assert_eq!(
        j.problems[0].name,
        "wasi:cli/environment@0.2.99#get-sandbox-flavor"
    );
    assert!(
        j.problems[0]
            .detail
            .contains("host has wasi:cli/environment@0.2.12 without it")
    );
    // Types failed, so nothing was instantiated.
    assert!(j.confirmation.is_none() && !j.confirmed);
}

#[cfg(feature = "wasmtime")]
#[test]
fn check_json_with_confirmation() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("writes.wasm");
    std::fs::write(&file, common::wat_module("sandbox/wasip1-writes.wat")).unwrap();
    let out = worldfit(&["check", path(&file), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let j: CheckJson = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(j.compatible && j.confirmed);
    assert_eq!(
        (j.level.as_str(), j.world.as_deref()),
        ("instantiate", Some("wasip1"))
    );
    let c = j.confirmation.unwrap();
    assert!(c.instantiated && c.failure.is_none() && c.message.is_none());
    assert_eq!(c.stdout, "hello from start\n");
    assert!(c.compile_ms >= 0.0 && c.instantiate_ms >= 0.0);
    // Its start function runs while instantiating: the real code is compiled.
    assert_eq!(c.path, "compiled");

    // Without one, the stub confirms; --full-compile compiles it all the same.
    let file = dir.path().join("hello.wasm");
    std::fs::write(&file, common::wat_module("wasip1-hello.wat")).unwrap();
    for (flag, path_taken) in [(None, "stub"), (Some("--full-compile"), "compiled")] {
        let mut args = vec!["check", path(&file), "--json"];
        args.extend(flag);
        let out = worldfit(&args);
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let j: CheckJson = serde_json::from_str(&stdout(&out)).unwrap();
        assert_eq!(j.confirmation.unwrap().path, path_taken);
    }

    let file = dir.path().join("trap.wasm");
    std::fs::write(&file, common::wat_module("sandbox/trap-in-start.wat")).unwrap();
    let out = worldfit(&["check", path(&file), "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let j: CheckJson = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(!j.compatible && !j.confirmed && j.world.is_none());
    assert_eq!(
        j.closest.as_deref(),
        Some("worldfit:wasmtime/wasip2-command@48.0.0")
    );
    assert_eq!(j.problems[0].kind, "instantiate-failed");
    assert_eq!(
        j.confirmation.unwrap().failure.as_deref(),
        Some("instantiate")
    );
}

#[test]
fn check_human_output_is_one_verdict_line_then_aligned_problems() {
    let bad = fixture("wasip1-bad.wat");
    let module = tempfile::tempdir().unwrap();
    let file = module.path().join("bad.wasm");
    std::fs::write(&file, wat::parse_file(&bad).unwrap()).unwrap();
    let out = worldfit(&["check", path(&file)]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("incompatible: ") && lines[0].contains("4 problems"),
        "{text}"
    );
    assert_eq!(lines.len(), 5, "{text}");
    // The detail column starts at the same offset on every problem line.
    let starts: Vec<usize> = lines[1..]
        .iter()
        .map(|l| {
            let cols: Vec<&str> = l.split("  ").filter(|s| !s.is_empty()).collect();
            l.find(cols[2]).unwrap()
        })
        .collect();
    assert!(starts.windows(2).all(|w| w[0] == w[1]), "{text}");

    let out = worldfit(&["check", path(&fixture("http-handler.wasm"))]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).starts_with("compatible: "));
}

#[test]
fn check_against_a_wit_host() {
    let wit = root().join("tests/wit/wasi-0.2.0");
    let hello = fixture("hello-cli.wasm");
    // hello-cli imports 0.2.6 but only functions 0.2.0 already has.
    let out = worldfit(&[
        "check",
        path(&hello),
        "--wit",
        path(&wit),
        "--world",
        "wasi:cli/command@0.2.0",
        "--json",
    ]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        stdout(&out),
        stderr(&out)
    );
    let j: CheckJson = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(j.world.as_deref(), Some("wasi:cli/command@0.2.0"));
    // An http handler doesn't fit a command-only host.
    let http = fixture("http-handler.wasm");
    let out = worldfit(&[
        "check",
        path(&http),
        "--wit",
        path(&wit),
        "--world",
        "wasi:cli/command@0.2.0",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let j: CheckJson = serde_json::from_str(&stdout(&out)).unwrap();
    let kinds: Vec<&str> = j.problems.iter().map(|p| p.kind.as_str()).collect();
    assert!(
        kinds.contains(&"missing-interface") && kinds.contains(&"no-entry-point"),
        "{kinds:?}"
    );
    // A single-file WIT host with a bare world name.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("host.wit");
    std::fs::write(&file, "package my:host;\ninterface run { run: func() -> result; }\nworld runner { export run; }\n").unwrap();
    let out = worldfit(&[
        "check",
        path(&hello),
        "--wit",
        path(&file),
        "--world",
        "runner",
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("no-entry-point"), "{}", stdout(&out));
}

#[test]
fn inspect_json_shape() {
    let out = worldfit(&["inspect", path(&fixture("http-handler.wasm")), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let j: InspectJson = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!((j.kind.as_str(), j.wasi.as_str()), ("component", "wasip2"));
    assert_eq!(j.targets, ["wasi:http/proxy@0.2.12"]);
    assert_eq!(j.platform.architecture, "wasm");
    assert_eq!(j.platform.os, "wasip2");
    assert_eq!(j.platform.os_features[0], "wasi:http/proxy@0.2.12");
    assert!(j.engine_features.is_empty(), "{:?}", j.engine_features);
    assert!(
        j.platform
            .os_features
            .contains(&"wasi:cli/environment@0.2.12".to_string())
    );
    let types = j
        .imports
        .iter()
        .find(|i| i.name == "wasi:http/types@0.2.12")
        .unwrap();
    assert_eq!(types.kind, "interface");
    assert!(types.ty.is_none() && types.types.contains(&"fields".to_string()));
    assert!(
        types
            .functions
            .iter()
            .any(|f| f.name == "[constructor]fields" && f.ty == "constructor()"),
        "{:?}",
        types.functions
    );
    assert_eq!(j.exports[0].name, "wasi:http/incoming-handler@0.2.12");
    assert!(j.file.ends_with("http-handler.wasm"));

    let module = tempfile::tempdir().unwrap();
    let file = module.path().join("hello.wasm");
    std::fs::write(&file, common::wat_module("wasip1-hello.wat")).unwrap();
    let out = worldfit(&["inspect", path(&file), "--json"]);
    let j: InspectJson = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(
        (j.kind.as_str(), j.wasi.as_str(), j.platform.os.as_str()),
        ("module", "wasip1", "wasip1")
    );
    assert_eq!(j.imports[0].name, "wasi_snapshot_preview1");
    assert_eq!(
        j.imports[0].functions[0].ty,
        "(func (param i32 i32 i32 i32) (result i32))"
    );
    assert_eq!(
        j.exports
            .iter()
            .find(|e| e.name == "_start")
            .unwrap()
            .ty
            .as_deref(),
        Some("(func (param ) (result ))")
    );
}

#[test]
fn inspect_human_output() {
    let out = worldfit(&["inspect", path(&fixture("hello-cli.wasm"))]);
    let text = stdout(&out);
    assert!(
        text.contains("  targets      wasi:cli/command@0.2.6\n"),
        "{text}"
    );
    assert!(
        text.contains("  containerd   wasip2(+wasi%3Acli%2Fcommand%400.2.6)/wasm\n"),
        "{text}"
    );
}

#[test]
fn host_json_and_containerd() {
    let out = worldfit(&["host", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    let j: HostJson = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(j.builtin && j.wasip1);
    assert_eq!(j.name, "embedded-wasmtime@48");
    assert_eq!(j.core, ["preview1"]);
    // The embedded engine's features (proven in tests/confirm.rs), with
    // maps and shared memories off as in wasmtime 48.
    assert!(j.engine.contains(&"component-model-async".to_string()));
    assert!(j.engine.contains(&"gc".to_string()));
    assert!(!j.engine.contains(&"component-model-map".to_string()));
    assert!(!j.engine.contains(&"threads".to_string()));
    assert!(
        j.features
            .contains(&"wasm:feature/component-model-async".to_string())
    );
    assert_eq!(j.os, ["wasip1", "wasip2", "wasip3"]);
    let names: Vec<&str> = j.worlds.iter().map(|w| w.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "worldfit:wasmtime/wasip2-command@48.0.0",
            "worldfit:wasmtime/wasip2-http@48.0.0",
            "worldfit:wasmtime/wasip3-command@48.0.0",
            "worldfit:wasmtime/wasip3-http@48.0.0"
        ]
    );
    assert_eq!(j.worlds[1].drives, ["wasi:http/incoming-handler@0.2.12"]);
    assert_eq!(j.worlds[3].supports, ["wasi:http/service@0.3.0"]);
    // Every world provides the same interfaces: one linker serves them all.
    assert!(j.worlds.iter().all(|w| w.provides == j.worlds[0].provides));
    assert!(
        j.worlds[0]
            .provides
            .contains(&"wasi:http/client@0.3.0".to_string())
    );
    for f in [
        "wasi:cli/command@0.2.12",
        "wasi:http/proxy@0.2.12",
        "wasi:cli/command@0.3.0",
        "wasi:http/service@0.3.0",
    ] {
        assert!(j.features.contains(&f.to_string()), "{f}");
    }

    let out = worldfit(&["host", "--format", "containerd"]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3);
    // A wasip1 entry carries engine features only.
    assert!(
        lines[0].starts_with("wasip1(+wasm%3Afeature%2F") && lines[0].ends_with(")/wasm"),
        "{}",
        lines[0]
    );
    // containerd's parser: `os(+feature...)/arch` with features in [A-Za-z0-9_.%-].
    for line in &lines {
        let (os, rest) = line.split_once('(').unwrap();
        let (features, arch) = rest.rsplit_once(")/").unwrap();
        assert!(["wasip1", "wasip2", "wasip3"].contains(&os));
        assert_eq!(arch, "wasm");
        assert!(features.starts_with('+'));
        for f in features[1..].split('+') {
            assert!(
                !f.is_empty()
                    && f.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"_.%-".contains(&b)),
                "{f}"
            );
        }
        assert!(features.contains("+wasm%3Afeature%2Fcomponent-model-async"));
        if os != "wasip1" {
            assert!(features.contains("+wasi%3Acli%2Fcommand%400.2.12+"));
        }
    }
}

#[test]
fn host_from_wit_lists_its_worlds() {
    let wit = root().join("tests/wit/wasi-0.2.0");
    let out = worldfit(&[
        "host",
        "--wit",
        path(&wit),
        "--world",
        "wasi:http/proxy@0.2.0",
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let j: HostJson = serde_json::from_str(&stdout(&out)).unwrap();
    assert!(!j.builtin && !j.wasip1);
    assert_eq!(j.os, ["wasip2"]);
    assert_eq!(j.worlds[0].supports, ["wasi:http/proxy@0.2.0"]);
    assert!(!j.features.iter().any(|f| f.starts_with("wasi:cli/command")));
}

/// Asserts exit 2, exactly one line on stderr starting `error:` (plus any
/// `caused by` lines), naming `needle`, and nothing on stdout.
fn assert_error(out: &std::process::Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert!(!err.contains("panicked"), "{err}");
    let lines: Vec<&str> = err.lines().collect();
    assert!(lines[0].starts_with("error: "), "{err}");
    assert!(
        lines[1..].iter().all(|l| l.starts_with("  caused by: ")),
        "{err}"
    );
    assert!(lines[0].contains(needle), "expected `{needle}` in: {err}");
    assert!(out.stdout.is_empty(), "stdout: {}", stdout(out));
}

#[test]
fn bad_input_is_exit_2_with_one_error_line() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let hello = std::fs::read(fixture("hello-cli.wasm")).unwrap();
    let module = common::wat_module("wasip1-hello.wat");
    // A WIT package in binary form.
    let synth = Synth::new();
    let wit_pkg = wit_component::encode(&synth.resolve, synth.root, false).unwrap();
    // A component whose first section declares a size far past the end.
    let mut huge = b"\0asm\x0d\x00\x01\x00".to_vec();
    huge.extend_from_slice(&[0x07, 0xff, 0xff, 0xff, 0xff, 0x0f]);

    let cases: Vec<(std::path::PathBuf, &str)> = vec![
        (write("empty.wasm", b""), "is empty"),
        (
            write("random.wasm", b"\x7fELF\x02\x01\x01\0 not wasm at all"),
            "is not a WebAssembly binary",
        ),
        (
            write("truncated-component.wasm", &hello[..hello.len() / 2]),
            "can't be decoded",
        ),
        (
            write("truncated-module.wasm", &module[..module.len() - 7]),
            "can't be decoded",
        ),
        (
            write("package.wasm", &wit_pkg),
            "is a WIT package, not a component",
        ),
        (write("huge-section.wasm", &huge), "can't be decoded"),
        // A component type the decoder doesn't know: the error names it.
        (
            write(
                "unknown-type.wasm",
                b"\0asm\x0d\x00\x01\x00\x07\x02\x01\x5a",
            ),
            "invalid leading byte (0x5a) for component defined type",
        ),
        (
            write("bad-version.wasm", b"\0asm\x05\x00\x00\x00"),
            "can't be decoded",
        ),
        (dir.path().to_path_buf(), "failed to read"),
        (dir.path().join("missing.wasm"), "failed to read"),
    ];
    for (file, message) in &cases {
        let name = file.display().to_string();
        for cmd in ["inspect", "check"] {
            let out = worldfit_os(&[OsStr::new(cmd), file.as_os_str()]);
            assert_error(&out, &format!("`{name}`"));
            assert_error(&out, message);
            let out = worldfit_os(&[OsStr::new(cmd), file.as_os_str(), OsStr::new("--json")]);
            assert_error(&out, message);
        }
    }
}

#[test]
fn bad_hosts_are_exit_2() {
    let hello = fixture("hello-cli.wasm");
    let dir = tempfile::tempdir().unwrap();
    // A WIT directory with a syntax error.
    let broken = dir.path().join("broken");
    std::fs::create_dir(&broken).unwrap();
    std::fs::write(
        broken.join("host.wit"),
        "package my:host;\nworld w { import nope: func(; }\n",
    )
    .unwrap();
    let out = worldfit(&[
        "check",
        path(&hello),
        "--wit",
        path(&broken),
        "--world",
        "w",
    ]);
    assert_error(
        &out,
        &format!("failed to parse WIT host `{}`", broken.display()),
    );
    // A dependency that doesn't exist.
    let missing_dep = dir.path().join("missing-dep.wit");
    std::fs::write(
        &missing_dep,
        "package my:host;\nworld w { import wasi:cli/environment@0.2.0; }\n",
    )
    .unwrap();
    let out = worldfit(&["host", "--wit", path(&missing_dep), "--world", "w"]);
    assert_error(&out, "failed to parse WIT host");
    // An unknown world name names the host and lists what is there.
    let wit = root().join("wit");
    for cmd in ["check", "host"] {
        let mut args = vec![cmd];
        if cmd == "check" {
            args.push(path(&hello));
        }
        args.extend(["--wit", path(&wit), "--world", "no-such-world"]);
        let out = worldfit(&args);
        assert_error(&out, "unknown world `no-such-world`");
        assert_error(&out, "worldfit:wasmtime/wasip2-command@48.0.0");
    }
    // A WIT path that doesn't exist.
    let out = worldfit(&["host", "--wit", "/no/such/dir", "--world", "w"]);
    assert_error(&out, "`/no/such/dir` does not exist");
    // A time limit that can't be is an error even when types would fail first.
    let out = worldfit(&[
        "check",
        path(&hello),
        "--wit",
        path(&wit),
        "--world",
        "wasip2-http",
        "--time-limit",
        "0",
    ]);
    assert_error(&out, "--time-limit must be more than 0");
    // `--wit` without `--world` is a usage error (clap's exit 2).
    let out = worldfit(&["host", "--wit", path(&wit)]);
    assert_eq!(out.status.code(), Some(2));
}

/// `inspect --json` lists the engine features a binary needs, each with
/// where it is first used, and the platform carries them.
#[test]
fn inspect_json_lists_engine_features() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("map.wasm");
    std::fs::write(&file, common::case_component("map-type-export", "app")).unwrap();
    let out = worldfit(&["inspect", path(&file), "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let j: InspectJson = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(j.engine_features.len(), 1, "{:?}", j.engine_features);
    assert_eq!(j.engine_features[0].feature, "component-model-map");
    assert_eq!(j.engine_features[0].at, "a `map` type");
    assert_eq!(
        j.platform.os_features.last().map(String::as_str),
        Some("wasm:feature/component-model-map")
    );
    let out = worldfit(&["inspect", path(&file)]);
    assert!(
        stdout(&out).contains("  engine       component-model-map"),
        "{}",
        stdout(&out)
    );
}
