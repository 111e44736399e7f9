//! Structural comparison and rendering of WIT types that live in two
//! different [`Resolve`]s: the component's (decoded from its binary) and the
//! host's (parsed from WIT).
//!
//! The component model type-checks imports by *exact* structural equality
//! (wasmparser's `component_func_type`: same parameter names and types, same
//! result, no width subtyping), except for resources, which are nominal: a
//! resource is identified by the interface that defines it and its name. The
//! version is left out of that identity on purpose, because the linker has
//! already mapped the component's version onto the host's track.

use wit_parser::{Function, FunctionKind, Handle, Resolve, Type, TypeDefKind, TypeId, TypeOwner};

/// One side of a comparison: a resolve and the id space it owns.
#[derive(Clone, Copy)]
pub struct Side<'a>(pub &'a Resolve);

impl<'a> Side<'a> {
    /// Follows `type x = y` aliases to the definition that carries structure.
    fn peel(&self, ty: Type) -> Type {
        let mut ty = ty;
        // Aliases cannot form cycles in a valid resolve; the bound is belt and braces.
        for _ in 0..1000 {
            match ty {
                Type::Id(id) => match &self.0.types[id].kind {
                    TypeDefKind::Type(inner) => ty = *inner,
                    _ => return ty,
                },
                _ => return ty,
            }
        }
        ty
    }

    fn peel_id(&self, id: TypeId) -> TypeId {
        match self.peel(Type::Id(id)) {
            Type::Id(id) => id,
            _ => id,
        }
    }
    /// `ns:pkg/iface` (no version) + `.name` for a resource: its nominal identity.
    pub fn resource_identity(&self, id: TypeId) -> String {
        let id = self.peel_id(id);
        let def = &self.0.types[id];
        let owner = match def.owner {
            TypeOwner::Interface(iface) => {
                let i = &self.0.interfaces[iface];
                match (i.package, &i.name) {
                    (Some(pkg), Some(name)) => {
                        let p = &self.0.packages[pkg].name;
                        format!("{}:{}/{}", p.namespace, p.name, name)
                    }
                    _ => String::from("<anonymous interface>"),
                }
            }
            TypeOwner::World(w) => self.0.worlds[w].name.clone(),
            TypeOwner::None => String::new(),
        };
        format!("{owner}.{}", def.name.as_deref().unwrap_or("<anonymous>"))
    }
}

/// Compares types across two resolves.
pub struct Comparer<'a> {
    /// The side whose expectations are checked (usually the component).
    pub want: Side<'a>,
    /// The side that must meet them (usually the host).
    pub have: Side<'a>,
}

impl<'a> Comparer<'a> {
    /// Whether two functions have the same kind (sync/async, method, ...) and signature.
    pub fn same_function(&self, a: &Function, b: &Function) -> bool {
        let kind_ok = match (&a.kind, &b.kind) {
            (FunctionKind::Freestanding, FunctionKind::Freestanding)
            | (FunctionKind::AsyncFreestanding, FunctionKind::AsyncFreestanding) => true,
            (FunctionKind::Method(x), FunctionKind::Method(y))
            | (FunctionKind::AsyncMethod(x), FunctionKind::AsyncMethod(y))
            | (FunctionKind::Static(x), FunctionKind::Static(y))
            | (FunctionKind::AsyncStatic(x), FunctionKind::AsyncStatic(y))
            | (FunctionKind::Constructor(x), FunctionKind::Constructor(y)) => {
                self.want.resource_identity(*x) == self.have.resource_identity(*y)
            }
            _ => false,
        };
        kind_ok
            && a.params.len() == b.params.len()
            && a.params
                .iter()
                .zip(&b.params)
                .all(|(x, y)| x.name == y.name && self.same_type(x.ty, y.ty))
            && match (a.result, b.result) {
                (Some(x), Some(y)) => self.same_type(x, y),
                (None, None) => true,
                _ => false,
            }
    }

    /// Whether two value types are structurally equal (resources nominally).
    pub fn same_type(&self, a: Type, b: Type) -> bool {
        let (a, b) = (self.want.peel(a), self.have.peel(b));
        match (a, b) {
            (Type::Id(x), Type::Id(y)) => self.same_kind(x, y),
            (Type::Id(_), _) | (_, Type::Id(_)) => false,
            (x, y) => x == y,
        }
    }

    fn same_opt(&self, a: Option<Type>, b: Option<Type>) -> bool {
        match (a, b) {
            (Some(x), Some(y)) => self.same_type(x, y),
            (None, None) => true,
            _ => false,
        }
    }

    /// Whether two type definitions are equal; resources by identity.
    pub fn same_def(&self, a: TypeId, b: TypeId) -> bool {
        self.same_type(Type::Id(a), Type::Id(b))
    }

    /// Compares two definitions that are not aliases.
    fn same_kind(&self, a: TypeId, b: TypeId) -> bool {
        use TypeDefKind as K;
        match (&self.want.0.types[a].kind, &self.have.0.types[b].kind) {
            (K::Resource, K::Resource) => {
                self.want.resource_identity(a) == self.have.resource_identity(b)
            }
            (K::Handle(x), K::Handle(y)) => match (x, y) {
                (Handle::Own(x), Handle::Own(y)) | (Handle::Borrow(x), Handle::Borrow(y)) => {
                    self.want.resource_identity(*x) == self.have.resource_identity(*y)
                }
                _ => false,
            },
            (K::Record(x), K::Record(y)) => {
                x.fields.len() == y.fields.len()
                    && x.fields
                        .iter()
                        .zip(&y.fields)
                        .all(|(f, g)| f.name == g.name && self.same_type(f.ty, g.ty))
            }
            (K::Variant(x), K::Variant(y)) => {
                x.cases.len() == y.cases.len()
                    && x.cases
                        .iter()
                        .zip(&y.cases)
                        .all(|(c, d)| c.name == d.name && self.same_opt(c.ty, d.ty))
            }
            (K::Enum(x), K::Enum(y)) => {
                x.cases.len() == y.cases.len()
                    && x.cases.iter().zip(&y.cases).all(|(c, d)| c.name == d.name)
            }
            (K::Flags(x), K::Flags(y)) => {
                x.flags.len() == y.flags.len()
                    && x.flags.iter().zip(&y.flags).all(|(c, d)| c.name == d.name)
            }
            (K::Tuple(x), K::Tuple(y)) => {
                x.types.len() == y.types.len()
                    && x.types
                        .iter()
                        .zip(&y.types)
                        .all(|(s, t)| self.same_type(*s, *t))
            }
            (K::Option(x), K::Option(y)) | (K::List(x), K::List(y)) => self.same_type(*x, *y),
            (K::Map(k1, v1), K::Map(k2, v2)) => {
                self.same_type(*k1, *k2) && self.same_type(*v1, *v2)
            }
            (K::FixedLengthList(x, n), K::FixedLengthList(y, m)) => {
                n == m && self.same_type(*x, *y)
            }
            (K::Result(x), K::Result(y)) => {
                self.same_opt(x.ok, y.ok) && self.same_opt(x.err, y.err)
            }
            (K::Future(x), K::Future(y)) | (K::Stream(x), K::Stream(y)) => self.same_opt(*x, *y),
            _ => false,
        }
    }
}

/// Renders a type the way WIT spells it: named types by name, others inline.
pub fn render_type(resolve: &Resolve, ty: Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::U8 => "u8".into(),
        Type::U16 => "u16".into(),
        Type::U32 => "u32".into(),
        Type::U64 => "u64".into(),
        Type::S8 => "s8".into(),
        Type::S16 => "s16".into(),
        Type::S32 => "s32".into(),
        Type::S64 => "s64".into(),
        Type::F32 => "f32".into(),
        Type::F64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::ErrorContext => "error-context".into(),
        Type::Id(id) => {
            let def = &resolve.types[id];
            if let Some(name) = &def.name {
                return name.clone();
            }
            let r = |t: Type| render_type(resolve, t);
            let opt = |t: Option<Type>| t.map(r).unwrap_or_else(|| "_".into());
            match &def.kind {
                TypeDefKind::Option(t) => format!("option<{}>", r(*t)),
                TypeDefKind::List(t) => format!("list<{}>", r(*t)),
                TypeDefKind::FixedLengthList(t, n) => format!("list<{}, {n}>", r(*t)),
                TypeDefKind::Map(k, v) => format!("map<{}, {}>", r(*k), r(*v)),
                TypeDefKind::Tuple(t) => {
                    format!(
                        "tuple<{}>",
                        t.types.iter().map(|t| r(*t)).collect::<Vec<_>>().join(", ")
                    )
                }
                TypeDefKind::Result(res) => match (res.ok, res.err) {
                    (None, None) => "result".into(),
                    (ok, None) => format!("result<{}>", opt(ok)),
                    (ok, err) => format!("result<{}, {}>", opt(ok), opt(err)),
                },
                TypeDefKind::Future(t) => t
                    .map(|t| format!("future<{}>", r(t)))
                    .unwrap_or_else(|| "future".into()),
                TypeDefKind::Stream(t) => t
                    .map(|t| format!("stream<{}>", r(t)))
                    .unwrap_or_else(|| "stream".into()),
                TypeDefKind::Handle(Handle::Own(t)) => format!("own<{}>", r(Type::Id(*t))),
                TypeDefKind::Handle(Handle::Borrow(t)) => format!("borrow<{}>", r(Type::Id(*t))),
                TypeDefKind::Type(t) => r(*t),
                other => other.as_str().to_string(),
            }
        }
    }
}

/// Renders a function's signature: `async func(a: u32) -> string`.
pub fn render_function(resolve: &Resolve, f: &Function) -> String {
    let params = f
        .params
        .iter()
        .filter(|p| {
            !(p.name == "self"
                && matches!(
                    f.kind,
                    FunctionKind::Method(_) | FunctionKind::AsyncMethod(_)
                ))
        })
        .map(|p| format!("{}: {}", p.name, render_type(resolve, p.ty)))
        .collect::<Vec<_>>()
        .join(", ");
    let prefix = match f.kind {
        FunctionKind::Constructor(_) => "constructor",
        FunctionKind::Static(_) => "static func",
        FunctionKind::AsyncStatic(_) => "static async func",
        ref k if k.is_async() => "async func",
        _ => "func",
    };
    match f.result {
        // WIT spells constructors without their (implied) `own<T>` result.
        Some(_) if matches!(f.kind, FunctionKind::Constructor(_)) => format!("{prefix}({params})"),
        Some(t) => format!("{prefix}({params}) -> {}", render_type(resolve, t)),
        None => format!("{prefix}({params})"),
    }
}
