//! Probe binaries: tiny components and core modules, built in-process, each
//! asking a runtime one question ("do you link this?").
//!
//! A component probe imports every function of some WASI interfaces at one
//! version and exports one entry point whose body returns at once (`run`
//! returns `ok`, so a runtime that links it exits 0). Its WIT comes from the
//! embedded WASI packages with the version rewritten (`@0.2.12` → `@0.2.11`,
//! `@0.3.0` → `@0.3.0-rc-2026-03-15`), so a probe names exactly the version
//! it asks about; items are kept when their `@since` gate is at or below that
//! version, which is how WASI's own WIT says what each release contains. The
//! core module is written as text (functions that do nothing but return),
//! then wrapped by `wit-component` exactly as a toolchain would.

use super::embedded::builtin_wit;
use crate::engine_features::EngineFeature;
use crate::wit_name::WitName;
use anyhow::{Context, Result};
use semver::Version;
use std::fmt::Write as _;
use wit_parser::abi::WasmType;
use wit_parser::{
    Function, LiftLowerAbi, Mangling, ManglingAndAbi, Resolve, ResourceIntrinsic, Stability,
    TypeDefKind, WasmExport, WasmExportKind, WasmImport, WorldId, WorldItem, WorldKey,
};

/// The version of the embedded WASI 0.2 WIT (the newest 0.2 release).
pub const P2_WIT_VERSION: &str = "0.2.12";
/// The version of the embedded WASI 0.3 WIT.
pub const P3_WIT_VERSION: &str = "0.3.0";

/// The embedded WASI WIT with its 0.2 packages renamed to `p2` and its 0.3
/// packages renamed to `p3`, plus `extra` (a package of the caller's).
fn wasi_resolve(p2: &Version, p3: &Version, extra: &str) -> Result<(Resolve, WorldId)> {
    let mut resolve = Resolve::default();
    for (name, text) in builtin_wit() {
        if !name.starts_with("wasi-") {
            continue;
        }
        let mut text = text
            .replace(&format!("@{P2_WIT_VERSION}"), &format!("@{p2}"))
            .replace(&format!("@{P3_WIT_VERSION}"), &format!("@{p3}"));
        if !p3.pre.is_empty() && name.contains(P3_WIT_VERSION) {
            // wit-parser refuses a gate newer than its package, and a
            // release candidate sorts before its release.
            text = text.replace(
                &format!("version = {P3_WIT_VERSION})"),
                &format!("version = {p3})"),
            );
        }
        resolve
            .push_str(name, &text)
            .with_context(|| format!("embedded WIT `{name}` at {p2}/{p3}"))?;
    }
    let pkg = resolve.push_str("probe.wit", extra)?;
    let world = resolve.select_world(&[pkg], Some("probe"))?;
    Ok((resolve, world))
}

/// Whether an item with this stability is part of release `version` of its
/// package: stable since a version at or below it (a prerelease of 0.3.0
/// counts as 0.3.0's items). Unstable items are never part of a release.
pub fn in_release(stability: &Stability, version: &Version) -> bool {
    match stability {
        Stability::Stable { since, .. } => {
            let mut v = version.clone();
            v.pre = semver::Prerelease::EMPTY;
            *since <= v
        }
        Stability::Unknown => true,
        Stability::Unstable { .. } => false,
    }
}

/// The entry point a probe exports, and the interfaces it imports.
#[derive(Debug, Clone)]
pub struct ComponentProbe {
    /// The exported entry point, e.g. `wasi:cli/run@0.2.12`.
    pub export: WitName,
    /// The imported interfaces, each at the version to ask about.
    pub imports: Vec<WitName>,
    /// Also import the component-model async built-in `waitable-set.new`
    /// (a runtime without component-model async refuses to compile it).
    pub async_builtin: bool,
}

impl ComponentProbe {
    /// Builds the component. Errors only for names the embedded WASI WIT
    /// lacks (a bug in the caller's list).
    pub fn build(&self) -> Result<Vec<u8>> {
        // A linker matches a 0.2 import to any 0.2 release (items decide),
        // so 0.2 names carry the export's version and only the items follow
        // the release asked about; a 0.3 prerelease matches only itself, so
        // 0.3 names carry the version asked about.
        let version_of = |n: &WitName| n.version.clone().context("probe names are versioned");
        let is_p2 = |v: &Version| v.major == 0 && v.minor == 2;
        let export_version = version_of(&self.export)?;
        let p2: Version = if is_p2(&export_version) {
            export_version.clone()
        } else {
            P2_WIT_VERSION.parse()?
        };
        let mut p3: Version = if is_p2(&export_version) {
            P3_WIT_VERSION.parse()?
        } else {
            export_version.clone()
        };
        for n in &self.imports {
            let v = version_of(n)?;
            if !is_p2(&v) {
                p3 = v;
            }
        }
        let at = |n: &WitName| -> Result<WitName> {
            let v = version_of(n)?;
            Ok(n.with_version(Some(if is_p2(&v) { p2.clone() } else { p3.clone() })))
        };
        let mut wit = String::from("package worldfit:probe;\nworld probe {\n");
        for i in &self.imports {
            writeln!(wit, "  import {};", at(i)?)?;
        }
        writeln!(wit, "  export {};\n}}", at(&self.export)?)?;
        let (mut resolve, world) = wasi_resolve(&p2, &p3, &wit)?;

        // Keep only what each asked-about release contains.
        let asked: Vec<(WorldKey, Version)> = resolve.worlds[world]
            .imports
            .iter()
            .filter_map(|(key, item)| {
                let WorldItem::Interface { id, .. } = item else {
                    return None;
                };
                let name: WitName = resolve.id_of(*id)?.parse().ok()?;
                let asked = self.imports.iter().find(|i| {
                    i.unversioned() == name.unversioned()
                        && i.version.as_ref().map(is_p2) == name.version.as_ref().map(is_p2)
                })?;
                Some((key.clone(), asked.version.clone()?))
            })
            .collect();
        for (key, version) in &asked {
            if let WorldItem::Interface { id, .. } = &resolve.worlds[world].imports[key] {
                let id = *id;
                resolve.interfaces[id]
                    .functions
                    .retain(|_, f| in_release(&f.stability, version));
            }
        }

        let mut module = core_module(&resolve, world, &asked, self.async_builtin)?;
        wit_component::embed_component_metadata(
            &mut module,
            &resolve,
            world,
            wit_component::StringEncoding::UTF8,
            // Legacy (not canonical) import names: what wasmtime 48 and the
            // releases the catalog describes read.
            false,
        )?;
        wit_component::ComponentEncoder::default()
            .module(&module)?
            .validate(true)
            .encode()
    }
}

/// The probe's core module: imports every function of the asked-about
/// interfaces (synchronous ABI), exports the entry point.
fn core_module(
    resolve: &Resolve,
    world: WorldId,
    asked: &[(WorldKey, Version)],
    async_builtin: bool,
) -> Result<Vec<u8>> {
    let sync = ManglingAndAbi::Legacy(LiftLowerAbi::Sync);
    let mut wat = String::from("(module\n");
    for (key, _) in asked {
        let WorldItem::Interface { id, .. } = &resolve.worlds[world].imports[key] else {
            continue;
        };
        for func in resolve.interfaces[*id].functions.values() {
            let (module, name) = resolve.wasm_import_name(
                sync,
                WasmImport::Func {
                    interface: Some(key),
                    func,
                },
            );
            let sig = resolve.wasm_signature(sync.import_variant(), func);
            write!(wat, "(import {module:?} {name:?} (func")?;
            push_types(&mut wat, "param", &sig.params);
            push_types(&mut wat, "result", &sig.results);
            wat.push_str("))\n");
        }
        // Resources are imported through their drop, so an interface whose
        // resources have no functions (`wasi:sockets/network`) is asked
        // about too.
        for ty in resolve.interfaces[*id].types.values() {
            if !matches!(resolve.types[*ty].kind, TypeDefKind::Resource) {
                continue;
            }
            let (module, name) = resolve.wasm_import_name(
                sync,
                WasmImport::ResourceIntrinsic {
                    interface: Some(key),
                    resource: *ty,
                    intrinsic: ResourceIntrinsic::ImportedDrop,
                },
            );
            writeln!(wat, "(import {module:?} {name:?} (func (param i32)))")?;
        }
    }
    if async_builtin {
        wat.push_str("(import \"$root\" \"[waitable-set-new]\" (func (result i32)))\n");
    }
    let mut bodies = String::new();
    for (key, item) in &resolve.worlds[world].exports {
        let WorldItem::Interface { id, .. } = item else {
            continue;
        };
        for func in resolve.interfaces[*id].functions.values() {
            export_function(resolve, key, func, &mut wat, &mut bodies)?;
        }
    }
    wat.push_str(&bodies);
    wat.push_str("(memory (export \"memory\") 1)\n");
    wat.push_str(
        "(func (export \"cabi_realloc\") (param i32 i32 i32 i32) (result i32) i32.const 8)\n)\n",
    );
    Ok(wat::parse_str(&wat)?)
}

/// Whether a function returns `result` with no payloads (`run`'s type): its
/// `ok` is the flat value 0.
fn returns_empty_result(resolve: &Resolve, func: &Function) -> bool {
    let Some(wit_parser::Type::Id(id)) = func.result else {
        return false;
    };
    matches!(&resolve.types[id].kind, TypeDefKind::Result(r) if r.ok.is_none() && r.err.is_none())
}

/// One exported function: synchronous for a plain function, async with a
/// callback for an `async` one (as WASI 0.3 guests are built). A function
/// returning `result` returns `ok` at once; any other body traps if called
/// (only `run` is ever called by a probe's runtime).
fn export_function(
    resolve: &Resolve,
    key: &WorldKey,
    func: &Function,
    imports: &mut String,
    bodies: &mut String,
) -> Result<()> {
    let ok = returns_empty_result(resolve, func);
    if func.kind.is_async() {
        let abi = ManglingAndAbi::Legacy(LiftLowerAbi::AsyncCallback);
        let name = |kind| {
            resolve.wasm_export_name(
                abi,
                WasmExport::Func {
                    interface: Some(key),
                    func,
                    kind,
                },
            )
        };
        let sig = resolve.wasm_signature(abi.export_variant(), func);
        let body = if ok {
            let (module, field, ret) =
                func.task_return_import(resolve, Some(key), Mangling::Legacy);
            write!(imports, "(import {module:?} {field:?} (func $task-return")?;
            push_types(imports, "param", &ret.params);
            imports.push_str("))\n");
            // task.return(ok), then EXIT (callback code 0).
            "i32.const 0 call $task-return i32.const 0"
        } else {
            "unreachable"
        };
        write!(bodies, "(func (export {:?})", name(WasmExportKind::Normal))?;
        push_types(bodies, "param", &sig.params);
        push_types(bodies, "result", &sig.results);
        writeln!(bodies, " {body})")?;
        writeln!(
            bodies,
            "(func (export {:?}) (param i32 i32 i32) (result i32) i32.const 0)",
            name(WasmExportKind::Callback)
        )?;
    } else {
        let abi = ManglingAndAbi::Legacy(LiftLowerAbi::Sync);
        let name = resolve.wasm_export_name(
            abi,
            WasmExport::Func {
                interface: Some(key),
                func,
                kind: WasmExportKind::Normal,
            },
        );
        let sig = resolve.wasm_signature(abi.export_variant(), func);
        let body = match sig.results.as_slice() {
            [] => "",
            [WasmType::I32] if ok => "i32.const 0",
            _ => "unreachable",
        };
        write!(bodies, "(func (export {name:?})")?;
        push_types(bodies, "param", &sig.params);
        push_types(bodies, "result", &sig.results);
        writeln!(bodies, " {body})")?;
    }
    Ok(())
}

fn push_types(wat: &mut String, what: &str, types: &[WasmType]) {
    if types.is_empty() {
        return;
    }
    write!(wat, " ({what}").unwrap();
    for t in types {
        wat.push_str(match t {
            WasmType::I32 | WasmType::Pointer | WasmType::Length => " i32",
            WasmType::I64 | WasmType::PointerOrI64 => " i64",
            WasmType::F32 => " f32",
            WasmType::F64 => " f64",
        });
    }
    wat.push(')');
}

/// The interfaces of the embedded WASI WIT on one track (`0.2` or `0.3`),
/// unversioned (`wasi:cli/environment`), each with the releases to ask
/// about: the WIT's own version, then each older `@since` gate at which its
/// items change, newest first.
///
/// Left out: entry-point interfaces (`wasi:cli/run`, the HTTP handlers),
/// which hosts drive rather than provide, and interfaces of plain types only
/// (`wasi:clocks/types`), which a linker can't be asked about: an import of
/// them holds no function or resource, and links anywhere. A profile host
/// provides them wherever it provides their package ([`type_only_interfaces`]).
pub fn wasi_interfaces(p3: bool) -> Vec<(String, Vec<Version>)> {
    let track = if p3 { P3_WIT_VERSION } else { P2_WIT_VERSION };
    let (resolve, _) = super::embedded::parsed_builtin();
    let mut out = Vec::new();
    for (id, iface) in resolve.interfaces.iter() {
        let Some(name) = wasi_name(resolve, id, track) else {
            continue;
        };
        if is_entry_point(&name) || is_type_only(resolve, iface) {
            continue;
        }
        let mut gates: Vec<Version> = iface
            .functions
            .values()
            .filter_map(|f| match &f.stability {
                Stability::Stable { since, .. } => Some(since.clone()),
                _ => None,
            })
            .chain(name.version.clone())
            .collect();
        gates.sort();
        gates.dedup();
        gates.reverse();
        out.push((name.unversioned(), gates));
    }
    out.sort();
    out
}

/// The WASI interfaces of plain types only on one track, unversioned.
/// Computed once per process: every profile host asks.
pub fn type_only_interfaces(p3: bool) -> &'static [String] {
    static LISTS: std::sync::OnceLock<[Vec<String>; 2]> = std::sync::OnceLock::new();
    let lists = LISTS.get_or_init(|| {
        let (resolve, _) = super::embedded::parsed_builtin();
        [P2_WIT_VERSION, P3_WIT_VERSION].map(|track| {
            resolve
                .interfaces
                .iter()
                .filter(|(_, iface)| is_type_only(resolve, iface))
                .filter_map(|(id, _)| wasi_name(resolve, id, track))
                .map(|n| n.unversioned())
                .collect()
        })
    });
    &lists[usize::from(p3)]
}

/// An embedded interface's name, if it is a WASI interface of `track`.
fn wasi_name(resolve: &Resolve, id: wit_parser::InterfaceId, track: &str) -> Option<WitName> {
    let name: WitName = resolve.id_of(id)?.parse().ok()?;
    (name.namespace == "wasi"
        && name.version.as_ref().map(ToString::to_string).as_deref() == Some(track))
    .then_some(name)
}

fn is_type_only(resolve: &Resolve, iface: &wit_parser::Interface) -> bool {
    iface.functions.is_empty()
        && !iface
            .types
            .values()
            .any(|t| matches!(resolve.types[*t].kind, TypeDefKind::Resource))
}

/// Whether an interface is one a host drives (an entry point).
pub fn is_entry_point(name: &WitName) -> bool {
    matches!(
        (name.package.as_str(), name.item.as_deref()),
        ("cli", Some("run")) | ("http", Some("incoming-handler")) | ("http", Some("handler"))
    )
}

/// The core-module kinds a runtime may run, each probed by a module that
/// does nothing.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "kebab-case")]
pub enum CoreSupport {
    /// Modules importing `wasi_snapshot_preview1` (WASI 0.1), driven by `_start`.
    Preview1,
    /// Modules importing `wasi_unstable` (WASI preview 0, older toolchains).
    Preview0,
    /// Reactors: `_initialize` and no `_start`.
    Reactor,
}

impl CoreSupport {
    /// Every kind, in the order they are shown.
    pub const ALL: [CoreSupport; 3] = [
        CoreSupport::Preview1,
        CoreSupport::Preview0,
        CoreSupport::Reactor,
    ];

    /// The probe module's text.
    pub fn wat(self) -> &'static str {
        match self {
            CoreSupport::Preview1 => {
                r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")))"#
            }
            CoreSupport::Preview0 => {
                r#"(module
  (import "wasi_unstable" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")))"#
            }
            CoreSupport::Reactor => {
                r#"(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_initialize")))"#
            }
        }
    }
}

/// The probe module for a core feature: a `_start` module that uses it and
/// imports nothing; `None` for component-model features (see
/// [`component_feature_section`]). Each probe uses what its feature's
/// proposal adds and nothing newer.
pub fn core_feature_wat(feature: EngineFeature) -> Option<&'static str> {
    Some(match feature {
        EngineFeature::Simd => "(module (func (export \"_start\") v128.const i32x4 0 0 0 0 drop))",
        EngineFeature::RelaxedSimd => {
            "(module (func (export \"_start\") v128.const i32x4 0 0 0 0 v128.const i32x4 0 0 0 0 i8x16.relaxed_swizzle drop))"
        }
        EngineFeature::TailCall => "(module (func $f) (func (export \"_start\") return_call $f))",
        EngineFeature::Exceptions => {
            "(module (tag $t) (func (export \"_start\") (block $h (try_table (catch_all $h) (throw $t)))))"
        }
        EngineFeature::Gc => {
            "(module (type $s (struct (field i32))) (func (export \"_start\") i32.const 1 struct.new $s drop))"
        }
        EngineFeature::FunctionReferences => {
            "(module (type $ft (func)) (func $f (type $ft)) (elem declare func $f) (func (export \"_start\") ref.func $f call_ref $ft))"
        }
        EngineFeature::Threads => {
            "(module (memory 1 1 shared) (func (export \"_start\") i32.const 0 i32.atomic.load drop))"
        }
        EngineFeature::Memory64 => "(module (memory i64 1) (func (export \"_start\")))",
        EngineFeature::MultiMemory => {
            "(module (memory 1) (memory $b 1) (func (export \"_start\") i32.const 0 i32.load $b drop))"
        }
        EngineFeature::ExtendedConst => {
            "(module (global i32 (i32.add (i32.const 1) (i32.const 2))) (func (export \"_start\")))"
        }
        EngineFeature::CustomPageSizes => {
            "(module (memory 1 (pagesize 1)) (func (export \"_start\")))"
        }
        EngineFeature::WideArithmetic => {
            "(module (func (export \"_start\") i64.const 1 i64.const 2 i64.mul_wide_u drop drop))"
        }
        _ => return None,
    })
}

/// A section that, appended to a component (component sections come in
/// any order), makes it need a component-model feature and nothing else:
/// an unused type or built-in. `None` for the features probed otherwise
/// (async, through [`ComponentProbe::async_builtin`]) or not at all.
pub fn component_feature_section(feature: EngineFeature) -> Option<Vec<u8>> {
    use wasm_encoder::{
        CanonicalFunctionSection, ComponentSection, ComponentTypeSection, ComponentValType,
        PrimitiveValType,
    };
    let mut out = Vec::new();
    match feature {
        EngineFeature::ComponentModelMap => {
            let mut types = ComponentTypeSection::new();
            types.defined_type().map(
                ComponentValType::Primitive(PrimitiveValType::String),
                ComponentValType::Primitive(PrimitiveValType::String),
            );
            types.append_to_component(&mut out);
        }
        EngineFeature::ComponentModelFixedLengthLists => {
            let mut types = ComponentTypeSection::new();
            types
                .defined_type()
                .fixed_length_list(ComponentValType::Primitive(PrimitiveValType::U8), 4);
            types.append_to_component(&mut out);
        }
        EngineFeature::ComponentModelErrorContext => {
            let mut canon = CanonicalFunctionSection::new();
            canon.error_context_drop();
            canon.append_to_component(&mut out);
        }
        _ => return None,
    }
    Some(out)
}

/// Assembles a probe module's text.
pub fn core_probe(wat: &str) -> Vec<u8> {
    // The texts above are constants that a test assembles; failing here
    // is a build defect.
    wat::parse_str(wat).unwrap_or_else(|e| panic!("probe module does not assemble: {e}"))
}
