//! The type-level verdict on synthesized components, one per case, against
//! the built-in `wasmtime` host.

mod common;

use common::{Synth, wat_module};
use worldfit::component::{Wasm, decode};
use worldfit::host::Host;
use worldfit::platform::platform;
use worldfit::verdict::{ProblemKind, check};

fn verdict_of(bytes: &[u8]) -> worldfit::verdict::Verdict {
    let wasm = decode(bytes).expect("decodes");
    check(&wasm, &Host::wasmtime())
}

/// (case, expected problem kinds; empty = compatible, expected host world)
const CASES: &[(&str, &[ProblemKind], &str)] = &[
    ("cli-020", &[], "wasip2-command"),
    ("proxy-020", &[], "wasip2-http"),
    ("cli-newer-patch", &[], "wasip2-command"),
    ("cli-newer-function", &[ProblemKind::MissingFunction], ""),
    ("cli-changed-type", &[ProblemKind::FunctionMismatch], ""),
    ("cli-prerelease", &[ProblemKind::PrereleaseMismatch], ""),
    ("cli-old-track", &[ProblemKind::VersionMismatch], ""),
    ("cli-with-kv", &[ProblemKind::MissingInterface], ""),
    ("library", &[ProblemKind::NoEntryPoint], ""),
    ("cli-p3", &[], "wasip3-command"),
    ("service-p3", &[], "wasip3-http"),
    ("mixed-p2-p3", &[], "wasip3-command"),
    ("cli-http-client", &[], "wasip2-command"),
];

#[test]
fn every_case_gets_its_verdict() {
    let synth = Synth::new();
    for (case, kinds, world) in CASES {
        let v = verdict_of(&synth.component(case));
        let got: Vec<ProblemKind> = v.problems.iter().map(|p| p.kind).collect();
        assert_eq!(&got, kinds, "case `{case}`: {:#?}", v.problems);
        assert_eq!(v.compatible, kinds.is_empty(), "case `{case}`");
        if kinds.is_empty() {
            assert_eq!(
                v.world.as_deref(),
                Some(format!("worldfit:wasmtime/{world}@48.0.0").as_str()),
                "case `{case}`"
            );
        } else {
            assert!(v.world.is_none() && v.closest.is_some(), "case `{case}`");
        }
    }
}

#[test]
fn problems_say_what_the_host_has_instead() {
    let synth = Synth::new();
    let v = verdict_of(&synth.component("cli-newer-function"));
    assert_eq!(
        v.problems[0].name,
        "wasi:cli/environment@0.2.99#get-sandbox-flavor"
    );
    assert_eq!(
        v.problems[0].detail,
        "imports wasi:cli/environment@0.2.99 function `get-sandbox-flavor`; host has wasi:cli/environment@0.2.12 without it"
    );
    let v = verdict_of(&synth.component("cli-changed-type"));
    assert_eq!(
        v.problems[0].detail,
        "imports `get-environment` as `func() -> list<string>`; host wasi:cli/environment@0.2.12 has `func() -> list<tuple<string, string>>`"
    );
    let v = verdict_of(&synth.component("cli-prerelease"));
    assert!(
        v.problems[0]
            .detail
            .contains("host has wasi:cli/environment@0.2.12, wasi:cli/environment@0.3.0"),
        "{}",
        v.problems[0].detail
    );
    let v = verdict_of(&synth.component("cli-old-track"));
    assert!(
        v.problems[0].detail.contains("no version on track 0.1"),
        "{}",
        v.problems[0].detail
    );
    let v = verdict_of(&synth.component("library"));
    assert!(
        v.problems[0]
            .detail
            .contains("the component exports acme:lib/api@1.0.0"),
        "{}",
        v.problems[0].detail
    );
}

#[test]
fn every_problem_is_listed_not_just_the_first() {
    // The bad wasip1 module has four problems; all four are reported.
    let v = verdict_of(&wat_module("wasip1-bad.wat"));
    let kinds: Vec<ProblemKind> = v.problems.iter().map(|p| p.kind).collect();
    assert_eq!(
        kinds,
        [
            ProblemKind::UnsupportedImport,
            ProblemKind::MissingFunction,
            ProblemKind::FunctionMismatch,
            ProblemKind::NoEntryPoint
        ]
    );
}

#[test]
fn wasip1_modules_run_on_the_builtin_host_only() {
    let bytes = wat_module("wasip1-hello.wat");
    let v = verdict_of(&bytes);
    assert!(v.compatible, "{:?}", v.problems);
    assert_eq!(v.world.as_deref(), Some("wasip1"));
    let wit_host = Host::from_wit(&common::root().join("wit"), &["wasip2-command".into()]).unwrap();
    let v = check(&decode(&bytes).unwrap(), &wit_host);
    assert!(!v.compatible);
    assert_eq!(v.problems[0].kind, ProblemKind::UnsupportedKind);
}

#[test]
fn platforms_name_the_target_world_and_the_uncovered_imports() {
    let synth = Synth::new();
    let known = worldfit::host::standard_worlds();
    let p = |case: &str| platform(&decode(&synth.component(case)).unwrap(), &known);
    let cli = p("cli-020");
    assert_eq!(
        (cli.os.as_str(), cli.os_features.clone()),
        ("wasip2", vec!["wasi:cli/command@0.2.0".to_string()])
    );
    let client = p("cli-http-client");
    assert_eq!(
        client.os_features,
        [
            "wasi:cli/command@0.2.12",
            "wasi:http/outgoing-handler@0.2.12",
            "wasi:http/types@0.2.12"
        ]
    );
    let proxy = p("proxy-020");
    assert_eq!(proxy.os_features, ["wasi:http/proxy@0.2.0"]);
    // Built with the async ABI (a 0.3 world): it needs component-model async.
    let p3 = p("cli-p3");
    assert_eq!(
        (p3.os.as_str(), p3.os_features.clone()),
        (
            "wasip3",
            vec![
                "wasi:cli/command@0.3.0".to_string(),
                "wasm:feature/component-model-async".to_string()
            ]
        )
    );
    let svc = p("service-p3");
    assert_eq!(
        (svc.os.as_str(), svc.os_features.clone()),
        (
            "wasip3",
            vec![
                "wasi:http/service@0.3.0".to_string(),
                "wasm:feature/component-model-async".to_string()
            ]
        )
    );
    assert_eq!(p("mixed-p2-p3").os, "wasip3");
    let lib = p("library");
    assert_eq!(lib.os_features, ["wasi:cli/environment@0.2.12"]);
    let module = platform(&decode(&wat_module("wasip1-hello.wat")).unwrap(), &known);
    assert_eq!(
        (module.os.as_str(), module.os_features.len()),
        ("wasip1", 0)
    );
}

#[test]
fn feature_levels_are_yes_maybe_no() {
    use worldfit::os_features::{Level, os_feature_levels};
    let host = Host::wasmtime();
    let f = |v: &[&str]| {
        os_feature_levels(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>(), &host).0
    };
    assert_eq!(f(&["wasi:cli/command@0.2.6"]), Level::Yes);
    assert_eq!(f(&["wasi:cli/command@0.2.99"]), Level::Maybe);
    assert_eq!(
        f(&["wasi:cli/command@0.3.0", "wasi:http/service@0.3.0"]),
        Level::Yes
    );
    assert_eq!(
        f(&["wasi:cli/command@0.2.6", "wasi:http/types@0.2.20"]),
        Level::Maybe
    );
    assert_eq!(
        f(&["wasi:cli/command@0.2.6", "acme:kv/store@1.0.0"]),
        Level::No
    );
    assert_eq!(f(&["wasi:cli/command@0.4.0"]), Level::No);
    assert_eq!(f(&["wasi:cli/command@0.3.0-rc-2025-08-15"]), Level::No);
    assert_eq!(f(&["not a wit name"]), Level::No);
    assert_eq!(f(&[]), Level::Yes);
    // A WIT host with only WASI 0.2.0 meets 0.2.6 features at the maybe level.
    let old = Host::from_wit(
        &common::root().join("tests/wit/wasi-0.2.0"),
        &["wasi:cli/command@0.2.0".into()],
    )
    .unwrap();
    let (level, per) = os_feature_levels(&["wasi:cli/command@0.2.6".to_string()], &old);
    assert_eq!(level, Level::Maybe);
    assert_eq!(per[0].host_has.as_deref(), Some("wasi:cli/command@0.2.0"));
}

#[test]
fn real_fixtures_decode_as_expected() {
    let hello = decode(&std::fs::read(common::fixture("hello-cli.wasm")).unwrap()).unwrap();
    assert!(matches!(hello, Wasm::Component(_)));
    let v = check(&hello, &Host::wasmtime());
    assert!(v.compatible);
    let http = decode(&std::fs::read(common::fixture("http-handler.wasm")).unwrap()).unwrap();
    let v = check(&http, &Host::wasmtime());
    assert_eq!(
        v.world.as_deref(),
        Some("worldfit:wasmtime/wasip2-http@48.0.0")
    );
}

/// Regression: a code section cut short once made the framing check index
/// past the end of the input. No truncation of a real binary panics, and a
/// cut inside a section is always an error (a cut exactly at a section
/// boundary can leave a smaller valid module, like the bare 8-byte header).
#[test]
fn truncations_never_panic() {
    let bytes = std::fs::read(common::fixture("hello-cli.wasm")).unwrap();
    let mut errors = 0;
    let lens: Vec<usize> = (9..bytes.len()).step_by(61).collect();
    for &len in &lens {
        errors += usize::from(decode(&bytes[..len]).is_err());
    }
    // A few cuts land on boundaries between the trailing custom sections.
    assert!(
        errors + 8 >= lens.len(),
        "only {errors} of {} cuts of the component were errors",
        lens.len()
    );
    let module = wat_module("wasip1-hello.wat");
    let errors = (0..module.len())
        .filter(|&len| decode(&module[..len]).is_err())
        .count();
    assert!(
        errors >= module.len() - 6,
        "{errors} of {} module prefixes were errors",
        module.len()
    );
}

/// The `map-type-export` case: a WASI 0.2 command exporting a function that
/// returns `map<string, string>`. wasmtime 48 (and 49's CLI) refuse to even
/// parse it without the map feature, so the type level says so, with the
/// switch, and its platform carries the need.
#[test]
fn a_map_type_needs_the_map_feature_at_the_type_level_and_in_the_index() {
    use worldfit::engine_features::EngineFeature;
    use worldfit::os_features::{Level, os_feature_levels};
    let bytes = common::case_component("map-type-export", "app");
    let wasm = decode(&bytes).unwrap();
    let needs: Vec<EngineFeature> = wasm.engine_features().iter().map(|u| u.feature).collect();
    assert_eq!(needs, [EngineFeature::ComponentModelMap]);
    let host = Host::wasmtime();
    let v = check(&wasm, &host);
    assert!(!v.compatible);
    assert_eq!(v.problems.len(), 1, "{:?}", v.problems);
    let p = &v.problems[0];
    assert_eq!(p.kind, ProblemKind::UnsupportedFeature);
    assert_eq!(p.name, "wasm:feature/component-model-map");
    assert!(
        p.detail.contains("`-W component-model-map=y`"),
        "{}",
        p.detail
    );
    assert!(
        p.detail.contains("Config::wasm_component_model_map(true)"),
        "{}",
        p.detail
    );
    let platform = platform(&wasm, host.known_worlds());
    assert_eq!(platform.os, "wasip2");
    assert_eq!(
        platform.os_features,
        [
            "wasi:cli/command@0.2.12",
            "wasm:feature/component-model-map"
        ]
    );
    // Judged by the index alone, the embedded host says no.
    let (level, _) = os_feature_levels(&platform.os_features, &host);
    assert_eq!(level, Level::No);
    // A host that enables the feature takes it, by the index and by the types.
    let mut with_map = Host::wasmtime();
    with_map.engine.push(EngineFeature::ComponentModelMap);
    assert!(check(&wasm, &with_map).compatible);
    assert_eq!(
        os_feature_levels(&platform.os_features, &with_map).0,
        Level::Yes
    );
}

/// The `p2-command-async-builtins` case: a WASI 0.2 command built with
/// async-enabled bindings imports only 0.2 interfaces but uses the
/// component-model async ABI and built-ins. It is a `wasip3` build
/// (design.md), needs `component-model-async`, and a host without it is
/// told so.
#[test]
fn async_builtins_in_a_0_2_command_make_it_wasip3() {
    use worldfit::engine_features::EngineFeature;
    let bytes = common::case_component_async("p2-command-async-builtins", "cli");
    let wasm = decode(&bytes).unwrap();
    let uses = wasm.engine_features();
    assert_eq!(uses.len(), 1, "{uses:?}");
    assert_eq!(uses[0].feature, EngineFeature::ComponentModelAsync);
    let host = Host::wasmtime();
    let platform = platform(&wasm, host.known_worlds());
    assert_eq!(platform.os, "wasip3");
    assert_eq!(
        platform.os_features,
        [
            "wasi:cli/command@0.2.12",
            "wasm:feature/component-model-async"
        ]
    );
    assert!(check(&wasm, &host).compatible);
    let mut without = Host::wasmtime();
    without
        .engine
        .retain(|f| *f != EngineFeature::ComponentModelAsync);
    let v = check(&wasm, &without);
    assert!(!v.compatible);
    assert_eq!(v.problems[0].kind, ProblemKind::UnsupportedFeature);
    assert_eq!(v.problems[0].name, "wasm:feature/component-model-async");
    // The same world built with the synchronous ABI needs nothing more.
    let sync = decode(&common::case_component("p2-command-async-builtins", "cli")).unwrap();
    assert!(sync.engine_features().is_empty());
    assert_eq!(platform_os(&sync), "wasip2");
}

fn platform_os(wasm: &Wasm) -> String {
    platform(wasm, Host::wasmtime().known_worlds()).os
}

/// Core-module features are read from sections, and a wasip1 module's
/// platform carries them: a module with a shared memory import needs
/// threads, which the embedded engine keeps off.
#[test]
fn a_module_importing_a_shared_memory_needs_threads() {
    let bytes = wat::parse_str(
        r#"(module
             (import "env" "memory" (memory 1 16 shared))
             (import "wasi_snapshot_preview1" "proc_exit" (func (param i32)))
             (func (export "_start")))"#,
    )
    .unwrap();
    let wasm = decode(&bytes).unwrap();
    let Wasm::Module(m) = &wasm else {
        panic!("a module")
    };
    assert_eq!(m.imports[0].other.as_deref(), Some("memory 1 16 shared"));
    let v = check(&wasm, &Host::wasmtime());
    assert!(!v.compatible);
    let feature = v
        .problems
        .iter()
        .find(|p| p.kind == ProblemKind::UnsupportedFeature)
        .expect("a feature problem");
    assert_eq!(feature.name, "wasm:feature/threads");
    assert!(
        feature.detail.contains("shared memory import env.memory"),
        "{}",
        feature.detail
    );
    assert!(
        feature.detail.contains("`-W shared-memory=y`"),
        "{}",
        feature.detail
    );
    let p = platform(&wasm, Host::wasmtime().known_worlds());
    assert_eq!(p.os, "wasip1");
    assert_eq!(p.os_features, ["wasm:feature/threads"]);
}

/// WASI 0.3.2 beside 0.2: `fixtures/p3-hello.wasm`, built with the `wasip3`
/// crate (0.10.0+wasi-0.3.2), exports `wasi:cli/run@0.3.2` and imports
/// `wasi:cli/stdout@0.3.2` next to the 0.2.6 interfaces Rust's standard
/// library uses. On a 0.3.0 host its target world is *maybe* by the index,
/// and the types decide: wasmtime's linker matches 0.3.2 to the host's
/// 0.3.0 on the `0.3` track, and every item it uses is there.
#[test]
fn a_0_3_2_command_is_maybe_by_the_index_and_fits_a_0_3_0_host_by_its_types() {
    use worldfit::engine_features::EngineFeature;
    use worldfit::os_features::{Level, os_feature_level};
    let bytes = std::fs::read(common::fixture("p3-hello.wasm")).unwrap();
    let wasm = decode(&bytes).unwrap();
    let host = Host::wasmtime();
    let p = platform(&wasm, host.known_worlds());
    assert_eq!(p.os, "wasip3");
    assert_eq!(p.os_features[0], "wasi:cli/command@0.3.2");
    assert!(p.os_features.contains(&"wasi:io/streams@0.2.6".to_string()));
    assert_eq!(
        p.os_features.last().map(String::as_str),
        Some("wasm:feature/component-model-async")
    );
    let level = os_feature_level("wasi:cli/command@0.3.2", &host);
    assert_eq!(level.level, Level::Maybe);
    assert_eq!(level.host_has.as_deref(), Some("wasi:cli/command@0.3.0"));
    let features: Vec<EngineFeature> = wasm.engine_features().iter().map(|u| u.feature).collect();
    assert_eq!(features, [EngineFeature::ComponentModelAsync]);
    let v = check(&wasm, &host);
    assert!(v.compatible, "{:?}", v.problems);
    assert_eq!(
        v.world.as_deref(),
        Some("worldfit:wasmtime/wasip3-command@48.0.0")
    );
}
