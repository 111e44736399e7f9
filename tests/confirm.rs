//! Confirmation in the embedded wasmtime: the built-in profile proven against
//! the real linker, the sandbox's limits, agreement between the type-level
//! verdict and instantiation, and the compile cache.
#![cfg(feature = "wasmtime")]

mod common;

use common::{Synth, component_for, fixture, wat_module, worldfit};
use std::time::{Duration, Instant};
use worldfit::cache::CompileCache;
use worldfit::confirm::{ConfirmOptions, Failure, Limits};
use worldfit::host::{BUILTIN_WORLDS, builtin_resolve};
use worldfit::{Host, check, decode};

fn confirm(bytes: &[u8], options: &ConfirmOptions) -> worldfit::confirm::Confirmation {
    Host::wasmtime()
        .confirm(bytes, options)
        .expect("the built-in host confirms")
}

fn quick() -> ConfirmOptions {
    common::quick_confirm()
}

/// The embedded host's engine features are exactly what its engine
/// enables: each feature's probe (a core module using it, or a component
/// with one section needing it) instantiates in the embedded wasmtime iff
/// the built-in profile lists the feature, and the profile lists nothing it
/// can't prove.
#[test]
fn the_builtin_engine_features_are_what_the_embedded_engine_enables() {
    use worldfit::engine_features::{EMBEDDED, EngineFeature};
    use worldfit::host::probe_wasm::{ComponentProbe, component_feature_section, core_feature_wat};
    let host = Host::wasmtime();
    assert_eq!(host.engine, EMBEDDED);
    let vehicle = ComponentProbe {
        export: "wasi:cli/run@0.2.12".parse().unwrap(),
        imports: vec![],
        async_builtin: false,
    };
    let mut proven = Vec::new();
    for f in EngineFeature::ALL {
        let bytes = if let Some(wat) = core_feature_wat(f) {
            wat::parse_str(wat).unwrap()
        } else if let Some(section) = component_feature_section(f) {
            let mut bytes = vehicle.build().unwrap();
            bytes.extend(section);
            bytes
        } else if f == EngineFeature::ComponentModelAsync {
            ComponentProbe {
                async_builtin: true,
                ..vehicle.clone()
            }
            .build()
            .unwrap()
        } else {
            continue;
        };
        let c = confirm(&bytes, &quick());
        assert_eq!(
            c.instantiated,
            EMBEDDED.contains(&f),
            "{f}: instantiated {} ({:?})",
            c.instantiated,
            c.message
        );
        proven.push(f);
    }
    for f in EMBEDDED {
        assert!(proven.contains(f), "{f} is listed but has no probe");
    }
}

/// The WASI 0.3.2 command (0.3.2 and 0.2.6 imports side by side) links
/// and instantiates in the embedded wasmtime, whose 0.3 interfaces are
/// 0.3.0's: the type-level "compatible" is the linker's answer too.
#[test]
fn a_0_3_2_command_instantiates_on_the_0_3_0_linker() {
    let bytes = std::fs::read(fixture("p3-hello.wasm")).unwrap();
    let v = check(&decode(&bytes).unwrap(), &Host::wasmtime());
    assert!(v.compatible, "{:?}", v.problems);
    let c = confirm(&bytes, &quick());
    assert!(c.instantiated, "{:?}", c.message);
}

/// The built-in profile is what the linker provides: a component importing
/// every interface of each world (and exporting its entry point) links; one
/// more interface doesn't. Upgrading wasmtime breaks this test, not users.
#[test]
fn builtin_profile_is_exactly_the_linker() {
    let (base, root) = builtin_resolve();
    for world in BUILTIN_WORLDS {
        let id = base.packages[root].worlds[*world];
        let bytes = component_for(&base, id);
        let c = confirm(&bytes, &quick());
        assert!(
            c.instantiated,
            "world `{world}` does not link: {:?}",
            c.message
        );
        // The type level agrees.
        assert!(
            check(&decode(&bytes).unwrap(), &Host::wasmtime()).compatible,
            "{world}"
        );
    }
    // One interface more than the linker has: `wasi:http/handler@0.3.0` as an
    // import (the middleware shape), which wasmtime-wasi-http doesn't provide.
    let mut resolve = base.clone();
    let pkg = resolve
        .push_str(
            "extra.wit",
            "package test:extra;\nworld one-more {\n  include worldfit:wasmtime/wasip3-http@48.0.0;\n  import wasi:http/handler@0.3.0;\n}\n",
        )
        .unwrap();
    let id = resolve.packages[pkg].worlds["one-more"];
    let bytes = component_for(&resolve, id);
    let c = confirm(&bytes, &quick());
    assert!(!c.instantiated);
    let message = c.message.unwrap();
    assert!(message.contains("wasi:http/handler@0.3.0"), "{message}");
    let v = check(&decode(&bytes).unwrap(), &Host::wasmtime());
    assert!(!v.compatible);
    assert_eq!(v.problems[0].name, "wasi:http/handler@0.3.0");
}

/// For every fixture, the type-level verdict equals the confirmed result.
#[test]
fn types_and_instantiation_agree_on_every_fixture() {
    let synth = Synth::new();
    let mut cases: Vec<(String, Vec<u8>)> = vec![
        (
            "hello-cli".into(),
            std::fs::read(fixture("hello-cli.wasm")).unwrap(),
        ),
        (
            "http-handler".into(),
            std::fs::read(fixture("http-handler.wasm")).unwrap(),
        ),
        ("wasip1-hello".into(), wat_module("wasip1-hello.wat")),
        ("wasip1-bad".into(), wat_module("wasip1-bad.wat")),
    ];
    // `library` is the one case where the two differ by design (below).
    for case in common::SYNTH_CASES.iter().filter(|c| **c != "library") {
        cases.push((case.to_string(), synth.component(case)));
    }
    let host = Host::wasmtime();
    let mut agreed = 0;
    for (name, bytes) in &cases {
        let types = check(&decode(bytes).unwrap(), &host).compatible;
        let c = confirm(bytes, &quick());
        assert_eq!(
            types, c.instantiated,
            "`{name}`: types say {types}, wasmtime says {:?}",
            c.message
        );
        agreed += 1;
    }
    // `library` has no entry point: it links (nothing requires an export to
    // instantiate) but the host can't drive it, so only the type level can say no.
    assert!(confirm(&synth.component("library"), &quick()).instantiated);
    println!("types and instantiation agree on {agreed} fixtures");
}

#[test]
fn a_start_function_that_loops_forever_times_out_within_the_limit() {
    for name in ["sandbox/loop-forever.wat", "sandbox/wasip1-loop.wat"] {
        let bytes = wat_module(name);
        let start = Instant::now();
        let c = confirm(
            &bytes,
            &ConfirmOptions {
                limits: Limits {
                    time: Duration::from_millis(500),
                    ..Limits::default()
                },
                cache: None,
                full: false,
            },
        );
        let took = start.elapsed();
        assert_eq!(
            c.failure,
            Some(Failure::TimedOut),
            "{name}: {:?}",
            c.message
        );
        assert!(
            c.message.as_deref().unwrap().contains("interrupt"),
            "{:?}",
            c.message
        );
        // Stopped at the limit: never before it, and (with slack for a loaded
        // CI machine starving the epoch thread) not long after.
        assert!(
            c.instantiate >= Duration::from_millis(450),
            "{name}: stopped early, after {:?}",
            c.instantiate
        );
        assert!(
            c.instantiate < Duration::from_secs(2),
            "{name}: instantiating took {:?}",
            c.instantiate
        );
        assert!(took < Duration::from_secs(10), "{name}: {took:?}");
    }
}

#[test]
fn a_start_function_that_grows_memory_stops_at_the_limit() {
    let bytes = wat_module("sandbox/grow-forever.wat");
    let c = confirm(
        &bytes,
        &ConfirmOptions {
            limits: Limits {
                memory_bytes: 32 << 20,
                ..Limits::default()
            },
            cache: None,
            full: false,
        },
    );
    assert_eq!(c.failure, Some(Failure::MemoryLimit), "{:?}", c.message);
    // The failed grow is the first one past 32 MiB: 1 page + 16 pages per step.
    let expected = (1 + 16 * 32) * 65536;
    assert!(
        c.message
            .as_deref()
            .unwrap()
            .contains(&format!("growing memory to {expected} bytes")),
        "{:?}",
        c.message
    );
}

#[test]
fn traps_and_output_are_reported() {
    let c = confirm(&wat_module("sandbox/trap-in-start.wat"), &quick());
    assert_eq!(c.failure, Some(Failure::Instantiate));
    assert!(
        c.message.as_deref().unwrap().contains("unreachable"),
        "{:?}",
        c.message
    );
    let c = confirm(&wat_module("sandbox/wasip1-writes.wat"), &quick());
    assert!(c.instantiated, "{:?}", c.message);
    assert_eq!(c.stdout, b"hello from start\n");
    // Output is capped.
    let c = confirm(
        &wat_module("sandbox/wasip1-writes.wat"),
        &ConfirmOptions {
            limits: Limits {
                output_bytes: 5,
                ..quick().limits
            },
            cache: None,
            full: false,
        },
    );
    assert!(c.stdout.len() <= 5, "{:?}", c.stdout);
}

#[test]
fn a_module_that_fails_to_compile_is_a_verdict_not_a_panic() {
    // Valid framing, invalid body: decodes for the type level, fails to compile.
    // `wat` parses without validating, so this type-incorrect body gets through.
    let bytes = wat::parse_str(r#"(module (func (export "_start") i32.add))"#).unwrap();
    let c = confirm(&bytes, &quick());
    assert_eq!(c.failure, Some(Failure::Compile), "{:?}", c.message);
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad-body.wasm");
    std::fs::write(&file, &bytes).unwrap();
    let out = worldfit(&["check", file.to_str().unwrap(), "--no-cache"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("compile-failed"));
}

#[test]
fn the_cache_is_used_verified_and_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let cache = CompileCache::new(dir.path().join("cache"));
    let options = ConfirmOptions {
        cache: Some(cache.clone()),
        ..quick()
    };
    let bytes = std::fs::read(fixture("hello-cli.wasm")).unwrap();
    let cold = confirm(&bytes, &options);
    assert!(
        cold.instantiated && !cold.cached && cold.cache_note.is_none(),
        "{cold:?}"
    );
    let warm = confirm(&bytes, &options);
    assert!(warm.instantiated && warm.cached, "{warm:?}");
    // Corrupt every entry: discarded with a note, rebuilt, never loaded.
    for entry in std::fs::read_dir(cache.dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "cwasm") {
            continue;
        }
        let mut data = std::fs::read(&path).unwrap();
        let n = data.len();
        data[n - 100] ^= 0xff;
        std::fs::write(&path, data).unwrap();
    }
    let again = confirm(&bytes, &options);
    assert!(again.instantiated && !again.cached, "{again:?}");
    assert!(
        again
            .cache_note
            .as_deref()
            .unwrap()
            .contains("checksum mismatch"),
        "{:?}",
        again.cache_note
    );
    assert!(
        confirm(&bytes, &options).cached,
        "the rebuilt entry is used"
    );
}

#[test]
fn an_unwritable_cache_is_a_warning_not_a_failure() {
    let dir = tempfile::tempdir().unwrap();
    // A file where the cache directory should be: nothing can be created under it.
    let blocker = dir.path().join("not-a-dir");
    std::fs::write(&blocker, b"").unwrap();
    let file = fixture("hello-cli.wasm");
    let out = worldfit(&[
        "check",
        file.to_str().unwrap(),
        "--cache-dir",
        blocker.join("cache").to_str().unwrap(),
    ]);
    assert_eq!(out.status.code(), Some(0));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.starts_with("warning: compile cache: not cached:"),
        "{err}"
    );
}

#[test]
fn check_confirms_by_default_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().to_str().unwrap();
    let hello = fixture("hello-cli.wasm");
    let out = worldfit(&[
        "check",
        hello.to_str().unwrap(),
        "--cache-dir",
        cache,
        "--json",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["confirmed"], true);
    assert_eq!(j["level"], "instantiate");
    assert_eq!(j["confirmation"]["backend"], "winch");
    // A WIT host is confirmed at the type level, and says so.
    let wit = common::root().join("wit");
    let out = worldfit(&[
        "check",
        hello.to_str().unwrap(),
        "--wit",
        wit.to_str().unwrap(),
        "--world",
        "wasip2-command",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("a WIT host is confirmed at the type level")
    );
    // The infinite loop, through the CLI: the message the issue asks for.
    let file = dir.path().join("loop.wasm");
    std::fs::write(&file, wat_module("sandbox/loop-forever.wat")).unwrap();
    let start = Instant::now();
    let out = worldfit(&[
        "check",
        file.to_str().unwrap(),
        "--time-limit",
        "1",
        "--cache-dir",
        cache,
    ]);
    assert!(start.elapsed() < Duration::from_secs(10));
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "timed out instantiating `{}` after 1 s",
            file.display()
        )),
        "{text}"
    );
}
