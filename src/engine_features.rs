//! Engine features: what a binary needs of the engine that runs it, beyond
//! its imports.
//!
//! A component can import only WASI 0.2 and still fail to load on a host:
//! its core module may use the component-model async built-ins, its types a
//! `map<K, V>`, its code GC structs or a shared memory. Runtimes gate each of
//! these behind a switch (wasmtime's `Config::wasm_*` methods and `-W NAME`
//! options), and a runtime with the switch off refuses the binary at
//! compile time, before any import is looked at.
//!
//! [`scan`] reads them off a binary's sections in one pass, without walking
//! function bodies: types, imports, memories, tables, globals, tags,
//! constant expressions, function locals, canonical functions and options,
//! and component types and names. What only an instruction inside a body
//! shows (a `return_call` without any other tail-call sign, a relaxed SIMD
//! instruction, an atomic access to a memory that isn't shared, a
//! wide-arithmetic instruction) is not read here; the embedded engine's
//! confirmation compiles every body and reports it (`compile-failed`).
//!
//! Names are wasmtime's `-W` option names, which follow the WebAssembly
//! proposals (`tail-call`, `gc`) and the component model's gated features
//! (`component-model-async`, `component-model-map`).
//! In an index entry's `os.features` a feature is spelled
//! `wasm:feature/NAME` ([`EngineFeature::os_feature`]), so hosts that
//! judge entries by `os.features` alone route by it (docs/FORMAT.md).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;
use wasmparser::{
    AbstractHeapType, CanonicalFunction, CanonicalOption, ComponentDefinedType,
    ComponentExternName, ComponentType, ComponentValType, CompositeInnerType, HeapType,
    InstanceTypeDeclaration, MemoryType, Operator, Parser, Payload, PrimitiveValType, RecGroup,
    RefType, TableType, TypeRef, ValType, WasmFeatures,
};

/// An engine feature a binary can need: a WebAssembly proposal beyond
/// WebAssembly 2.0, or a gated component-model feature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum EngineFeature {
    /// Component-model async: async lift/lower, `stream`, `future`, async
    /// function types and the async built-ins (`task.return`,
    /// `waitable-set.*`, `subtask.*`, `stream.*`, `future.*`, ...).
    ComponentModelAsync,
    /// The further async built-ins (async `subtask.cancel`, `stream.cancel-*`
    /// ... with the `async` option).
    ComponentModelMoreAsyncBuiltins,
    /// Async lifts without a callback (stackful async).
    ComponentModelAsyncStackful,
    /// `error-context` values and built-ins.
    ComponentModelErrorContext,
    /// The `map<K, V>` type (WASI 0.3.1 and later require hosts to support it).
    ComponentModelMap,
    /// `(implements "...")` import and export names (WASI 0.3.1 and later).
    ComponentModelImplements,
    /// Fixed-length lists, `list<T, N>`.
    ComponentModelFixedLengthLists,
    /// The component model's threading built-ins (`thread.*`).
    ComponentModelThreading,
    /// The GC canonical ABI (the `gc` and `core-type` canonical options).
    ComponentModelGc,
    /// 128-bit SIMD (`v128`).
    Simd,
    /// Tail calls.
    TailCall,
    /// Exception handling (tags, `exnref`).
    Exceptions,
    /// Garbage-collected structs, arrays and the reference types that go with them.
    Gc,
    /// Typed function references (concrete or non-nullable references).
    FunctionReferences,
    /// Threads: shared memories.
    Threads,
    /// 64-bit memories and tables.
    Memory64,
    /// More than one memory in a module.
    MultiMemory,
    /// Extended constant expressions (`i32.add` and friends in a global's
    /// initializer or a segment's offset).
    ExtendedConst,
    /// Custom page sizes.
    CustomPageSizes,
    /// Stack switching (continuation types).
    StackSwitching,
    /// Relaxed SIMD. Only a body shows it; listed for probes and profiles.
    RelaxedSimd,
    /// Wide arithmetic. Only a body shows it; listed for probes and profiles.
    WideArithmetic,
}

impl EngineFeature {
    /// Every feature, in the order they are shown.
    pub const ALL: [EngineFeature; 22] = [
        EngineFeature::ComponentModelAsync,
        EngineFeature::ComponentModelMoreAsyncBuiltins,
        EngineFeature::ComponentModelAsyncStackful,
        EngineFeature::ComponentModelErrorContext,
        EngineFeature::ComponentModelMap,
        EngineFeature::ComponentModelImplements,
        EngineFeature::ComponentModelFixedLengthLists,
        EngineFeature::ComponentModelThreading,
        EngineFeature::ComponentModelGc,
        EngineFeature::Simd,
        EngineFeature::TailCall,
        EngineFeature::Exceptions,
        EngineFeature::Gc,
        EngineFeature::FunctionReferences,
        EngineFeature::Threads,
        EngineFeature::Memory64,
        EngineFeature::MultiMemory,
        EngineFeature::ExtendedConst,
        EngineFeature::CustomPageSizes,
        EngineFeature::StackSwitching,
        EngineFeature::RelaxedSimd,
        EngineFeature::WideArithmetic,
    ];

    /// The feature's name: wasmtime's `-W` option (`component-model-map`).
    pub fn name(self) -> &'static str {
        match self {
            EngineFeature::ComponentModelAsync => "component-model-async",
            EngineFeature::ComponentModelMoreAsyncBuiltins => "component-model-more-async-builtins",
            EngineFeature::ComponentModelAsyncStackful => "component-model-async-stackful",
            EngineFeature::ComponentModelErrorContext => "component-model-error-context",
            EngineFeature::ComponentModelMap => "component-model-map",
            EngineFeature::ComponentModelImplements => "component-model-implements",
            EngineFeature::ComponentModelFixedLengthLists => "component-model-fixed-length-lists",
            EngineFeature::ComponentModelThreading => "component-model-threading",
            EngineFeature::ComponentModelGc => "component-model-gc",
            EngineFeature::Simd => "simd",
            EngineFeature::TailCall => "tail-call",
            EngineFeature::Exceptions => "exceptions",
            EngineFeature::Gc => "gc",
            EngineFeature::FunctionReferences => "function-references",
            EngineFeature::Threads => "threads",
            EngineFeature::Memory64 => "memory64",
            EngineFeature::MultiMemory => "multi-memory",
            EngineFeature::ExtendedConst => "extended-const",
            EngineFeature::CustomPageSizes => "custom-page-sizes",
            EngineFeature::StackSwitching => "stack-switching",
            EngineFeature::RelaxedSimd => "relaxed-simd",
            EngineFeature::WideArithmetic => "wide-arithmetic",
        }
    }

    /// How the feature appears in an index entry's `os.features`:
    /// `wasm:feature/NAME`, a WIT-shaped name no WIT package uses, so that
    /// every tool that reads `os.features` as WIT names reads it too.
    pub fn os_feature(self) -> String {
        format!("{OS_FEATURE_PREFIX}{}", self.name())
    }

    /// The feature an `os.features` string names, if it is one.
    pub fn from_os_feature(s: &str) -> Option<EngineFeature> {
        s.strip_prefix(OS_FEATURE_PREFIX)?.parse().ok()
    }

    /// The wasmtime CLI option that turns the feature on (`-W NAME=y`;
    /// for threads `-W shared-memory=y`, which releases from 42 need before
    /// they create a shared memory).
    pub fn cli_flag(self) -> String {
        match self {
            EngineFeature::Threads => "-W shared-memory=y".into(),
            f => format!("-W {f}=y"),
        }
    }

    /// The wasmtime `Config` method that turns the feature on, for
    /// embedders (`Config::wasm_component_model_map(true)`).
    pub fn config_method(self) -> String {
        let method = match self {
            // wasmtime names shared memories apart from the proposal.
            EngineFeature::Threads => "wasm_threads(true).shared_memory".to_string(),
            EngineFeature::ComponentModelMoreAsyncBuiltins => {
                "wasm_component_model_more_async_builtins".to_string()
            }
            f => format!("wasm_{}", f.name().replace('-', "_")),
        };
        format!("Config::{method}(true)")
    }
}

/// The namespace and package under which engine features appear in `os.features`.
pub const OS_FEATURE_PREFIX: &str = "wasm:feature/";

impl fmt::Display for EngineFeature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EngineFeature {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EngineFeature::ALL
            .into_iter()
            .find(|f| f.name() == s)
            .ok_or_else(|| {
                format!(
                    "unknown engine feature `{s}` (known: {})",
                    EngineFeature::ALL.map(EngineFeature::name).join(", ")
                )
            })
    }
}

/// One engine feature a binary needs, and the first place that needs it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FeatureUse {
    /// The feature.
    pub feature: EngineFeature,
    /// Where it is first used, for people: `canon task.return`,
    /// `core module 1: shared memory import env.memory`.
    #[serde(rename = "at")]
    pub at: String,
}

/// The features the embedded wasmtime 48 enables: its `Config` as
/// `confirm` builds it (the Cranelift engine, which compiles what Winch
/// can't). wasmtime 48's defaults are the WebAssembly 3.0 set (SIMD,
/// relaxed SIMD, tail calls, exceptions, GC, function references, memory64,
/// multi-memory, extended constants) and component-model async, which
/// worldfit turns on. Off, as in wasmtime 48 and its CLI: shared memories
/// (threads validate, but `Config::shared_memory` is off, so no shared
/// memory can be created), `map`, `implements` and the other gated
/// component-model features. worldfit keeps them off so that the embedded
/// host answers as a default wasmtime 48 embedding does.
/// `tests/hosts.rs` proves the list by probing the embedded engine.
pub const EMBEDDED: &[EngineFeature] = &[
    EngineFeature::ComponentModelAsync,
    EngineFeature::Simd,
    EngineFeature::RelaxedSimd,
    EngineFeature::TailCall,
    EngineFeature::Exceptions,
    EngineFeature::Gc,
    EngineFeature::FunctionReferences,
    EngineFeature::Memory64,
    EngineFeature::MultiMemory,
    EngineFeature::ExtendedConst,
];

/// Collects the first use of each feature.
#[derive(Default)]
struct Uses(Vec<FeatureUse>);

impl Uses {
    fn add(&mut self, feature: EngineFeature, at: impl FnOnce() -> String) {
        if !self.0.iter().any(|u| u.feature == feature) {
            self.0.push(FeatureUse { feature, at: at() });
        }
    }
}

/// Where in the binary the scan is: the top level, or the n-th core module.
struct Place {
    /// `Some(n)` inside the n-th core module (0-based, in binary order).
    module: Option<usize>,
    /// Memories seen in the current core module (imported and defined).
    memories: u32,
}

impl Place {
    fn prefix(&self) -> String {
        match self.module {
            Some(n) => format!("core module {n}: "),
            None => String::new(),
        }
    }
}

/// Reads the engine features a component or core module needs from its
/// sections (see the module docs for what needs a body walk instead), and
/// checks on the way that every section and function body fits in the
/// input: `wit_component::decode` grows a buffer by each *declared* size
/// before checking it, so a 36-byte component claiming a 4 GiB body would
/// allocate 4 GiB (`fixtures/bad/huge-function-body.wasm`).
///
/// Returns the features sorted, each with its first use. Errors: whatever
/// wasmparser 0.263 (every feature on) can't read, with its message and
/// byte offset.
pub fn scan(bytes: &[u8]) -> anyhow::Result<Vec<FeatureUse>> {
    let mut parser = Parser::new(0);
    parser.set_features(WasmFeatures::all());
    let mut stack: Vec<(Parser, Place)> = Vec::new();
    let mut place = Place {
        module: None,
        memories: 0,
    };
    let mut modules = 0usize;
    let mut uses = Uses::default();
    let mut offset = 0;
    loop {
        let (consumed, payload) = match parser.parse(&bytes[offset..], true)? {
            wasmparser::Chunk::NeedMoreData(_) => {
                unreachable!("the whole input is given with eof = true")
            }
            wasmparser::Chunk::Parsed { consumed, payload } => (consumed, payload),
        };
        offset += consumed;
        match payload {
            // A top-level core module is module 0.
            Payload::Version { encoding, .. }
                if encoding == wasmparser::Encoding::Module && stack.is_empty() =>
            {
                place.module = Some(modules);
                modules += 1;
            }
            // Each body then comes as a `CodeSectionEntry`, its size checked
            // with the whole input at hand (eof).
            Payload::CodeSectionStart {
                size,
                unchecked_range: range,
                ..
            } if range.end > bytes.len() as u64 => {
                anyhow::bail!(
                    "code section of {size} bytes at offset {} runs past the end of the input ({} bytes)",
                    range.start,
                    bytes.len()
                );
            }
            Payload::ModuleSection { parser: nested, .. } => {
                let inner = Place {
                    module: Some(modules),
                    memories: 0,
                };
                modules += 1;
                stack.push((
                    std::mem::replace(&mut parser, nested),
                    std::mem::replace(&mut place, inner),
                ));
            }
            Payload::ComponentSection { parser: nested, .. } => {
                let inner = Place {
                    module: None,
                    memories: 0,
                };
                stack.push((
                    std::mem::replace(&mut parser, nested),
                    std::mem::replace(&mut place, inner),
                ));
            }
            Payload::End(_) => match stack.pop() {
                Some((outer, outer_place)) => {
                    parser = outer;
                    place = outer_place;
                }
                None => break,
            },
            // Core sections.
            Payload::TypeSection(reader) => {
                for group in reader {
                    rec_group(&group?, &place, &mut uses);
                }
            }
            Payload::ImportSection(reader) => {
                for group in reader {
                    for import in group? {
                        let (_, import) = import?;
                        let what = || format!("import {}.{}", import.module, import.name);
                        match import.ty {
                            TypeRef::Memory(m) => memory(&m, &mut place, &mut uses, what),
                            TypeRef::Table(t) => table(&t, &place, &mut uses, what),
                            TypeRef::Global(g) => val_type(g.content_type, &place, &mut uses, what),
                            TypeRef::Tag(_) => uses.add(EngineFeature::Exceptions, || {
                                format!("{}tag {}", place.prefix(), what())
                            }),
                            TypeRef::Func(_) | TypeRef::FuncExact(_) => {}
                        }
                    }
                }
            }
            Payload::MemorySection(reader) => {
                for (i, m) in reader.into_iter().enumerate() {
                    memory(&m?, &mut place, &mut uses, || format!("memory {i}"));
                }
            }
            Payload::TableSection(reader) => {
                for (i, t) in reader.into_iter().enumerate() {
                    let t = t?;
                    table(&t.ty, &place, &mut uses, || format!("table {i}"));
                    if let wasmparser::TableInit::Expr(e) = t.init {
                        const_expr(&e, &place, &mut uses, || format!("table {i}"))?;
                    }
                }
            }
            Payload::TagSection(reader) if reader.count() > 0 => {
                uses.add(EngineFeature::Exceptions, || {
                    format!("{}tag section", place.prefix())
                });
            }
            Payload::GlobalSection(reader) => {
                for (i, g) in reader.into_iter().enumerate() {
                    let g = g?;
                    let what = || format!("global {i}");
                    val_type(g.ty.content_type, &place, &mut uses, what);
                    const_expr(&g.init_expr, &place, &mut uses, what)?;
                }
            }
            Payload::DataSection(reader) => {
                for (i, d) in reader.into_iter().enumerate() {
                    if let wasmparser::DataKind::Active { offset_expr, .. } = d?.kind {
                        const_expr(&offset_expr, &place, &mut uses, || {
                            format!("data segment {i}")
                        })?;
                    }
                }
            }
            Payload::ElementSection(reader) => {
                for (i, e) in reader.into_iter().enumerate() {
                    let e = e?;
                    let what = || format!("element segment {i}");
                    if let wasmparser::ElementKind::Active { offset_expr, .. } = &e.kind {
                        const_expr(offset_expr, &place, &mut uses, what)?;
                    }
                    if let wasmparser::ElementItems::Expressions(ty, items) = e.items {
                        ref_type(ty, &place, &mut uses, what);
                        for item in items {
                            const_expr(&item?, &place, &mut uses, what)?;
                        }
                    }
                }
            }
            // Locals are read, not instructions: a `v128` or typed-reference
            // local. Most locals are plain numbers, told from their one type
            // byte; only a body with another type gets wasmparser's reader.
            Payload::CodeSectionEntry(body) if !plain_locals(body.as_bytes()) => {
                for local in body.get_locals_reader()? {
                    let (_, ty) = local?;
                    val_type(ty, &place, &mut uses, || "a function's locals".into());
                }
            }
            // Component sections.
            Payload::ComponentTypeSection(reader) => {
                for ty in reader {
                    component_type(&ty?, &mut uses);
                }
            }
            Payload::ComponentCanonicalSection(reader) => {
                for f in reader {
                    canonical(&f?, &mut uses);
                }
            }
            Payload::ComponentImportSection(reader) => {
                for import in reader {
                    extern_name(&import?.name, "import", &mut uses);
                }
            }
            Payload::ComponentExportSection(reader) => {
                for export in reader {
                    extern_name(&export?.name, "export", &mut uses);
                }
            }
            _ => {}
        }
    }
    let mut out = uses.0;
    out.sort_by_key(|u| u.feature);
    Ok(out)
}

/// Whether a function body's locals are all `i32`, `i64`, `f32`, `f64`,
/// `funcref` or `externref` (types that need no feature), read straight
/// from the bytes: a LEB128 count of groups, each a LEB128 count and a
/// one-byte type. `false` for anything else, malformed included, which the
/// caller then reads with wasmparser (and its errors). Per function this
/// is a few instructions where building a locals reader costs hundreds,
/// and a 12 MB component has tens of thousands of functions.
fn plain_locals(body: &[u8]) -> bool {
    fn leb(bytes: &[u8], at: &mut usize) -> Option<u32> {
        let mut value = 0u32;
        for shift in (0..35).step_by(7) {
            let b = *bytes.get(*at)?;
            *at += 1;
            value |= u32::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }
    let mut at = 0;
    let Some(groups) = leb(body, &mut at) else {
        return false;
    };
    for _ in 0..groups {
        if leb(body, &mut at).is_none() {
            return false;
        }
        // i32, i64, f32, f64, funcref, externref.
        match body.get(at) {
            Some(0x7f | 0x7e | 0x7d | 0x7c | 0x70 | 0x6f) => at += 1,
            _ => return false,
        }
    }
    true
}

/// Whether a constant expression is one `i32.const`, `i64.const`,
/// `global.get` or `ref.func` and `end`, which need no feature, read straight
/// from the bytes. Data segments' offsets are almost all `i32.const N`, and
/// a large module has tens of thousands of them; anything else (malformed
/// included) goes to wasmparser's operator reader.
fn plain_const_expr(expr: &[u8]) -> bool {
    let [op, immediate @ .., 0x0b] = expr else {
        return false;
    };
    if !matches!(op, 0x41 | 0x42 | 0x23 | 0xd2) || immediate.is_empty() || immediate.len() > 10 {
        return false;
    }
    // One LEB128 number: every byte but the last has its high bit set.
    let (last, rest) = immediate.split_last().expect("not empty");
    last & 0x80 == 0 && rest.iter().all(|b| b & 0x80 != 0)
}

fn memory(m: &MemoryType, place: &mut Place, uses: &mut Uses, what: impl Fn() -> String) {
    place.memories += 1;
    let at = |kind: &str| format!("{}{kind} {}", place.prefix(), what());
    if m.shared {
        uses.add(EngineFeature::Threads, || at("shared memory"));
    }
    if m.memory64 {
        uses.add(EngineFeature::Memory64, || at("64-bit memory"));
    }
    if m.page_size_log2.is_some() {
        uses.add(EngineFeature::CustomPageSizes, || at("custom page size of"));
    }
    if place.memories == 2 {
        uses.add(EngineFeature::MultiMemory, || at("second memory,"));
    }
}

fn table(t: &TableType, place: &Place, uses: &mut Uses, what: impl Fn() -> String) {
    if t.table64 {
        uses.add(EngineFeature::Memory64, || {
            format!("{}64-bit table {}", place.prefix(), what())
        });
    }
    ref_type(t.element_type, place, uses, what);
}

fn val_type(ty: ValType, place: &Place, uses: &mut Uses, what: impl Fn() -> String) {
    match ty {
        ValType::V128 => uses.add(EngineFeature::Simd, || {
            format!("{}v128 in {}", place.prefix(), what())
        }),
        ValType::Ref(r) => ref_type(r, place, uses, what),
        _ => {}
    }
}

fn ref_type(r: RefType, place: &Place, uses: &mut Uses, what: impl Fn() -> String) {
    let at = || format!("{}`{r}` in {}", place.prefix(), what());
    match r.heap_type() {
        HeapType::Abstract { ty, .. } => {
            let feature = match ty {
                AbstractHeapType::Func | AbstractHeapType::Extern => None,
                AbstractHeapType::Exn | AbstractHeapType::NoExn => Some(EngineFeature::Exceptions),
                AbstractHeapType::Cont | AbstractHeapType::NoCont => {
                    Some(EngineFeature::StackSwitching)
                }
                _ => Some(EngineFeature::Gc),
            };
            if let Some(f) = feature {
                uses.add(f, at);
            }
            if !r.is_nullable() {
                uses.add(EngineFeature::FunctionReferences, at);
            }
        }
        HeapType::Concrete(_) | HeapType::Exact(_) => {
            uses.add(EngineFeature::FunctionReferences, at)
        }
    }
}

fn rec_group(group: &RecGroup, place: &Place, uses: &mut Uses) {
    if group.is_explicit_rec_group() {
        uses.add(EngineFeature::Gc, || {
            format!("{}a recursive type group", place.prefix())
        });
    }
    for sub in group.types() {
        if !sub.is_final || !sub.supertype_idxs.is_empty() {
            uses.add(EngineFeature::Gc, || format!("{}a subtype", place.prefix()));
        }
        match &sub.composite_type.inner {
            CompositeInnerType::Func(f) => {
                for ty in f.params().iter().chain(f.results()) {
                    val_type(*ty, place, uses, || "a function type".into());
                }
            }
            CompositeInnerType::Array(_) => uses.add(EngineFeature::Gc, || {
                format!("{}an array type", place.prefix())
            }),
            CompositeInnerType::Struct(_) => uses.add(EngineFeature::Gc, || {
                format!("{}a struct type", place.prefix())
            }),
            CompositeInnerType::Cont(_) => uses.add(EngineFeature::StackSwitching, || {
                format!("{}a continuation type", place.prefix())
            }),
        }
    }
}

/// A constant expression: anything beyond a single constant or
/// `global.get`/`ref.*` needs extended constants or GC.
fn const_expr(
    expr: &wasmparser::ConstExpr<'_>,
    place: &Place,
    uses: &mut Uses,
    what: impl Fn() -> String,
) -> anyhow::Result<()> {
    let mut raw = expr.get_binary_reader();
    if plain_const_expr(raw.read_bytes(raw.bytes_remaining())?) {
        return Ok(());
    }
    let mut ops = expr.get_operators_reader();
    while !ops.eof() {
        let feature = match ops.read()? {
            Operator::I32Add
            | Operator::I32Sub
            | Operator::I32Mul
            | Operator::I64Add
            | Operator::I64Sub
            | Operator::I64Mul => Some(EngineFeature::ExtendedConst),
            Operator::V128Const { .. } => Some(EngineFeature::Simd),
            Operator::StructNew { .. }
            | Operator::StructNewDefault { .. }
            | Operator::ArrayNew { .. }
            | Operator::ArrayNewDefault { .. }
            | Operator::ArrayNewFixed { .. }
            | Operator::RefI31
            | Operator::AnyConvertExtern
            | Operator::ExternConvertAny => Some(EngineFeature::Gc),
            _ => None,
        };
        if let Some(f) = feature {
            uses.add(f, || {
                format!("{}the initializer of {}", place.prefix(), what())
            });
        }
    }
    Ok(())
}

fn component_type(ty: &ComponentType<'_>, uses: &mut Uses) {
    match ty {
        ComponentType::Defined(d) => defined_type(d, uses),
        ComponentType::Func(f) => {
            if f.async_ {
                uses.add(EngineFeature::ComponentModelAsync, || {
                    "an async function type".into()
                });
            }
            for (_, ty) in f.params.iter() {
                value_type(ty, uses);
            }
            if let Some(ty) = &f.result {
                value_type(ty, uses);
            }
        }
        ComponentType::Component(decls) => {
            for d in decls.iter() {
                match d {
                    wasmparser::ComponentTypeDeclaration::Type(t) => component_type(t, uses),
                    wasmparser::ComponentTypeDeclaration::Export { name, .. } => {
                        extern_name(name, "export in a component type", uses)
                    }
                    wasmparser::ComponentTypeDeclaration::Import(i) => {
                        extern_name(&i.name, "import in a component type", uses)
                    }
                    _ => {}
                }
            }
        }
        ComponentType::Instance(decls) => {
            for d in decls.iter() {
                match d {
                    InstanceTypeDeclaration::Type(t) => component_type(t, uses),
                    InstanceTypeDeclaration::Export { name, .. } => {
                        extern_name(name, "export in an instance type", uses)
                    }
                    _ => {}
                }
            }
        }
        ComponentType::Resource { .. } => {}
    }
}

fn value_type(ty: &ComponentValType, uses: &mut Uses) {
    if let ComponentValType::Primitive(PrimitiveValType::ErrorContext) = ty {
        uses.add(EngineFeature::ComponentModelErrorContext, || {
            "an `error-context` value".into()
        });
    }
}

fn defined_type(d: &ComponentDefinedType<'_>, uses: &mut Uses) {
    match d {
        ComponentDefinedType::Primitive(PrimitiveValType::ErrorContext) => uses
            .add(EngineFeature::ComponentModelErrorContext, || {
                "an `error-context` type".into()
            }),
        ComponentDefinedType::Map(k, v) => {
            uses.add(EngineFeature::ComponentModelMap, || "a `map` type".into());
            value_type(k, uses);
            value_type(v, uses);
        }
        ComponentDefinedType::FixedLengthList(t, n) => {
            uses.add(EngineFeature::ComponentModelFixedLengthLists, || {
                format!("a fixed-length list type (length {n})")
            });
            value_type(t, uses);
        }
        ComponentDefinedType::Future(t) => {
            uses.add(EngineFeature::ComponentModelAsync, || {
                "a `future` type".into()
            });
            if let Some(t) = t {
                value_type(t, uses);
            }
        }
        ComponentDefinedType::Stream(t) => {
            uses.add(EngineFeature::ComponentModelAsync, || {
                "a `stream` type".into()
            });
            if let Some(t) = t {
                value_type(t, uses);
            }
        }
        ComponentDefinedType::Record(fields) => {
            fields.iter().for_each(|(_, t)| value_type(t, uses))
        }
        ComponentDefinedType::Variant(cases) => cases
            .iter()
            .filter_map(|c| c.ty.as_ref())
            .for_each(|t| value_type(t, uses)),
        ComponentDefinedType::List(t) | ComponentDefinedType::Option(t) => value_type(t, uses),
        ComponentDefinedType::Tuple(ts) => ts.iter().for_each(|t| value_type(t, uses)),
        ComponentDefinedType::Result { ok, err } => {
            ok.iter().chain(err).for_each(|t| value_type(t, uses))
        }
        _ => {}
    }
}

fn extern_name(name: &ComponentExternName<'_>, role: &str, uses: &mut Uses) {
    if let Some(implements) = name.implements {
        uses.add(EngineFeature::ComponentModelImplements, || {
            format!("{role} `{}` (implements `{implements}`)", name.name)
        });
    }
}

fn options(opts: &[CanonicalOption], what: &str, uses: &mut Uses) {
    let is_async = opts.iter().any(|o| matches!(o, CanonicalOption::Async));
    let has_callback = opts
        .iter()
        .any(|o| matches!(o, CanonicalOption::Callback(_)));
    if is_async {
        uses.add(EngineFeature::ComponentModelAsync, || {
            format!("async {what}")
        });
        if what.starts_with("canon lift") && !has_callback {
            uses.add(EngineFeature::ComponentModelAsyncStackful, || {
                format!("async {what} without a callback")
            });
        }
    }
    if opts
        .iter()
        .any(|o| matches!(o, CanonicalOption::Gc | CanonicalOption::CoreType(_)))
    {
        uses.add(EngineFeature::ComponentModelGc, || {
            format!("{what} with the gc option")
        });
    }
}

/// A `*.cancel` built-in: component-model async, and with the `async`
/// option the further async built-ins too.
fn cancel(
    async_: bool,
    name: &'static str,
    uses: &mut Uses,
) -> (Option<EngineFeature>, &'static str) {
    if async_ {
        uses.add(EngineFeature::ComponentModelMoreAsyncBuiltins, || {
            format!("canon {name} async")
        });
    }
    (Some(EngineFeature::ComponentModelAsync), name)
}

fn canonical(f: &CanonicalFunction, uses: &mut Uses) {
    use CanonicalFunction as C;
    use EngineFeature as F;
    let (feature, name): (Option<F>, &str) = match f {
        C::Lift { options: o, .. } => {
            options(o, "canon lift", uses);
            (None, "")
        }
        C::Lower { options: o, .. } => {
            options(o, "canon lower", uses);
            (None, "")
        }
        C::ResourceNew { .. } | C::ResourceDrop { .. } | C::ResourceRep { .. } => (None, ""),
        C::ThreadSpawnRef { .. } | C::ThreadSpawnIndirect { .. } => {
            (Some(F::Threads), "thread.spawn")
        }
        C::ThreadAvailableParallelism => (Some(F::Threads), "thread.available-parallelism"),
        C::BackpressureInc => (Some(F::ComponentModelAsync), "backpressure.inc"),
        C::BackpressureDec => (Some(F::ComponentModelAsync), "backpressure.dec"),
        C::TaskReturn { options: o, .. } => {
            options(o, "canon task.return", uses);
            (Some(F::ComponentModelAsync), "task.return")
        }
        C::TaskCancel => (Some(F::ComponentModelAsync), "task.cancel"),
        C::ContextGet { .. } => (Some(F::ComponentModelAsync), "context.get"),
        C::ContextSet { .. } => (Some(F::ComponentModelAsync), "context.set"),
        C::ThreadYield => (Some(F::ComponentModelAsync), "thread.yield"),
        C::SubtaskDrop => (Some(F::ComponentModelAsync), "subtask.drop"),
        C::SubtaskCancel { async_ } => cancel(*async_, "subtask.cancel", uses),
        C::StreamNew { .. } => (Some(F::ComponentModelAsync), "stream.new"),
        C::StreamRead { options: o, .. } => {
            options(o, "canon stream.read", uses);
            (Some(F::ComponentModelAsync), "stream.read")
        }
        C::StreamWrite { options: o, .. } => {
            options(o, "canon stream.write", uses);
            (Some(F::ComponentModelAsync), "stream.write")
        }
        C::StreamForward { .. } => (Some(F::ComponentModelAsync), "stream.forward"),
        C::StreamCancelRead { async_, .. } | C::StreamCancelWrite { async_, .. } => {
            cancel(*async_, "stream.cancel-*", uses)
        }
        C::StreamDropReadable { .. } | C::StreamDropWritable { .. } => {
            (Some(F::ComponentModelAsync), "stream.drop-*")
        }
        C::FutureNew { .. } => (Some(F::ComponentModelAsync), "future.new"),
        C::FutureRead { options: o, .. } => {
            options(o, "canon future.read", uses);
            (Some(F::ComponentModelAsync), "future.read")
        }
        C::FutureWrite { options: o, .. } => {
            options(o, "canon future.write", uses);
            (Some(F::ComponentModelAsync), "future.write")
        }
        C::FutureForward { .. } => (Some(F::ComponentModelAsync), "future.forward"),
        C::FutureCancelRead { async_, .. } | C::FutureCancelWrite { async_, .. } => {
            cancel(*async_, "future.cancel-*", uses)
        }
        C::FutureDropReadable { .. } | C::FutureDropWritable { .. } => {
            (Some(F::ComponentModelAsync), "future.drop-*")
        }
        C::ErrorContextNew { .. } | C::ErrorContextDebugMessage { .. } | C::ErrorContextDrop => {
            (Some(F::ComponentModelErrorContext), "error-context.*")
        }
        C::WaitableSetNew => (Some(F::ComponentModelAsync), "waitable-set.new"),
        C::WaitableSetWait { .. } => (Some(F::ComponentModelAsync), "waitable-set.wait"),
        C::WaitableSetPoll { .. } => (Some(F::ComponentModelAsync), "waitable-set.poll"),
        C::WaitableSetDrop => (Some(F::ComponentModelAsync), "waitable-set.drop"),
        C::WaitableJoin => (Some(F::ComponentModelAsync), "waitable.join"),
        C::ThreadIndex
        | C::ThreadNewIndirect { .. }
        | C::ThreadResumeLater
        | C::ThreadSuspend
        | C::ThreadSuspendThenResume
        | C::ThreadYieldThenResume
        | C::ThreadSuspendThenPromote
        | C::ThreadYieldThenPromote => (Some(F::ComponentModelThreading), "thread.*"),
    };
    if let Some(feature) = feature {
        uses.add(feature, || format!("canon {name}"));
    }
}

/// The features `uses` needs that `enabled` lacks, in order.
pub fn missing<'a>(uses: &'a [FeatureUse], enabled: &[EngineFeature]) -> Vec<&'a FeatureUse> {
    uses.iter()
        .filter(|u| !enabled.contains(&u.feature))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(wat: &str) -> Vec<EngineFeature> {
        let bytes = wat::parse_str(wat).unwrap();
        scan(&bytes)
            .unwrap()
            .into_iter()
            .map(|u| u.feature)
            .collect()
    }

    #[test]
    fn names_round_trip_and_match_os_features() {
        for f in EngineFeature::ALL {
            assert_eq!(f.name().parse::<EngineFeature>(), Ok(f));
            assert_eq!(EngineFeature::from_os_feature(&f.os_feature()), Some(f));
            assert_eq!(
                serde_json::to_value(f).unwrap(),
                serde_json::Value::String(f.name().into())
            );
        }
        assert!("no-such".parse::<EngineFeature>().is_err());
    }

    #[test]
    fn core_features_show_in_sections() {
        use EngineFeature as F;
        assert_eq!(features("(module (memory 1 1 shared))"), [F::Threads]);
        assert_eq!(features("(module (memory i64 1))"), [F::Memory64]);
        assert_eq!(features("(module (memory 1) (memory 1))"), [F::MultiMemory]);
        assert_eq!(features("(module (tag))"), [F::Exceptions]);
        assert_eq!(features("(module (type (struct)))"), [F::Gc]);
        assert_eq!(features("(module (func (param v128)))"), [F::Simd]);
        assert_eq!(features("(module (func (local v128)))"), [F::Simd]);
        assert_eq!(
            features("(module (func (local i32 i64) (local f32 funcref) (local v128)))"),
            [F::Simd]
        );
        assert_eq!(
            features("(module (type $f (func)) (func (local i32) (local (ref null $f))))"),
            [F::FunctionReferences]
        );
        assert_eq!(
            features("(module (func (local i32 i64 f32 f64 externref)))"),
            []
        );
        assert_eq!(
            features("(module (global i32 (i32.add (i32.const 1) (i32.const 2))))"),
            [F::ExtendedConst]
        );
        assert_eq!(
            features("(module (type $f (func)) (func (param (ref $f))))"),
            [F::FunctionReferences]
        );
        assert_eq!(features("(module (func (result i32) i32.const 0))"), []);
        assert_eq!(
            features(
                "(module (memory 1) (data (i32.const 70000) \"x\") (global i64 (i64.const -1)))"
            ),
            []
        );
        assert_eq!(
            features("(module (global $g i32 (i32.const 1)) (global i32 (global.get $g)))"),
            []
        );
    }

    #[test]
    fn component_features_show_in_types_and_canonicals() {
        use EngineFeature as F;
        assert_eq!(
            features("(component (type (map string string)))"),
            [F::ComponentModelMap]
        );
        assert_eq!(
            features("(component (type (stream u8)))"),
            [F::ComponentModelAsync]
        );
        assert_eq!(
            features("(component (core func (canon waitable-set.new)))"),
            [F::ComponentModelAsync]
        );
        assert_eq!(
            features("(component (core func (canon subtask.cancel async)))"),
            [F::ComponentModelAsync, F::ComponentModelMoreAsyncBuiltins]
        );
        assert_eq!(
            features("(component (core func (canon error-context.drop)))"),
            [F::ComponentModelErrorContext]
        );
        assert_eq!(
            features("(component (core module (memory 1 1 shared)))"),
            [F::Threads]
        );
    }
}
