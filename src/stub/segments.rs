//! Of a module's segments, what instantiating checks, and nothing more.
//!
//! Instantiating applies every active element segment, then every active
//! data segment, in order, and traps on the first that doesn't fit its table
//! or memory (the WebAssembly spec, Execution › Modules › Instantiation;
//! bulk memory made the checks per segment, in order). With no start
//! function, nothing reads what they wrote, so all that matters is whether
//! every active segment fits:
//!
//! - a segment of `n` units at offset `o` fits exactly when an *empty*
//!   segment at `o + n` does (an empty segment past the end traps too);
//! - segments at **constant offsets** into one memory (or table) all fit
//!   exactly when the one reaching furthest does: one empty segment where
//!   it ends decides the same;
//! - segments at one **computed offset** `E` (`global.get $__table_base`, as
//!   dynamically linked modules place theirs) all fit exactly when the
//!   longest does: empty segments at `E` and at `E + n`. The sum is
//!   computed modulo 2^32 (2^64) in a constant expression; it can't wrap
//!   when every memory and table of the binary is smaller than 2^32 - n
//!   ([`SizeBounds`]), and otherwise the segments are kept whole, as is a
//!   segment reaching past the index space (it traps either way).
//!
//! Passive and declared segments are dropped: only code reads them
//! (`memory.init`, `table.init`, `ref.func` declarations), and the stub has
//! none. A passive element segment whose expressions could do more than
//! name a function, a global or null (a GC allocation) is kept, since
//! wasmtime evaluates those while instantiating.
//!
//! Why it matters: wasmtime 48 compiles each module's segment
//! initialization into a startup function, one table store per element and
//! one copy per data segment. The 18 MB Python component's 1,806 data
//! segments and 5,000 table elements at `__table_base` made that one
//! function most of the stub's compile time.

use super::{Error, StubModule};
use std::collections::HashMap;
use wasm_encoder::reencode::Reencode;
use wasm_encoder::{ConstExpr, DataSection, ElementSection, Elements};
use wasmparser::{
    ComponentType, CoreType, DataKind, DataSectionReader, ElementItems, ElementKind,
    ElementSectionReader, InstanceTypeDeclaration, Operator, Parser, Payload, TypeRef,
};

/// The largest size any memory (in bytes) or table (in elements) of a
/// binary can have while it instantiates: the largest minimum among the
/// memories and tables its modules define, since nothing runs to grow
/// them. `None` where the binary can be given memories or tables from
/// outside: a core module importing one, or a component declaring a core
/// module or component type (which it could import).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct SizeBounds {
    memory: Option<u128>,
    table: Option<u128>,
}

impl SizeBounds {
    /// Surveys every module of `bytes`, nested ones included: one pass over
    /// the whole structure, so it is also what refuses bytes that don't
    /// parse before anything is re-encoded (wasm-encoder 0.263 trusts a
    /// nested section's size and slices past the end of a truncated one).
    pub(super) fn of(bytes: &[u8]) -> Result<SizeBounds, wasmparser::BinaryReaderError> {
        let mut memory = Some(0u128);
        let mut table = Some(0u128);
        let mut outside = false;
        let component = Parser::is_component(bytes);
        for payload in Parser::new(0).parse_all(bytes) {
            match payload? {
                // A core module's imports come from the host.
                Payload::ImportSection(s) if !component => {
                    for import in s.into_imports() {
                        match import?.ty {
                            TypeRef::Memory(_) => memory = None,
                            TypeRef::Table(_) => table = None,
                            _ => {}
                        }
                    }
                }
                Payload::MemorySection(s) => {
                    for m in s {
                        let m = m?;
                        let page = 1u128 << m.page_size_log2.unwrap_or(16).min(64);
                        memory = memory.map(|b| b.max(u128::from(m.initial) * page));
                    }
                }
                Payload::TableSection(s) => {
                    for t in s {
                        let initial = u128::from(t?.ty.initial);
                        table = table.map(|b| b.max(initial));
                    }
                }
                Payload::CoreTypeSection(s) => {
                    for t in s {
                        outside |= !matches!(t?, CoreType::Rec(_));
                    }
                }
                Payload::ComponentTypeSection(s) => {
                    for t in s {
                        outside |= reaches_outside(&t?);
                    }
                }
                _ => {}
            }
        }
        Ok(if outside {
            SizeBounds::default()
        } else {
            SizeBounds { memory, table }
        })
    }
}

/// Whether a component-level type is, or declares, a core module or
/// component type: what an import handing in outside memories needs.
fn reaches_outside(t: &ComponentType<'_>) -> bool {
    match t {
        ComponentType::Component(_) => true,
        ComponentType::Instance(decls) => decls.iter().any(|d| match d {
            InstanceTypeDeclaration::CoreType(c) => !matches!(c, CoreType::Rec(_)),
            InstanceTypeDeclaration::Type(t) => reaches_outside(t),
            _ => false,
        }),
        _ => false,
    }
}

/// The index type of each memory and table of one module, imported ones
/// first: whether an offset is an `i64`.
#[derive(Debug, Default)]
pub(super) struct IndexTypes {
    pub(super) memory64: Vec<bool>,
    pub(super) table64: Vec<bool>,
}

/// How far the active segments of one group reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Reach {
    /// At constant offsets: the furthest `offset + length`.
    End(u128),
    /// At one computed offset: the longest length.
    Length(u128),
}

/// A group's key: its target, and its offset if computed (the
/// expression's bytes); `None` for constant offsets.
type Key<'a> = (u32, Option<&'a [u8]>);

/// An active segment's group key and reach.
fn key_and_reach<'a>(
    target: u32,
    offset: &wasmparser::ConstExpr<'a>,
    length: usize,
) -> Option<(Key<'a>, Reach)> {
    let length = length as u128;
    let mut ops = offset.get_operators_reader();
    let first = ops.read().ok()?;
    let single = matches!(ops.read(), Ok(Operator::End)) && ops.eof();
    Some(match first {
        Operator::I32Const { value } if single => (
            (target, None),
            Reach::End(u128::from(value as u32) + length),
        ),
        Operator::I64Const { value } if single => (
            (target, None),
            Reach::End(u128::from(value as u64) + length),
        ),
        _ => {
            let mut reader = offset.get_binary_reader();
            let bytes = reader.read_bytes(reader.bytes_remaining()).ok()?;
            ((target, Some(bytes)), Reach::Length(length))
        }
    })
}

/// The offsets of the empty segments that stand for one group, failing
/// exactly when some segment of the group would; `None` when the group is
/// kept whole.
fn keepers(
    reach: Reach,
    computed: Option<&ConstExpr>,
    is64: bool,
    bound: Option<u128>,
) -> Option<Vec<ConstExpr>> {
    let limit: u128 = if is64 { 1 << 64 } else { 1 << 32 };
    match (reach, computed) {
        // Ending at 0 always fits.
        (Reach::End(0), _) => Some(Vec::new()),
        (Reach::End(end), _) if end < limit => Some(vec![if is64 {
            ConstExpr::i64_const(end as u64 as i64)
        } else {
            ConstExpr::i32_const(end as u32 as i32)
        }]),
        (Reach::End(_), _) => None,
        (Reach::Length(n), Some(at)) => {
            if bound?.checked_add(n)? >= limit {
                return None;
            }
            let mut kept = vec![at.clone()];
            if n > 0 {
                kept.push(if is64 {
                    at.clone().with_i64_const(n as u64 as i64).with_i64_add()
                } else {
                    at.clone().with_i32_const(n as u32 as i32).with_i32_add()
                });
            }
            Some(kept)
        }
        (Reach::Length(_), None) => None,
    }
}

/// One group: its reach, what its keepers are made of, and the verdict.
struct Group<T> {
    is64: bool,
    reach: Reach,
    /// The re-encoded offset expression, for a computed offset.
    computed: Option<ConstExpr>,
    /// What an empty segment of the group looks like (its element type).
    template: T,
    /// Its keepers, once decided; `None`: kept whole.
    keepers: Option<Vec<ConstExpr>>,
}

/// A section's active segments, grouped by target and offset: collected in
/// one pass, decided, then emitted in a second.
struct Groups<'a, T> {
    groups: Vec<Group<T>>,
    index: HashMap<Key<'a>, usize>,
}

impl<'a, T> Groups<'a, T> {
    fn new() -> Self {
        Groups {
            groups: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// Adds an active segment; one whose target's index type is unknown
    /// (left for validation to refuse) forms no group and stays whole.
    fn add(
        &mut self,
        plan: &mut StubModule,
        key: Key<'a>,
        reach: Reach,
        offset: &wasmparser::ConstExpr<'a>,
        is64: Option<bool>,
        template: impl FnOnce(&mut StubModule) -> Result<T, Error>,
    ) -> Result<(), Error> {
        let Some(is64) = is64 else { return Ok(()) };
        match self.index.get(&key) {
            Some(&i) => {
                let g = &mut self.groups[i];
                g.reach = g.reach.max(reach);
            }
            None => {
                let computed = match key.1 {
                    Some(_) => Some(plan.const_expr(offset.clone())?),
                    None => None,
                };
                self.index.insert(key, self.groups.len());
                self.groups.push(Group {
                    is64,
                    reach,
                    computed,
                    template: template(plan)?,
                    keepers: None,
                });
            }
        }
        Ok(())
    }

    fn decide(&mut self, bound: Option<u128>) {
        for g in &mut self.groups {
            g.keepers = keepers(g.reach, g.computed.as_ref(), g.is64, bound);
        }
    }

    /// Whether a segment of this key is stood for by keepers (else it is
    /// kept whole).
    fn stood_for(&self, key: Option<Key<'a>>) -> bool {
        key.and_then(|k| self.index.get(&k))
            .is_some_and(|&i| self.groups[i].keepers.is_some())
    }

    /// Each group's keepers, with their target and template.
    fn keepers(&self) -> impl Iterator<Item = (u32, &T, &ConstExpr)> {
        let mut targets: Vec<(&Key<'a>, usize)> = self.index.iter().map(|(k, &i)| (k, i)).collect();
        targets.sort_by_key(|&(_, i)| i);
        targets.into_iter().flat_map(move |(k, i)| {
            let g = &self.groups[i];
            g.keepers
                .iter()
                .flatten()
                .map(move |offset| (k.0, &g.template, offset))
        })
    }
}

/// A data segment's group key and reach; `None` if passive.
fn data_key<'a>(segment: &wasmparser::Data<'a>) -> Option<(Key<'a>, Reach)> {
    match &segment.kind {
        DataKind::Active {
            memory_index,
            offset_expr,
        } => key_and_reach(*memory_index, offset_expr, segment.data.len()),
        DataKind::Passive => None,
    }
}

/// The stub's data section (see the module documentation).
pub(super) fn data(
    plan: &mut StubModule,
    reader: DataSectionReader<'_>,
    bounds: SizeBounds,
) -> Result<DataSection, Error> {
    let mut groups = Groups::<()>::new();
    for segment in reader.clone() {
        let segment = segment?;
        if let (Some((k, reach)), DataKind::Active { offset_expr, .. }) =
            (data_key(&segment), &segment.kind)
        {
            let is64 = plan.index_types.memory64.get(k.0 as usize).copied();
            groups.add(plan, k, reach, offset_expr, is64, |_| Ok(()))?;
        }
    }
    groups.decide(bounds.memory);
    let mut section = DataSection::new();
    for segment in reader {
        let segment = segment?;
        if matches!(segment.kind, DataKind::Active { .. })
            && !groups.stood_for(data_key(&segment).map(|k| k.0))
        {
            plan.parse_data(&mut section, segment)?;
        }
    }
    for (memory, (), offset) in groups.keepers() {
        section.active(memory, offset, std::iter::empty::<u8>());
    }
    Ok(section)
}

/// Whether an element expression does no more than name a function, a
/// global or null: nothing that could fail or allocate while evaluated.
fn plain(expr: &wasmparser::ConstExpr<'_>) -> bool {
    let mut ops = expr.get_operators_reader();
    matches!(
        ops.read(),
        Ok(Operator::RefFunc { .. } | Operator::RefNull { .. } | Operator::GlobalGet { .. })
    ) && matches!(ops.read(), Ok(Operator::End))
        && ops.eof()
}

fn all_plain(items: &ElementItems<'_>) -> bool {
    match items {
        ElementItems::Functions(_) => true,
        ElementItems::Expressions(_, exprs) => exprs
            .clone()
            .into_iter()
            .all(|e| e.is_ok_and(|e| plain(&e))),
    }
}

/// An element segment's table, the way it was written (`None`: the
/// MVP encoding of table 0).
type TableForm = Option<u32>;

/// An empty element segment's shape: its table's encoding and its items'
/// type (`None`: function indices).
type ElementTemplate = (TableForm, Option<wasm_encoder::RefType>);

/// An element segment's group key and reach; `None` if not active, or if
/// evaluating its items could do more than name things.
fn element_key<'a>(element: &wasmparser::Element<'a>) -> Option<(Key<'a>, Reach)> {
    match &element.kind {
        ElementKind::Active {
            table_index,
            offset_expr,
        } if all_plain(&element.items) => {
            let length = match &element.items {
                ElementItems::Functions(f) => f.count(),
                ElementItems::Expressions(_, e) => e.count(),
            };
            key_and_reach(table_index.unwrap_or(0), offset_expr, length as usize)
        }
        _ => None,
    }
}

/// The stub's element section (see the module documentation).
pub(super) fn elements(
    plan: &mut StubModule,
    reader: ElementSectionReader<'_>,
    bounds: SizeBounds,
) -> Result<ElementSection, Error> {
    let mut groups = Groups::<ElementTemplate>::new();
    for element in reader.clone() {
        let element = element?;
        if let (
            Some((k, reach)),
            ElementKind::Active {
                table_index,
                offset_expr,
            },
        ) = (element_key(&element), &element.kind)
        {
            let is64 = plan.index_types.table64.get(k.0 as usize).copied();
            let items = element.items.clone();
            let form = *table_index;
            groups.add(plan, k, reach, offset_expr, is64, |plan| {
                Ok((
                    form,
                    match items {
                        ElementItems::Functions(_) => None,
                        ElementItems::Expressions(ty, _) => Some(plan.ref_type(ty)?),
                    },
                ))
            })?;
        }
    }
    groups.decide(bounds.table);
    let mut section = ElementSection::new();
    for element in reader {
        let element = element?;
        let keep = match element.kind {
            ElementKind::Active { .. } => !groups.stood_for(element_key(&element).map(|k| k.0)),
            // Evaluated while instantiating only when not plain.
            ElementKind::Passive => !all_plain(&element.items),
            ElementKind::Declared => false,
        };
        if keep {
            plan.parse_element(&mut section, element)?;
        }
    }
    for (table, &(form, ty), offset) in groups.keepers() {
        let empty = match ty {
            None => Elements::Functions(Vec::new().into()),
            Some(ty) => Elements::Expressions(ty, Vec::new().into()),
        };
        let _ = table;
        section.active(form, offset, empty);
    }
    Ok(section)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Each segment of the stub's (first) module: kind, offset operators,
    /// number of items.
    fn segments_of(wat: &str) -> Vec<(&'static str, String, u32)> {
        let stubbed = super::super::stub(&wat::parse_str(wat).unwrap()).unwrap();
        super::super::validate(&stubbed).unwrap();
        let offset = |e: &wasmparser::ConstExpr<'_>| {
            let mut ops = e.get_operators_reader();
            let mut out = Vec::new();
            while !ops.is_end_then_eof() {
                out.push(format!("{:?}", ops.read().unwrap()));
            }
            out.join(" ")
        };
        let mut out = Vec::new();
        for p in Parser::new(0).parse_all(&stubbed) {
            match p.unwrap() {
                Payload::ElementSection(s) => {
                    for e in s {
                        let e = e.unwrap();
                        let n = match &e.items {
                            ElementItems::Functions(f) => f.count(),
                            ElementItems::Expressions(_, x) => x.count(),
                        };
                        match &e.kind {
                            ElementKind::Active { offset_expr, .. } => {
                                out.push(("elem", offset(offset_expr), n))
                            }
                            _ => out.push(("elem", "passive".into(), n)),
                        }
                    }
                }
                Payload::DataSection(s) => {
                    for d in s {
                        let d = d.unwrap();
                        match &d.kind {
                            DataKind::Active { offset_expr, .. } => {
                                out.push(("data", offset(offset_expr), d.data.len() as u32))
                            }
                            DataKind::Passive => {
                                out.push(("data", "passive".into(), d.data.len() as u32))
                            }
                        }
                    }
                }
                Payload::End(_) if !out.is_empty() => break,
                _ => {}
            }
        }
        out
    }

    const LINKED: &str = r#"(component
        (core module $a
          (memory (export "memory") 2)
          (table (export "table") 10 funcref)
          (global (export "base") i32 (i32.const 4)))
        (core module $b
          (import "a" "memory" (memory 1))
          (import "a" "table" (table 1 funcref))
          (import "a" "base" (global i32))
          (func $f)
          (elem (global.get 0) func $f $f $f)
          (elem (global.get 0) func $f $f $f $f $f $f $f)
          (elem (i32.const 2) func $f $f)
          (elem (i32.const 0) func $f)
          (elem func $f)
          (elem declare func $f)
          (data (i32.const 100) "abc")
          (data (i32.const 7) "longer than the other")
          (data (global.get 0) "xy")
          (data "passive"))
        (core instance $ai (instantiate $a))
        (core instance $bi (instantiate $b (with "a" (instance $ai)))))"#;

    #[test]
    fn each_group_becomes_empty_segments_where_it_ends() {
        let g = "GlobalGet { global_index: 0 }";
        assert_eq!(
            segments_of(LINKED),
            [
                ("elem", g.to_string(), 0),
                ("elem", format!("{g} I32Const {{ value: 7 }} I32Add"), 0),
                ("elem", "I32Const { value: 4 }".into(), 0),
                ("data", "I32Const { value: 103 }".into(), 0),
                ("data", g.to_string(), 0),
                ("data", format!("{g} I32Const {{ value: 2 }} I32Add"), 0),
            ]
        );
    }

    #[test]
    fn sizes_are_bounded_by_what_the_binary_defines() {
        let bytes = wat::parse_str(LINKED).unwrap();
        assert_eq!(
            SizeBounds::of(&bytes).unwrap(),
            SizeBounds {
                memory: Some(2 << 16),
                table: Some(10)
            }
        );
        // A core module's imports come from outside.
        let module =
            wat::parse_str(r#"(module (import "env" "m" (memory 1)) (table 3 funcref))"#).unwrap();
        assert_eq!(
            SizeBounds::of(&module).unwrap(),
            SizeBounds {
                memory: None,
                table: Some(3)
            }
        );
        // A component that could import a core module could be handed
        // memories of any size.
        let importing = wat::parse_str(r#"(component (import "m" (core module)))"#).unwrap();
        assert_eq!(SizeBounds::of(&importing).unwrap(), SizeBounds::default());
    }

    #[test]
    fn computed_offsets_that_could_wrap_stay_whole() {
        // Unbounded: the module's memory and table come from the host.
        let wat = r#"(module
            (import "env" "m" (memory 1))
            (import "env" "t" (table 1 funcref))
            (import "env" "g" (global i32))
            (func $f)
            (elem (global.get 0) func $f $f)
            (data (global.get 0) "ab")
            (data (i32.const 0) "ab"))"#;
        let g = "GlobalGet { global_index: 0 }".to_string();
        assert_eq!(
            segments_of(wat),
            [
                ("elem", g.clone(), 2),
                ("data", g, 2),
                ("data", "I32Const { value: 2 }".into(), 0),
            ]
        );
        // Within 2^32 of the bound: kept whole too.
        let near = SizeBounds {
            memory: Some((1 << 32) - 2),
            table: Some(0),
        };
        let at = ConstExpr::global_get(0);
        assert!(keepers(Reach::Length(2), Some(&at), false, near.memory).is_none());
        assert!(keepers(Reach::Length(1), Some(&at), false, near.memory).is_some());
        // Ends past the index space stay whole; ends within it are kept.
        assert!(keepers(Reach::End(1 << 32), None, false, None).is_none());
        assert_eq!(
            keepers(Reach::End((1 << 32) - 1), None, false, None).map(|k| k.len()),
            Some(1)
        );
        assert_eq!(
            keepers(Reach::End(0), None, false, None).map(|k| k.len()),
            Some(0)
        );
        assert_eq!(
            keepers(Reach::End(1 << 32), None, true, None).map(|k| k.len()),
            Some(1)
        );
    }
}
