//! Stub confirmation (`worldfit::stub`) against the full compile: for every
//! fixture, every synthesized case, every engine-feature probe and a few
//! hand-written edge cases, confirming by the stub and by compiling the
//! real code give the same outcome; binaries with start functions take the
//! full path and stay bounded; an invalid body is still a compile failure.
#![cfg(feature = "wasmtime")]

mod common;

use common::{SYNTH_CASES, Synth, fixture, wat_module};
use worldfit::Host;
use worldfit::confirm::{ConfirmOptions, Confirmation, Failure, Path};

fn options(full: bool) -> ConfirmOptions {
    ConfirmOptions {
        full,
        ..common::quick_confirm()
    }
}

fn confirm(bytes: &[u8], full: bool) -> Confirmation {
    Host::wasmtime()
        .confirm(bytes, &options(full))
        .expect("the built-in host confirms")
}

/// Every binary the tests know, by name.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    for name in ["hello-cli.wasm", "http-handler.wasm", "p3-hello.wasm"] {
        out.push((name.to_string(), std::fs::read(fixture(name)).unwrap()));
    }
    for name in [
        "wasip0-hello.wat",
        "wasip1-hello.wat",
        "wasip1-bad.wat",
        "wasip1-reactor.wat",
        "sandbox/grow-forever.wat",
        "sandbox/loop-forever.wat",
        "sandbox/trap-in-start.wat",
        "sandbox/wasip1-loop.wat",
        "sandbox/wasip1-writes.wat",
    ] {
        out.push((name.to_string(), wat_module(name)));
    }
    let synth = Synth::new();
    for case in SYNTH_CASES {
        out.push((format!("synth {case}"), synth.component(case)));
    }
    out.push((
        "case js-echo-cli-imports".into(),
        common::case_component("js-echo-cli-imports", "root"),
    ));
    out.push((
        "case p3-http-service-prerelease".into(),
        common::case_component("p3-http-service-prerelease", "serviceonly"),
    ));
    out.push((
        "case map-type-export".into(),
        common::case_component("map-type-export", "app"),
    ));
    out.push((
        "case p2-command-async-builtins".into(),
        common::case_component_async("p2-command-async-builtins", "cli"),
    ));
    out
}

#[test]
fn the_stub_and_the_full_compile_give_the_same_outcome() {
    let mut stubbed = Vec::new();
    let mut failures = Vec::new();
    for (name, bytes) in corpus() {
        let quick = confirm(&bytes, false);
        let full = confirm(&bytes, true);
        assert_eq!(full.path, Path::Compiled, "{name}");
        let starts = worldfit::stub::runs_code_while_instantiating(&bytes);
        // Only a binary that runs code while instantiating is compiled.
        assert_eq!(quick.path == Path::Compiled, starts, "{name}");
        if !starts {
            stubbed.push(name.clone());
        }
        if (quick.instantiated, quick.failure) != (full.instantiated, full.failure) {
            failures.push(format!(
                "{name}: stub {:?} {:?}, full {:?} {:?}",
                quick.instantiated, quick.message, full.instantiated, full.message
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    // The toolchain-built components and the modules without a start
    // function take the stub path. (Components wit-component 0.263 builds
    // from a module exporting `_initialize` get a fixup module whose
    // `start` calls it, as the synthesized ones do: compiled in full.)
    for name in [
        "hello-cli.wasm",
        "http-handler.wasm",
        "p3-hello.wasm",
        "wasip1-hello.wat",
        "wasip1-reactor.wat",
    ] {
        assert!(stubbed.iter().any(|s| s == name), "{name}: {stubbed:?}");
    }
}

#[test]
fn start_functions_take_the_full_path_and_stay_bounded() {
    let c = confirm(&wat_module("sandbox/loop-forever.wat"), false);
    assert_eq!(c.path, Path::Compiled);
    assert_eq!(c.failure, Some(Failure::TimedOut), "{:?}", c.message);
    let c = confirm(&wat_module("sandbox/grow-forever.wat"), false);
    assert_eq!(c.path, Path::Compiled);
    assert_eq!(c.failure, Some(Failure::MemoryLimit), "{:?}", c.message);
}

#[test]
fn an_invalid_body_is_a_compile_failure_either_way() {
    // Valid everywhere but in a body the stub would drop.
    let bytes = wat::parse_str(
        r#"(module
            (func (export "_start") (result i32) i64.const 1)
            (memory (export "memory") 1))"#,
    );
    // `wat` checks nothing about types: the body is invalid.
    let bytes = bytes.unwrap();
    for full in [false, true] {
        let c = confirm(&bytes, full);
        assert!(!c.instantiated);
        assert_eq!(
            c.failure,
            Some(Failure::Compile),
            "full {full}: {:?}",
            c.message
        );
    }
}

#[test]
fn a_stub_is_cached_only_for_a_valid_binary() {
    // The stub is built while the binary validates; an invalid binary's
    // stub must not reach the cache, where a warm run would skip validating.
    let invalid =
        wat::parse_str(r#"(module (func (export "_start") (result i32) i64.const 1))"#).unwrap();
    let valid = wat::parse_str(r#"(module (func (export "_start")))"#).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cached = ConfirmOptions {
        cache: Some(worldfit::cache::CompileCache::new(dir.path())),
        ..options(false)
    };
    let host = Host::wasmtime();
    for round in 0..2 {
        let c = host.confirm(&invalid, &cached).unwrap();
        assert_eq!(
            c.failure,
            Some(Failure::Compile),
            "round {round}: {:?}",
            c.message
        );
        assert!(!c.cached, "round {round}");
        let c = host.confirm(&valid, &cached).unwrap();
        assert!(c.instantiated, "round {round}: {:?}", c.message);
        assert_eq!(
            (c.path, c.cached),
            (Path::Stub, round == 1),
            "round {round}"
        );
    }
}

#[test]
fn data_at_the_edge_of_memory_still_instantiates() {
    let bytes = wat::parse_str(
        r#"(module (memory 1) (data (i32.const 65529) "abcdefg")
             (data "passive") (func (export "_start")))"#,
    )
    .unwrap();
    let quick = confirm(&bytes, false);
    assert_eq!(quick.path, Path::Stub);
    assert!(quick.instantiated, "{:?}", quick.message);
}

#[test]
fn instantiation_failures_the_stub_keeps() {
    // A data segment out of bounds, an import the linker lacks, a memory
    // over the limit: instantiation checks, which the stub keeps.
    for (what, wat) in [
        (
            "data out of bounds",
            r#"(module (memory 1) (data (i32.const 65535) "xy")
                 (func (export "_start")))"#,
        ),
        (
            "missing import",
            r#"(module (import "nowhere" "f" (func))
                 (func (export "_start") call 0))"#,
        ),
        (
            "data ending one byte past the memory",
            r#"(module (memory 1) (data (i32.const 65530) "abcdefg")
                 (func (export "_start")))"#,
        ),
        (
            "data overflowing the address space",
            r#"(module (memory 1) (data (i32.const -2) "abcd")
                 (func (export "_start")))"#,
        ),
        (
            "data at an imported global's offset, out of bounds",
            r#"(module (import "env" "g" (global i32)) (memory 1)
                 (data (global.get 0) "ab") (func (export "_start")))"#,
        ),
        (
            "memory over the limit",
            r#"(module (memory 2048) (func (export "_start")))"#,
        ),
    ] {
        let bytes = wat::parse_str(wat).unwrap();
        assert!(!worldfit::stub::runs_code_while_instantiating(&bytes));
        let quick = confirm(&bytes, false);
        let full = confirm(&bytes, true);
        assert_eq!(quick.path, Path::Stub, "{what}");
        assert!(!quick.instantiated, "{what}");
        assert_eq!(
            (quick.instantiated, quick.failure),
            (full.instantiated, full.failure),
            "{what}: {:?} / {:?}",
            quick.message,
            full.message
        );
    }
}

/// A component in the shape dynamic linking gives: module `$a` defines a
/// one-page memory, a 10-element table and `base` (the offset its
/// segments go to, as `__memory_base` and `__table_base` do); module `$b`
/// imports them and has `segments`.
fn linked(base: i32, segments: &str) -> Vec<u8> {
    wat::parse_str(format!(
        r#"(component
            (core module $a
              (memory (export "memory") 1)
              (table (export "table") 10 funcref)
              (global (export "base") i32 (i32.const {base})))
            (core module $b
              (import "a" "memory" (memory 1))
              (import "a" "table" (table 1 funcref))
              (import "a" "base" (global i32))
              (func $f) (func $g (param i32))
              {segments})
            (core instance $ai (instantiate $a))
            (core instance $bi (instantiate $b (with "a" (instance $ai)))))"#
    ))
    .unwrap()
}

#[test]
fn segments_fit_in_the_stub_exactly_when_they_fit() {
    // The stub keeps of its segments only empty ones where each group ends
    // (see `src/stub/segments.rs`); every boundary, both ways.
    let cases: &[(&str, bool, Vec<u8>)] = &[
        (
            "elements at a computed offset, fitting",
            true,
            linked(4, "(elem (global.get 0) func $f $f $g)"),
        ),
        (
            "elements at a computed offset, ending at the table's end",
            true,
            linked(7, "(elem (global.get 0) func $f $f $g)"),
        ),
        (
            "elements at a computed offset, one past the end",
            false,
            linked(8, "(elem (global.get 0) func $f $f $g)"),
        ),
        (
            "the longest of two at one computed offset doesn't fit",
            false,
            linked(
                4,
                "(elem (global.get 0) func $f $f $f $f $f $f $f) (elem (global.get 0) func $f)",
            ),
        ),
        (
            "an empty segment at a computed offset past the end",
            false,
            linked(11, "(elem (global.get 0) func)"),
        ),
        (
            "data at a computed offset, ending at the memory's end",
            true,
            linked(65533, r#"(data (global.get 0) "abc")"#),
        ),
        (
            "data at a computed offset, one past the end",
            false,
            linked(65534, r#"(data (global.get 0) "abc")"#),
        ),
        (
            "the furthest constant segment comes first",
            false,
            linked(
                0,
                "(elem (i32.const 8) func $f $f $f) (elem (i32.const 0) func $f)",
            ),
        ),
        (
            "constant segments, the furthest ending at the end",
            true,
            linked(
                0,
                "(elem (i32.const 0) func $f) (elem (i32.const 7) func $f $g $f)",
            ),
        ),
        (
            "an empty element segment at the end",
            true,
            linked(0, "(elem (i32.const 10) func)"),
        ),
        (
            "an empty element segment past the end",
            false,
            linked(0, "(elem (i32.const 11) func)"),
        ),
        (
            "expressions into the table, one past the end",
            false,
            linked(
                0,
                "(elem (table 0) (i32.const 9) funcref (ref.null func) (ref.func $f))",
            ),
        ),
        (
            "an empty data segment past the end",
            false,
            linked(0, r#"(data (i32.const 65537) "")"#),
        ),
        (
            "an empty data segment at the last address",
            false,
            linked(0, r#"(data (i32.const -1) "")"#),
        ),
        (
            "data past the address space",
            false,
            linked(0, r#"(data (i32.const -1) "ab")"#),
        ),
        (
            "passive and declared segments, unread",
            true,
            linked(
                0,
                r#"(data "passive") (elem func $f $g) (elem declare func $f)
                   (data (i32.const 65535) "z")"#,
            ),
        ),
    ];
    for (what, fits, bytes) in cases {
        let quick = confirm(bytes, false);
        let full = confirm(bytes, true);
        assert_eq!(quick.path, Path::Stub, "{what}");
        assert_eq!(full.instantiated, *fits, "{what}: {:?}", full.message);
        assert_eq!(
            (quick.instantiated, quick.failure),
            (full.instantiated, full.failure),
            "{what}: stub {:?} / full {:?}",
            quick.message,
            full.message
        );
    }
}

#[test]
fn memory64_segments_fit_exactly_when_they_fit() {
    for (fits, offset) in [(true, 65534), (false, 65535)] {
        let bytes = wat::parse_str(format!(
            r#"(module (memory i64 1) (data (i64.const {offset}) "ab")
                 (func (export "_start")))"#
        ))
        .unwrap();
        let quick = confirm(&bytes, false);
        let full = confirm(&bytes, true);
        assert_eq!(full.instantiated, fits, "{offset}: {:?}", full.message);
        assert_eq!(
            (quick.instantiated, quick.failure),
            (full.instantiated, full.failure),
            "{offset}: {:?} / {:?}",
            quick.message,
            full.message
        );
    }
}
