//! Real runtimes as hosts: the catalog, `--host`, `--host-file`, verdicts
//! as invoked with the flags that would make a binary run, `NAME@*`, and
//! `host --probe` on commands that are not runtimes. (The catalog against
//! the real wasmtime binaries is `tests/catalog.rs`.)

mod common;

use common::{Synth, fixture, root, wat_module, worldfit, worldfit_os};
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

fn text(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn err(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn check(file: &Path, host: &str) -> std::process::Output {
    worldfit_os(&[
        OsStr::new("check"),
        file.as_os_str(),
        OsStr::new("--host"),
        OsStr::new(host),
    ])
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

#[test]
fn the_catalog_lists_every_wasmtime_release_and_the_embedded_host() {
    let out = worldfit(&["host", "--list"]);
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    let listed = text(&out);
    for release in [
        "36.0.9", "42.0.1", "43.0.1", "44.0.1", "45.0.2", "46.0.1", "47.0.3", "48.0.2", "49.0.3",
    ] {
        assert!(listed.contains(&format!("wasmtime@{release}")), "{listed}");
    }
    assert!(listed.contains("embedded-wasmtime@48"), "{listed}");
    assert!(listed.contains("wasmtime serve [-S cli"), "{listed}");
}

/// The `command-imports-http-client` case: `wasmtime run` refuses a command
/// that imports the HTTP client unless given `-S http`; before 46, its
/// `exit-with-code` also needs `-S cli-exit-with-code`.
#[test]
fn a_command_importing_the_http_client_needs_dash_s_http_and_says_so() {
    let synth = Synth::new();
    let comp = synth.component_file("cli-http-client");

    let out = check(&comp, "wasmtime@49");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(t.contains("fits no world of `wasmtime@49.0.3`"), "{t}");
    assert!(
        t.contains("missing-interface  wasi:http/types@0.2.12"),
        "{t}"
    );
    assert!(
        t.contains("runs with `wasmtime run -S http` (flag `-S http`"),
        "{t}"
    );

    let out = check(&comp, "wasmtime@49 run -S http");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    assert!(
        text(&out).contains(
            "runs on `wasmtime@49.0.3 run -S http` world `wasmtime run [wasi:cli/run@0.2.12]`"
        ),
        "{}",
        text(&out)
    );

    // On 45, `-S http` is not enough: `exit-with-code` was unstable there.
    let out = check(&comp, "wasmtime@45 run -S http");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("imports wasi:cli/exit@0.2.12 function `exit-with-code`; host has wasi:cli/exit@0.2.11 without it"),
        "{t}"
    );
    assert!(
        t.contains("runs with `wasmtime run -S http -S cli-exit-with-code`"),
        "{t}"
    );

    let out = check(&comp, "wasmtime@*");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert_eq!(
        text(&out).lines().last().unwrap(),
        "runs on wasmtime ≥ 46.0.1 with `wasmtime run -S http`; on wasmtime ≤ 45.0.2 with `wasmtime run -S http -S cli-exit-with-code`"
    );
}

/// The JavaScript case: a componentize-js command imports the HTTP client
/// (`wasi:http@0.2.10`), so `wasmtime run` of every release refuses it until
/// given `-S http`; the embedded linker has HTTP and runs it.
#[test]
fn a_javascript_command_needs_dash_s_http_on_every_release() {
    let dir = tempfile::tempdir().unwrap();
    let comp = write(
        dir.path(),
        "js.wasm",
        &common::case_component("js-echo-cli-imports", "root"),
    );
    let out = check(&comp, "wasmtime@49");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("missing-interface  wasi:http/types@0.2.10"),
        "{}",
        text(&out)
    );
    let out = check(&comp, "wasmtime@*");
    assert_eq!(
        text(&out).lines().last().unwrap(),
        "runs on every wasmtime release in the catalog (36.0.9 to 49.0.3) with `wasmtime run -S http`"
    );
    let out = worldfit_os(&[
        OsStr::new("check"),
        comp.as_os_str(),
        OsStr::new("--no-confirm"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}

/// A plain WASI 0.2.12 command fails on 36–45 (`exit-with-code` was
/// unstable there) and runs from 46.
#[test]
fn a_0_2_12_command_runs_from_46_and_earlier_with_the_unstable_flag() {
    let synth = Synth::new();
    let comp = synth.component_file("cli-0212");
    let out = check(&comp, "wasmtime@45");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("runs with `wasmtime run -S cli-exit-with-code`"),
        "{}",
        text(&out)
    );
    assert_eq!(check(&comp, "wasmtime@46").status.code(), Some(0));
    let out = check(&comp, "wasmtime@*");
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out).lines().last().unwrap(),
        "runs on wasmtime ≥ 46.0.1 as invoked; on wasmtime ≤ 45.0.2 with `wasmtime run -S cli-exit-with-code`"
    );
}

/// The Rust `wasi:http` handler fixture: `wasmtime serve` refuses it on every
/// release unless given `-S cli`.
#[test]
fn the_rust_http_handler_needs_dash_s_cli_under_serve() {
    let handler = fixture("http-handler.wasm");
    let out = check(&handler, "wasmtime@49 serve");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    let t = text(&out);
    assert!(
        t.contains("closest world `wasmtime serve [wasi:http/incoming-handler@0.2.12]`"),
        "{t}"
    );
    assert!(t.contains("runs with `wasmtime serve -S cli`"), "{t}");
    assert_eq!(
        check(&handler, "wasmtime@36 serve -S cli").status.code(),
        Some(0)
    );
    let out = check(&handler, "wasmtime@*");
    assert_eq!(
        text(&out).lines().last().unwrap(),
        "runs on every wasmtime release in the catalog (36.0.9 to 49.0.3) with `wasmtime serve -S cli`"
    );
}

/// The `core-module-wasi-unstable` case: the wasmtime CLI runs preview 0
/// modules by default; the embedded linker doesn't, and says so by name.
#[test]
fn preview_0_modules_run_on_the_cli_and_not_on_the_embedded_linker() {
    let dir = tempfile::tempdir().unwrap();
    let m = write(dir.path(), "m.wasm", &wat_module("wasip0-hello.wat"));
    assert_eq!(check(&m, "wasmtime@36").status.code(), Some(0));
    assert_eq!(check(&m, "wasmtime@49 run").status.code(), Some(0));
    let out = worldfit_os(&[OsStr::new("check"), m.as_os_str()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("imports from `wasi_unstable` (WASI preview 0, older toolchains); host `embedded-wasmtime@48` doesn't run preview 0 modules"),
        "{}",
        text(&out)
    );
    let out = check(&m, "wasmtime@49 serve");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out).contains("runs components only"),
        "{}",
        text(&out)
    );

    let r = write(dir.path(), "r.wasm", &wat_module("wasip1-reactor.wat"));
    assert_eq!(check(&r, "wasmtime@49").status.code(), Some(0));
    assert_eq!(
        worldfit_os(&[
            OsStr::new("check"),
            r.as_os_str(),
            OsStr::new("--no-confirm")
        ])
        .status
        .code(),
        Some(1),
        "the embedded host drives `_start` only"
    );
}

/// The `p3-http-service-prerelease` case: the closest world is the 0.3
/// HTTP world, and the advice names the release to rebuild against.
#[test]
fn a_prerelease_service_is_explained_against_the_http_world() {
    let dir = tempfile::tempdir().unwrap();
    let mut resolve = wit_parser::Resolve::default();
    let (pkg, _) = resolve
        .push_path(fixture("cases/p3-http-service-prerelease"))
        .unwrap();
    let world = resolve.select_world(&[pkg], Some("serviceonly")).unwrap();
    let comp = write(
        dir.path(),
        "svc.wasm",
        &common::component_for(&resolve, world),
    );
    for (host, world) in [
        ("wasmtime@49", "wasmtime serve [wasi:http/handler@0.3.0]"),
        ("embedded-wasmtime", "worldfit:wasmtime/wasip3-http@48.0.0"),
    ] {
        let out = check(&comp, host);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        let t = text(&out);
        assert!(t.contains(&format!("closest world `{world}`")), "{t}");
        assert!(
            t.contains("the component exports `wasi:http/handler@0.3.0-rc-2026-01-06`, a prerelease, which matches only itself: rebuild it against WASI 0.3.0"),
            "{t}"
        );
    }
}

#[test]
fn check_json_says_which_kind_of_host_and_the_flags_that_fit() {
    let synth = Synth::new();
    let comp = synth.component_file("cli-http-client");
    let out = worldfit_os(&[
        OsStr::new("check"),
        comp.as_os_str(),
        OsStr::new("--host"),
        OsStr::new("wasmtime@47"),
        OsStr::new("--json"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["host"], "wasmtime@47.0.3");
    assert_eq!(v["host_kind"], "profile");
    assert_eq!(v["level"], "types");
    assert_eq!(
        v["runs_with"],
        serde_json::json!([{
            "flag": "-S http",
            "command": "wasmtime run -S http",
            "world": "wasmtime run [wasi:cli/run@0.2.12]"
        }])
    );

    let out = worldfit_os(&[
        OsStr::new("check"),
        comp.as_os_str(),
        OsStr::new("--host"),
        OsStr::new("wasmtime@*"),
        OsStr::new("--json"),
    ]);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["compatible"], false);
    assert_eq!(v["hosts"].as_array().unwrap().len(), 9);
    assert!(
        v["summary"]
            .as_str()
            .unwrap()
            .starts_with("runs on wasmtime ≥ 46.0.1")
    );
}

#[test]
fn bad_host_names_and_files_are_one_line_errors() {
    let hello = fixture("hello-cli.wasm");
    for (host, says) in [
        (
            "nope@1",
            "no host `nope` in the catalog (it has embedded-wasmtime, wasmtime",
        ),
        (
            "wasmtime@50",
            "no release 50 of `wasmtime` in the catalog (it has 36.0.9,",
        ),
        (
            "wasmtime@49 -S nope",
            "`wasmtime@49.0.3` knows no flag `-S nope` (known: -S http,",
        ),
        (
            "wasmtime@49 launch",
            "`wasmtime@49.0.3` has no invocation `launch` (it has run, serve)",
        ),
        ("wasmtime@49 run serve", "`serve` is not a flag"),
    ] {
        let out = check(&hello, host);
        assert_eq!(out.status.code(), Some(2), "{host}: {}", text(&out));
        let e = err(&out);
        assert!(e.contains(says), "{host}: {e}");
        assert_eq!(e.lines().count(), 1, "{host}: {e}");
    }
    // `NAME@*` is for `check` only.
    let out = worldfit(&["host", "--host", "wasmtime@*"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err(&out).contains("names 9 releases; give one"),
        "{}",
        err(&out)
    );

    let dir = tempfile::tempdir().unwrap();
    for (content, says) in [
        ("{", "EOF while parsing"),
        (
            r#"{"worldfit-host-profile":2,"name":"a","version":"1","invocations":[]}"#,
            "format version 2 is not supported",
        ),
        (
            r#"{"worldfit-host-profile":1,"name":"a","version":"1","invocations":[{"name":"run","command":["a"],"provides":["wasi:cli/nope@0.2.0"]}]}"#,
            "invocation `run`: `wasi:cli/nope@0.2.0` is not a WASI interface worldfit knows",
        ),
        (
            r#"{"worldfit-host-profile":1,"name":"a","version":"1","invocations":[{"name":"run","command":["a"],"drivez":[]}]}"#,
            "unknown field `drivez`",
        ),
    ] {
        let path = write(dir.path(), "p.json", content.as_bytes());
        let out = worldfit_os(&[
            OsStr::new("check"),
            hello.as_os_str(),
            OsStr::new("--host-file"),
            path.as_os_str(),
        ]);
        assert_eq!(out.status.code(), Some(2), "{content}");
        let e = err(&out);
        assert!(
            e.contains(&format!("host profile `{}`", path.display())),
            "{e}"
        );
        assert!(e.contains(says), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
    }
}

/// A profile file is a host like the catalog's: a catalog file copied out
/// gives the same verdict.
#[test]
fn a_profile_file_is_a_host() {
    let hello = fixture("hello-cli.wasm");
    let out = worldfit_os(&[
        OsStr::new("check"),
        hello.as_os_str(),
        OsStr::new("--host-file"),
        root().join("hosts/wasmtime-45.json").as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    assert!(
        text(&out).contains("runs on `wasmtime@45.0.2` world"),
        "{}",
        text(&out)
    );
}

#[test]
fn probing_something_that_is_not_a_runtime_fails_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let output = dir.path().join("p.json");
    for (command, says) in [
        (vec!["false"], "it linked none of the 10 entry-point probes"),
        (
            vec!["/nonexistent/runtime", "run"],
            "cannot run `/nonexistent/runtime`",
        ),
        // Hangs without a word: each probe hits the time limit.
        (
            vec!["sh", "-c", "sleep 100"],
            "timed out: no exit and no output within 0.2 s",
        ),
    ] {
        let mut args: Vec<&OsStr> = vec![
            OsStr::new("host"),
            OsStr::new("--probe"),
            OsStr::new("--release"),
            OsStr::new("1"),
            OsStr::new("--time-limit"),
            OsStr::new("0.2"),
            OsStr::new("--output"),
            output.as_os_str(),
            OsStr::new("--"),
        ];
        args.extend(command.iter().map(OsStr::new));
        let out = worldfit_os(&args);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {}", err(&out));
        let e = err(&out);
        assert!(e.contains(says), "{command:?}: {e}");
        assert!(!output.exists(), "{command:?} wrote a profile");
    }
}

/// The library form: a shim probes its own linker (the example's, a wasmtime
/// 48 linker set up as the embedded one is) and the profile it gets is
/// exactly what the embedded host's WIT says that linker provides.
#[cfg(feature = "wasmtime")]
#[test]
fn probing_a_linker_through_the_library_gives_the_embedded_profile() {
    #[allow(dead_code)]
    #[path = "../examples/probe_linker.rs"]
    mod example;
    let probed = example::probe_my_linker().unwrap();
    let drives: Vec<String> = probed.drives.iter().map(ToString::to_string).collect();
    // The embedded host's four entry points, and (a finding of this probe)
    // `wasi:cli/run` under each WASI 0.3 release candidate's name: the p3
    // `CommandPre` accepts those exports, whose type is 0.3.0's. The
    // embedded profile leaves them out (a component exporting one imports
    // that candidate's interfaces too, which the linker lacks).
    assert_eq!(
        drives,
        [
            "wasi:cli/run@0.2.12",
            "wasi:cli/run@0.3.0-rc-2025-09-16",
            "wasi:cli/run@0.3.0-rc-2026-01-06",
            "wasi:cli/run@0.3.0-rc-2026-03-15",
            "wasi:cli/run@0.3.0",
            "wasi:http/handler@0.3.0",
            "wasi:http/incoming-handler@0.2.12"
        ]
    );
    // Every interface the embedded host's WIT provides, at the release it
    // names, and nothing else (interfaces of plain types can't be probed).
    let host = worldfit::Host::wasmtime();
    let world = host.world("wasip2-command").unwrap();
    let mut expected: Vec<String> = world
        .provides
        .iter()
        .map(|(n, _)| n.to_string())
        .filter(|n| !["wasi:clocks/types@0.3.0", "wasi:cli/types@0.3.0"].contains(&n.as_str()))
        .collect();
    expected.sort();
    let mut provided: Vec<String> = probed.provides.iter().map(ToString::to_string).collect();
    provided.sort();
    assert_eq!(provided, expected);
    // The example's engine is set up as the embedded one is: same features
    // (threads only if it instantiated the shared-memory probe, which
    // wasmtime 48 refuses with `Config::shared_memory` off).
    let mut engine = probed.engine.clone();
    let mut embedded = worldfit::engine_features::EMBEDDED.to_vec();
    engine.sort();
    embedded.sort();
    assert_eq!(engine, embedded);
}

/// `select` picks for a catalog host as invoked: a command image runs on
/// `wasmtime run`, not on `wasmtime serve`.
#[cfg(feature = "registry")]
#[test]
fn select_judges_for_a_catalog_host_as_invoked() {
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("oci");
    let out = worldfit_os(&[
        OsStr::new("tag"),
        fixture("hello-cli.wasm").as_os_str(),
        OsStr::new("--layout"),
        layout.as_os_str(),
        OsStr::new("--tag"),
        OsStr::new("1.0"),
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    let source = format!("{}:1.0", layout.display());
    let out = worldfit(&["select", &source, "--host", "wasmtime@49"]);
    assert_eq!(out.status.code(), Some(0), "{}", err(&out));
    assert!(
        text(&out).contains("for host `wasmtime@49.0.3` (confirmed: types checked)"),
        "{}",
        text(&out)
    );
    let out = worldfit(&["select", &source, "--host", "wasmtime@49 serve"]);
    assert_eq!(out.status.code(), Some(1), "{}", err(&out));
    assert!(
        text(&out).contains("runs on host `wasmtime@49.0.3 serve`"),
        "{}",
        text(&out)
    );
}

/// The `map-type-export` case on the real CLI's profile: `wasmtime run`
/// refuses a `map` type until given `-W component-model-map=y` (which
/// releases from 44 know), and worldfit says that flag.
#[test]
fn a_map_type_runs_only_with_the_map_flag() {
    let dir = tempfile::tempdir().unwrap();
    let comp = write(
        dir.path(),
        "map.wasm",
        &common::case_component("map-type-export", "app"),
    );
    let out = check(&comp, "wasmtime@49");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("unsupported-feature  wasm:feature/component-model-map"),
        "{}",
        text(&out)
    );
    assert!(
        text(&out).contains("-W component-model-map=y"),
        "{}",
        text(&out)
    );
    let out = check(&comp, "wasmtime@49 run -W component-model-map=y");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    // The embedded engine keeps maps off, as wasmtime 48 does.
    let out = worldfit_os(&[
        OsStr::new("check"),
        comp.as_os_str(),
        OsStr::new("--no-confirm"),
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
}

/// The `p2-command-async-builtins` case: releases without component-model
/// async (36) refuse it by its engine feature, not its imports.
#[test]
fn async_builtins_need_a_release_with_component_model_async() {
    let dir = tempfile::tempdir().unwrap();
    let comp = write(
        dir.path(),
        "async.wasm",
        &common::case_component_async("p2-command-async-builtins", "cli"),
    );
    let out = check(&comp, "wasmtime@36");
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(
        text(&out).contains("unsupported-feature  wasm:feature/component-model-async"),
        "{}",
        text(&out)
    );
    let out = check(&comp, "wasmtime@49");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
}
