//! Stub binaries, for confirming without compiling code that instantiation
//! never runs.
//!
//! Instantiating a component (or core module) in wasmtime links its
//! imports, creates its memories, tables and globals, copies its data and
//! element segments, evaluates constant expressions and runs core `start`
//! functions; nothing else executes guest code (wasmtime 48 rejects
//! component-level `start`). So when no module has a `start` section
//! ([`runs_code_while_instantiating`]), a *stub* of the binary instantiates
//! exactly as the binary would: [`stub`] keeps every section that
//! instantiation reads byte for byte (types, imports, memories, tags, every
//! component-level section), re-encodes the few that name functions
//! (tables, globals, exports), keeps of its segments only what their bounds
//! checks read (`segments`), while each core module's defined functions
//! shrink to one `unreachable` function per function type, every function
//! index remapped to its type's stub. Compiling is per function, so a
//! module of 14,000 functions compiles as a few dozen.
//!
//! What the stub can't see is the code itself: the caller validates the
//! real binary in full ([`validate`]), so an invalid body is still a
//! compile failure. A compiler implementation limit hit by a valid body
//! (a function too large for Cranelift) goes unseen: such bodies are rare
//! and fail at the first real compile, not in a pre-flight check.
//!
//! The rewriting uses `wasm_encoder::reencode`, the wasm-tools crates'
//! re-encoder: custom sections (names, DWARF, branch hints, all keyed by
//! the old function indices) are dropped.

mod segments;

use anyhow::{Result, anyhow};
use segments::{IndexTypes, SizeBounds};
use std::collections::HashMap;
use std::convert::Infallible;
use wasm_encoder::reencode::{self, Reencode, ReencodeComponent, component_utils};
use wasm_encoder::{
    CodeSection, Component, ExportSection, Function, FunctionSection, GlobalSection, Module,
    ModuleSection, RawSection, TableSection,
};
use wasmparser::{Encoding, Parser, Payload, TypeRef, Validator, WasmFeatures};

type Error = reencode::Error<Infallible>;

/// The features the embedded wasmtime 48 validates with (Cranelift's set;
/// Winch hands what it can't compile to Cranelift): WebAssembly 3.0, GC
/// types, exceptions, threads, the component model and its async ABI, as
/// `wasmtime::Config::features` computes them for this build.
pub fn embedded_features() -> WasmFeatures {
    WasmFeatures::WASM3
        | WasmFeatures::GC_TYPES
        | WasmFeatures::EXCEPTIONS
        | WasmFeatures::THREADS
        | WasmFeatures::COMPONENT_MODEL
        | WasmFeatures::CM_ASYNC
}

/// Validates the whole binary, function bodies included, with the embedded
/// engine's features: what compiling it would check. The error is
/// wasmparser's message with its offset.
pub fn validate(bytes: &[u8]) -> Result<()> {
    Validator::new_with_features(embedded_features())
        .validate_all(bytes)
        .map(drop)
        .map_err(|e| anyhow!("{e}"))
}

/// Whether instantiating `bytes` may run guest code: a core `start` section
/// in any module, nested ones included, or a component `start`. A binary
/// that doesn't parse counts as running code (the full path reports it).
pub fn runs_code_while_instantiating(bytes: &[u8]) -> bool {
    for payload in Parser::new(0).parse_all(bytes) {
        match payload {
            Ok(Payload::StartSection { .. } | Payload::ComponentStartSection { .. }) | Err(_) => {
                return true;
            }
            Ok(_) => {}
        }
    }
    false
}

/// The stub of a component or core module (see the module documentation).
/// Fails only on bytes that don't parse; never panics.
pub fn stub(bytes: &[u8]) -> Result<Vec<u8>> {
    // Parses the whole structure first: malformed bytes are an error here,
    // never a panic in the re-encoder.
    let bounds = SizeBounds::of(bytes).map_err(|e| anyhow!("cannot stub: {e}"))?;
    if Parser::is_component(bytes) {
        let mut c = Component::new();
        StubComponent { bounds }
            .parse_component(&mut c, Parser::new(0), bytes)
            .map_err(|e| anyhow!("cannot stub the component: {e}"))?;
        Ok(c.finish())
    } else {
        Ok(stub_module(Parser::new(0), bytes, bounds)
            .map_err(|e| anyhow!("cannot stub the module: {e}"))?
            .finish())
    }
}

/// The function-index map of one core module: imported functions keep
/// their index; defined function `i` becomes the stub of its type.
struct StubModule {
    imported: u32,
    /// The index type of each memory and table, for segment offsets.
    index_types: IndexTypes,
    /// Defined function → its stub's number.
    stub_of: Vec<u32>,
    /// Stub number → type index, in order of first use.
    stub_types: Vec<u32>,
}

impl StubModule {
    /// Reads the imports and the function, table and memory sections,
    /// which precede every use of a function index and every segment.
    fn plan(parser: &Parser, data: &[u8]) -> Result<StubModule, Error> {
        let mut plan = StubModule {
            imported: 0,
            index_types: IndexTypes::default(),
            stub_of: Vec::new(),
            stub_types: Vec::new(),
        };
        let mut by_type: HashMap<u32, u32> = HashMap::new();
        for payload in parser.clone().parse_all(data) {
            match payload? {
                Payload::ImportSection(s) => {
                    for import in s.into_imports() {
                        match import?.ty {
                            TypeRef::Func(_) | TypeRef::FuncExact(_) => plan.imported += 1,
                            TypeRef::Memory(m) => plan.index_types.memory64.push(m.memory64),
                            TypeRef::Table(t) => plan.index_types.table64.push(t.table64),
                            _ => {}
                        }
                    }
                }
                Payload::FunctionSection(s) => {
                    for ty in s {
                        let ty = ty?;
                        let next = plan.stub_types.len() as u32;
                        let k = *by_type.entry(ty).or_insert(next);
                        if k == next {
                            plan.stub_types.push(ty);
                        }
                        plan.stub_of.push(k);
                    }
                }
                Payload::MemorySection(s) => {
                    for m in s {
                        plan.index_types.memory64.push(m?.memory64);
                    }
                }
                Payload::TableSection(s) => {
                    for t in s {
                        plan.index_types.table64.push(t?.ty.table64);
                    }
                }
                Payload::CodeSectionStart { .. } | Payload::End(_) => break,
                _ => {}
            }
        }
        Ok(plan)
    }
}

impl Reencode for StubModule {
    type Error = Infallible;

    fn function_index(&mut self, func: u32) -> Result<u32, Error> {
        Ok(match func.checked_sub(self.imported) {
            None => func,
            Some(defined) => match self.stub_of.get(defined as usize) {
                Some(k) => self.imported + k,
                // Out of range: left for validation to refuse.
                None => func,
            },
        })
    }
}

/// Re-encodes one core module as its stub. `parser` starts where the
/// module does (at an offset inside a component for a nested one).
fn stub_module(parser: Parser, data: &[u8], bounds: SizeBounds) -> Result<Module, Error> {
    let mut plan = StubModule::plan(&parser, data)?;
    let base = parser.offset();
    let mut m = Module::new();
    for payload in parser.parse_all(data) {
        let payload = payload?;
        let raw = payload.as_section();
        match payload {
            Payload::Version {
                encoding: Encoding::Module,
                ..
            } => {}
            Payload::Version { .. } => return Err(reencode::Error::UnexpectedNonCoreModuleSection),
            Payload::DataSection(s) => {
                m.section(&segments::data(&mut plan, s, bounds)?);
            }
            // No function indices in these: copied byte for byte.
            Payload::TypeSection(_)
            | Payload::ImportSection(_)
            | Payload::MemorySection(_)
            | Payload::TagSection(_) => {
                let (id, range) = raw.expect("a section");
                let (start, end) = ((range.start - base) as usize, (range.end - base) as usize);
                m.section(&RawSection {
                    id,
                    data: &data[start..end],
                });
            }
            Payload::FunctionSection(_) => {
                let mut f = FunctionSection::new();
                for &ty in &plan.stub_types {
                    f.function(ty);
                }
                m.section(&f);
            }
            Payload::CodeSectionStart { .. } => {
                let mut code = CodeSection::new();
                for _ in &plan.stub_types {
                    let mut body = Function::new([]);
                    body.instructions().unreachable().end();
                    code.function(&body);
                }
                m.section(&code);
            }
            Payload::CodeSectionEntry(_) => {}
            // These name functions (`ref.func`, exports, element items):
            // re-encoded through the map.
            Payload::TableSection(s) => {
                let mut t = TableSection::new();
                plan.parse_table_section(&mut t, s)?;
                m.section(&t);
            }
            Payload::GlobalSection(s) => {
                let mut g = GlobalSection::new();
                plan.parse_global_section(&mut g, s)?;
                m.section(&g);
            }
            Payload::ExportSection(s) => {
                let mut e = ExportSection::new();
                plan.parse_export_section(&mut e, s)?;
                m.section(&e);
            }
            Payload::ElementSection(s) => {
                m.section(&segments::elements(&mut plan, s, bounds)?);
            }
            // Only `memory.init` and `data.drop` need the count; stubs have
            // no such code, and fewer segments.
            Payload::DataCountSection { .. } => {}
            // A module with a start function never gets here (the caller
            // checks); dropped all the same, since a stub must not run.
            Payload::StartSection { .. } => {}
            Payload::CustomSection(_) => {}
            Payload::End(_) => {}
            _ => return Err(reencode::Error::UnexpectedNonCoreModuleSection),
        }
    }
    Ok(m)
}

/// The component-level re-encoder: every section copied byte for byte,
/// except nested core modules, which become their stubs.
struct StubComponent {
    bounds: SizeBounds,
}

impl Reencode for StubComponent {
    type Error = Infallible;
}

impl ReencodeComponent for StubComponent {
    fn parse_component_payload(
        &mut self,
        component: &mut Component,
        payload: Payload<'_>,
        whole: &[u8],
    ) -> Result<(), Error> {
        match payload {
            Payload::Version { .. }
            | Payload::End(_)
            | Payload::ModuleSection { .. }
            | Payload::ComponentSection { .. } => {
                component_utils::parse_component_payload(self, component, payload, whole)
            }
            Payload::CustomSection(_) => Ok(()),
            other => {
                if let Some((id, range)) = other.as_section() {
                    component.section(&RawSection {
                        id,
                        data: &whole[range.start as usize..range.end as usize],
                    });
                }
                Ok(())
            }
        }
    }

    fn parse_component_submodule(
        &mut self,
        component: &mut Component,
        parser: Parser,
        module: &[u8],
    ) -> Result<(), Error> {
        let m = stub_module(parser, module, self.bounds)?;
        component.section(&ModuleSection(&m));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count_functions(bytes: &[u8]) -> usize {
        Parser::new(0)
            .parse_all(bytes)
            .filter(|p| matches!(p, Ok(Payload::CodeSectionEntry(_))))
            .count()
    }

    #[test]
    fn functions_shrink_to_one_per_type_and_indices_follow() {
        let wat = r#"(module
            (import "env" "f" (func $imp (param i32)))
            (type $t (func (result i32)))
            (func $a (type $t) i32.const 1)
            (func $b (type $t) i32.const 2)
            (func $c (param i32) local.get 0 call $imp)
            (table 3 funcref)
            (elem (i32.const 0) func $a $b $c)
            (global funcref (ref.func $b))
            (memory 1)
            (data (i32.const 8) "hello")
            (export "a" (func $a))
            (export "c" (func $c)))"#;
        let bytes = wat::parse_str(wat).unwrap();
        let stubbed = stub(&bytes).unwrap();
        validate(&stubbed).unwrap();
        assert_eq!(count_functions(&bytes), 3);
        assert_eq!(count_functions(&stubbed), 2);
        let mut exports = Vec::new();
        let mut global = None;
        let mut keepers = Vec::new();
        let offset = |e: &wasmparser::ConstExpr<'_>| match e.get_operators_reader().read() {
            Ok(wasmparser::Operator::I32Const { value }) => value,
            other => panic!("{other:?}"),
        };
        for p in Parser::new(0).parse_all(&stubbed) {
            match p.unwrap() {
                Payload::ExportSection(s) => {
                    for e in s {
                        let e = e.unwrap();
                        exports.push((e.name.to_string(), e.index));
                    }
                }
                Payload::GlobalSection(s) => {
                    for g in s {
                        let op = g.unwrap().init_expr.get_operators_reader().read().unwrap();
                        if let wasmparser::Operator::RefFunc { function_index } = op {
                            global = Some(function_index);
                        }
                    }
                }
                // Three elements at 0 and "hello" at 8: empty segments where they end.
                Payload::ElementSection(s) => {
                    for e in s {
                        let e = e.unwrap();
                        let wasmparser::ElementKind::Active { offset_expr, .. } = e.kind else {
                            panic!("not active")
                        };
                        let wasmparser::ElementItems::Functions(f) = e.items else {
                            panic!("not functions")
                        };
                        keepers.push(("elem", offset(&offset_expr), f.count()));
                    }
                }
                Payload::DataSection(s) => {
                    for d in s {
                        let d = d.unwrap();
                        let wasmparser::DataKind::Active { offset_expr, .. } = d.kind else {
                            panic!("not active")
                        };
                        keepers.push(("data", offset(&offset_expr), d.data.len() as u32));
                    }
                }
                _ => {}
            }
        }
        // Import 0 stays; $a and $b share stub 1, $c (another type) is 2.
        assert_eq!(exports, [("a".to_string(), 1), ("c".to_string(), 2)]);
        assert_eq!(global, Some(1));
        assert_eq!(keepers, [("elem", 3, 0), ("data", 13, 0)]);
    }

    #[test]
    fn start_sections_mean_code_runs() {
        let with = wat::parse_str("(module (func $s) (start $s))").unwrap();
        let without = wat::parse_str("(module (func $s))").unwrap();
        assert!(runs_code_while_instantiating(&with));
        assert!(!runs_code_while_instantiating(&without));
        assert!(runs_code_while_instantiating(b"not wasm"));
    }
}
