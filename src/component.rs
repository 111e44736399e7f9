//! What a wasm binary needs of its host, decoded from its bytes.
//!
//! A component describes itself: its imports and exports carry full
//! component-model types, which `wit-component` turns into a WIT world. A
//! core module that imports `wasi_snapshot_preview1` is a WASI 0.1 ("wasip1")
//! program; its requirements are its core imports and its `_start` export.

use crate::engine_features::{self, FeatureUse};
use crate::wit_name::WitName;
use std::fmt;
use wit_parser::{Resolve, WorldId, WorldItem, WorldKey};

/// The module name under which WASI 0.1 functions are imported.
pub const WASIP1_MODULE: &str = "wasi_snapshot_preview1";

/// A decoded wasm binary: a component or a core module.
#[derive(Debug)]
// One per decoded binary, and matched by reference everywhere: boxing the
// component would add an allocation and change the public API for nothing.
#[allow(clippy::large_enum_variant)]
pub enum Wasm {
    /// A component, with the world its imports and exports form.
    Component(Component),
    /// A core module (run by wasip1 hosts).
    Module(CoreModule),
}

/// A component's world, decoded from its type information.
#[derive(Debug)]
pub struct Component {
    /// Every package and interface the component's types mention.
    pub resolve: Resolve,
    /// The world of the component's imports and exports.
    pub world: WorldId,
    /// The engine features it needs, each with its first use (sorted).
    pub engine_features: Vec<FeatureUse>,
}

/// A core wasm value type, as wasip1 signatures use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CoreValType {
    /// `i32`
    I32,
    /// `i64`
    I64,
    /// `f32`
    F32,
    /// `f64`
    F64,
    /// Any other value type (vectors, references).
    Other,
}

/// A core function signature.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreSig {
    /// Parameter types.
    pub params: Vec<CoreValType>,
    /// Result types.
    pub results: Vec<CoreValType>,
}

impl fmt::Display for CoreSig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |v: &[CoreValType]| {
            v.iter()
                .map(|t| format!("{t:?}").to_lowercase())
                .collect::<Vec<_>>()
                .join(" ")
        };
        write!(
            f,
            "(func (param {}) (result {}))",
            list(&self.params),
            list(&self.results)
        )
    }
}

/// One import of a core module.
#[derive(Debug, Clone)]
pub struct CoreImport {
    /// The module it is imported from.
    pub module: String,
    /// The field name.
    pub name: String,
    /// The signature, for function imports; `None` for memories, tables, globals, tags.
    pub func: Option<CoreSig>,
    /// What a non-function import is, in WebAssembly text words:
    /// `memory 1 16 shared`, `memory i64 1`, `table 1 funcref`,
    /// `global (mut i32)`, `tag`. `None` for functions.
    pub other: Option<String>,
}

/// A decoded core module: what it imports and which entry point it has.
#[derive(Debug, Clone)]
pub struct CoreModule {
    /// All imports, in order.
    pub imports: Vec<CoreImport>,
    /// Names of exported functions with their signatures.
    pub exports: Vec<(String, CoreSig)>,
    /// The engine features it needs, each with its first use (sorted).
    pub engine_features: Vec<FeatureUse>,
}

impl CoreModule {
    /// Whether this module imports anything from `wasi_snapshot_preview1`.
    pub fn imports_wasip1(&self) -> bool {
        self.imports.iter().any(|i| i.module == WASIP1_MODULE)
    }

    /// The `_start` export, if the module has one.
    pub fn start(&self) -> Option<&CoreSig> {
        self.exports
            .iter()
            .find(|(n, _)| n == "_start")
            .map(|(_, s)| s)
    }
}

/// Why bytes could not be read as a component or module.
#[derive(Debug)]
pub enum DecodeError {
    /// Zero bytes.
    Empty,
    /// No `\0asm` magic number.
    NotWasm,
    /// A binary-encoded WIT package: types only, nothing to run.
    WitPackage,
    /// A wasm binary that failed to decode or validate.
    Malformed(anyhow::Error),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::Empty => f.write_str("is empty, not a WebAssembly binary"),
            DecodeError::NotWasm => f.write_str("is not a WebAssembly binary (no `\\0asm` header)"),
            DecodeError::WitPackage => f.write_str("is a WIT package, not a component"),
            // Whatever wasmparser can't read: damage, or something newer
            // than its proposals (named in its message, with the offset).
            DecodeError::Malformed(e) => write!(
                f,
                "can't be decoded: {e} (worldfit reads binaries as wasm-tools {WASM_TOOLS} does, every proposal on: the file is damaged or uses something newer)"
            ),
        }
    }
}

impl std::error::Error for DecodeError {}

/// The wasm-tools crates release (`wasmparser`, `wit-component`) worldfit decodes with.
pub const WASM_TOOLS: &str = "0.263";

impl Wasm {
    /// The engine features the binary needs, each with its first use.
    pub fn engine_features(&self) -> &[FeatureUse] {
        match self {
            Wasm::Component(c) => &c.engine_features,
            Wasm::Module(m) => &m.engine_features,
        }
    }
}

/// Decodes a component or core module from its bytes.
pub fn decode(bytes: &[u8]) -> Result<Wasm, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if !bytes.starts_with(b"\0asm") {
        return Err(DecodeError::NotWasm);
    }
    let is_module = wasmparser::Parser::is_core_wasm(bytes);
    if !is_module && !wasmparser::Parser::is_component(bytes) {
        return Err(DecodeError::Malformed(anyhow::anyhow!(
            "unknown binary version or layer in the header"
        )));
    }
    // One pass over every section and body header: the engine features,
    // and the framing check `wit_component::decode` needs first (see
    // `engine_features::scan`).
    let engine_features = engine_features::scan(bytes).map_err(DecodeError::Malformed)?;
    if is_module {
        return decode_module(bytes)
            .map(|module| {
                Wasm::Module(CoreModule {
                    engine_features,
                    ..module
                })
            })
            .map_err(DecodeError::Malformed);
    }
    match wit_component::decode(bytes) {
        Ok(wit_component::DecodedWasm::Component(resolve, world)) => {
            Ok(Wasm::Component(Component {
                resolve,
                world,
                engine_features,
            }))
        }
        Ok(wit_component::DecodedWasm::WitPackage(..)) => Err(DecodeError::WitPackage),
        Err(e) => Err(DecodeError::Malformed(e)),
    }
}

/// A non-function import's type in WebAssembly text words.
fn describe_import(ty: &wasmparser::TypeRef) -> Option<String> {
    use wasmparser::TypeRef;
    Some(match ty {
        TypeRef::Func(_) | TypeRef::FuncExact(_) => return None,
        TypeRef::Memory(m) => {
            let mut out = String::from("memory");
            if m.memory64 {
                out.push_str(" i64");
            }
            out.push_str(&format!(" {}", m.initial));
            if let Some(max) = m.maximum {
                out.push_str(&format!(" {max}"));
            }
            if m.shared {
                out.push_str(" shared");
            }
            out
        }
        TypeRef::Table(t) => format!("table {} {}", t.initial, t.element_type),
        TypeRef::Global(g) if g.mutable => format!("global (mut {})", g.content_type),
        TypeRef::Global(g) => format!("global {}", g.content_type),
        TypeRef::Tag(_) => "tag".into(),
    })
}

fn val_type(t: wasmparser::ValType) -> CoreValType {
    match t {
        wasmparser::ValType::I32 => CoreValType::I32,
        wasmparser::ValType::I64 => CoreValType::I64,
        wasmparser::ValType::F32 => CoreValType::F32,
        wasmparser::ValType::F64 => CoreValType::F64,
        _ => CoreValType::Other,
    }
}

/// Validates a core module and collects its imports and function exports.
fn decode_module(bytes: &[u8]) -> anyhow::Result<CoreModule> {
    use wasmparser::{ExternalKind, Payload, TypeRef, ValidPayload, Validator, WasmFeatures};
    let mut validator = Validator::new_with_features(WasmFeatures::all());
    let mut sigs: Vec<CoreSig> = Vec::new();
    let mut func_types: Vec<u32> = Vec::new();
    let mut module = CoreModule {
        imports: Vec::new(),
        exports: Vec::new(),
        engine_features: Vec::new(),
    };
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        let payload = payload?;
        // Validate section headers and types, but skip function bodies: they
        // don't change what the module needs of its host, and wasmtime
        // validates them anyway when it compiles.
        if let ValidPayload::End(_) = validator.payload(&payload)? {
            break;
        }
        match payload {
            Payload::TypeSection(reader) => {
                for group in reader {
                    for sub in group?.into_types() {
                        match &sub.composite_type.inner {
                            wasmparser::CompositeInnerType::Func(f) => sigs.push(CoreSig {
                                params: f.params().iter().copied().map(val_type).collect(),
                                results: f.results().iter().copied().map(val_type).collect(),
                            }),
                            // Keep indices aligned for non-function types.
                            _ => sigs.push(CoreSig {
                                params: vec![CoreValType::Other],
                                results: vec![],
                            }),
                        }
                    }
                }
            }
            Payload::ImportSection(reader) => {
                for import in reader.into_imports() {
                    let import = import?;
                    let func = match import.ty {
                        TypeRef::Func(idx) | TypeRef::FuncExact(idx) => {
                            func_types.push(idx);
                            sigs.get(idx as usize).cloned()
                        }
                        _ => None,
                    };
                    module.imports.push(CoreImport {
                        module: import.module.to_string(),
                        name: import.name.to_string(),
                        func,
                        other: describe_import(&import.ty),
                    });
                }
            }
            Payload::FunctionSection(reader) => {
                for ty in reader {
                    func_types.push(ty?);
                }
            }
            Payload::ExportSection(reader) => {
                for export in reader {
                    let export = export?;
                    if export.kind == ExternalKind::Func {
                        let sig = func_types
                            .get(export.index as usize)
                            .and_then(|t| sigs.get(*t as usize))
                            .cloned()
                            .unwrap_or(CoreSig {
                                params: vec![CoreValType::Other],
                                results: vec![],
                            });
                        module.exports.push((export.name.to_string(), sig));
                    }
                }
            }
            _ => {}
        }
    }
    Ok(module)
}

/// A component's import or export, named the way the linker looks it up.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub enum ItemName {
    /// An interface with a package: `ns:pkg/iface@ver`.
    Interface(WitName),
    /// A plain name: a bare function, type or inline interface.
    Plain(String),
}

impl ItemName {
    /// Whether this names a WASI 0.3 interface (`wasi:*@0.3.*`), which needs
    /// a host with component-model async.
    pub fn is_wasi_p3(&self) -> bool {
        match self {
            ItemName::Interface(n) => {
                n.namespace == "wasi"
                    && n.version
                        .as_ref()
                        .is_some_and(|v| v.major == 0 && v.minor == 3)
            }
            ItemName::Plain(_) => false,
        }
    }
}

impl fmt::Display for ItemName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ItemName::Interface(n) => n.fmt(f),
            ItemName::Plain(n) => f.write_str(n),
        }
    }
}

/// The name a world key has in the component's (or host's) resolve.
pub fn item_name(resolve: &Resolve, key: &WorldKey) -> ItemName {
    let text = resolve.name_world_key(key);
    match key {
        WorldKey::Interface(_) => match text.parse::<WitName>() {
            Ok(n) => ItemName::Interface(n),
            Err(_) => ItemName::Plain(text),
        },
        WorldKey::Name(_) => ItemName::Plain(text),
    }
}

impl Component {
    /// The component's imports with their names.
    pub fn imports(&self) -> impl Iterator<Item = (ItemName, &WorldItem)> {
        self.resolve.worlds[self.world]
            .imports
            .iter()
            .map(|(k, v)| (item_name(&self.resolve, k), v))
    }

    /// The component's exports with their names.
    pub fn exports(&self) -> impl Iterator<Item = (ItemName, &WorldItem)> {
        self.resolve.worlds[self.world]
            .exports
            .iter()
            .map(|(k, v)| (item_name(&self.resolve, k), v))
    }

    /// Whether the component needs component-model async (WASI 0.3): an
    /// async function, a `future`/`stream`/`error-context` anywhere it imports
    /// or exports, or an interface on a 0.3 WASI track.
    pub fn uses_async(&self) -> bool {
        let world = &self.resolve.worlds[self.world];
        let names_03 = self
            .imports()
            .chain(self.exports())
            .any(|(n, _)| n.is_wasi_p3());
        let funcs = world
            .imports
            .values()
            .chain(world.exports.values())
            .any(|item| match item {
                WorldItem::Function(f) => f.kind.is_async(),
                WorldItem::Interface { id, .. } => self.resolve.interfaces[*id]
                    .functions
                    .values()
                    .any(|f| f.kind.is_async()),
                WorldItem::Type { .. } => false,
            });
        let types = self.resolve.types.iter().any(|(_, t)| {
            matches!(
                t.kind,
                wit_parser::TypeDefKind::Future(_) | wit_parser::TypeDefKind::Stream(_)
            )
        });
        names_03 || funcs || types
    }
}
