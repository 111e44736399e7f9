//! Fuzz entry points: one function per target of `fuzz/` (cargo-fuzz),
//! each taking untrusted bytes and driving worldfit's readers over them.
//! They never panic on their own account: a panic here is either a bug in
//! the code under test or a broken invariant asserted below (a decoded
//! component's platform that doesn't read back, a WIT name that doesn't
//! round-trip, a blob handed out that doesn't match its digest).
//!
//! `tests/fuzz_smoke.rs` runs every function over the committed seeds and
//! regressions on stable; `fuzz/README.md` says how to fuzz for real.
//! Not a stable API.

use crate::host::{Host, KnownWorld, standard_worlds};
use crate::oci::artifact::{Manifest, WasmConfig};
use crate::oci::layout::Index;
use crate::oci::limits::{ReadLimits, check_json_depth};
use crate::oci::source::{Source, collect, probe_media_type};
use crate::os_features::{Level, os_feature_level};
use crate::platform::{Platform, platform};
use crate::select::{SelectOptions, select};
use crate::wit_name::WitName;
use std::os::unix::ffi::OsStrExt;
use std::path::{Component, Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The built-in host, built once per process.
fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(Host::wasmtime)
}

/// The standard WASI worlds, read once per process.
fn known() -> &'static [KnownWorld] {
    static KNOWN: OnceLock<Vec<KnownWorld>> = OnceLock::new();
    KNOWN.get_or_init(standard_worlds)
}

/// `fuzz_targets/decode_check`: decodes a component or core module, then
/// computes its verdict against the built-in host and its OCI platform.
pub fn decode_check(data: &[u8]) {
    let Ok(wasm) = crate::component::decode(data) else {
        return;
    };
    let verdict = crate::verdict::check(&wasm, host());
    assert_eq!(
        verdict.compatible,
        verdict.problems.is_empty(),
        "a verdict is compatible exactly when it has no problems: {verdict:?}"
    );
    assert_eq!(verdict.compatible, verdict.world.is_some(), "{verdict:?}");
    serde_json::to_string(&verdict).expect("a verdict serializes");

    let p = platform(&wasm, known());
    assert_eq!(p.architecture, "wasm");
    assert!(
        ["wasip1", "wasip2", "wasip3"].contains(&p.os.as_str()),
        "os `{}`",
        p.os
    );
    let json = serde_json::to_string(&p).expect("a platform serializes");
    let back: Platform = serde_json::from_str(&json).expect("a platform reads back");
    assert_eq!(back, p, "the platform round-trips through JSON");
    for f in &p.os_features {
        let name: WitName = f
            .parse()
            .unwrap_or_else(|e| panic!("os.features entry `{f}` is not a WIT name: {e:#}"));
        assert_eq!(&name.to_string(), f, "os.features entry round-trips");
    }
    let _ = crate::platform::containerd_string(&p.os, &p.architecture, &p.os_features);
}

/// `fuzz_targets/stub`: any input must stub, or fail to, without
/// panicking; a binary wasmparser accepts (with the embedded engine's
/// features) must stub (`crate::stub::stub`) into a binary it
/// accepts too, with every core module keeping its imports, and its exports
/// by name, kind and function type, in order: what linking and
/// instantiating read; and, per memory and table, its active segments at
/// constant offsets must reach exactly as far: what their bounds checks
/// read. (Instantiating both is `tests/stub.rs`'s job; the fuzz build has
/// no wasmtime.)
pub fn stub(data: &[u8]) {
    // Confirmation stubs a binary while it validates: any input must stub
    // or fail to, without panicking.
    let any = crate::stub::stub(data);
    if crate::stub::validate(data).is_err() {
        return;
    }
    drop(any);
    let stubbed = crate::stub::stub(data).expect("a valid binary stubs");
    crate::stub::validate(&stubbed)
        .unwrap_or_else(|e| panic!("the stub of a valid binary is invalid: {e}"));
    assert_eq!(
        linkage(&stubbed),
        linkage(data),
        "the stub links differently"
    );
    assert_eq!(
        constant_reach(&stubbed),
        constant_reach(data),
        "the stub's segments reach elsewhere"
    );
}

/// Per core module, per memory and table: how far its active segments at
/// constant offsets reach (the largest `offset + length`; nothing where
/// that is 0, which every memory and table holds).
fn constant_reach(bytes: &[u8]) -> Vec<String> {
    use std::collections::BTreeMap;
    use wasmparser::{DataKind, ElementItems, ElementKind, Operator, Payload};
    let constant = |e: &wasmparser::ConstExpr<'_>| {
        let mut ops = e.get_operators_reader();
        let at = match ops.read() {
            Ok(Operator::I32Const { value }) => u128::from(value as u32),
            Ok(Operator::I64Const { value }) => u128::from(value as u64),
            _ => return None,
        };
        (matches!(ops.read(), Ok(Operator::End)) && ops.eof()).then_some(at)
    };
    let mut out = Vec::new();
    let mut module = 0;
    let mut reach: BTreeMap<(&str, u32), u128> = BTreeMap::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload.expect("a validated binary parses") {
            Payload::ElementSection(s) => {
                for e in s {
                    let e = e.expect("parses");
                    let n = match &e.items {
                        ElementItems::Functions(f) => f.count(),
                        ElementItems::Expressions(_, x) => x.count(),
                    };
                    if let ElementKind::Active {
                        table_index,
                        offset_expr,
                    } = &e.kind
                        && let Some(at) = constant(offset_expr)
                    {
                        let r = reach
                            .entry(("table", table_index.unwrap_or(0)))
                            .or_default();
                        *r = (*r).max(at + u128::from(n));
                    }
                }
            }
            Payload::DataSection(s) => {
                for d in s {
                    let d = d.expect("parses");
                    if let DataKind::Active {
                        memory_index,
                        offset_expr,
                    } = &d.kind
                        && let Some(at) = constant(offset_expr)
                    {
                        let r = reach.entry(("memory", *memory_index)).or_default();
                        *r = (*r).max(at + d.data.len() as u128);
                    }
                }
            }
            Payload::End(_) => {
                for ((kind, index), r) in std::mem::take(&mut reach) {
                    if r > 0 {
                        out.push(format!("module {module} {kind} {index} reaches {r}"));
                    }
                }
                module += 1;
            }
            _ => {}
        }
    }
    out
}

/// Each core module's imports (module, name, type) and exports (name,
/// kind, and a function's type index), in order, nested modules included.
fn linkage(bytes: &[u8]) -> Vec<String> {
    use wasmparser::{ExternalKind, Payload, TypeRef};
    let mut out = Vec::new();
    // Per module: the type index of each function, imports first.
    let mut funcs: Vec<u32> = Vec::new();
    for payload in wasmparser::Parser::new(0).parse_all(bytes) {
        match payload.expect("a validated binary parses") {
            Payload::Version { .. } => funcs.clear(),
            Payload::ImportSection(s) => {
                for i in s.into_imports() {
                    let i = i.expect("parses");
                    if let TypeRef::Func(t) | TypeRef::FuncExact(t) = i.ty {
                        funcs.push(t);
                    }
                    out.push(format!("import {} {} {:?}", i.module, i.name, i.ty));
                }
            }
            Payload::FunctionSection(s) => {
                funcs.extend(s.into_iter().map(|t| t.expect("parses")));
            }
            Payload::ExportSection(s) => {
                for e in s {
                    let e = e.expect("parses");
                    let ty = match e.kind {
                        ExternalKind::Func | ExternalKind::FuncExact => {
                            funcs.get(e.index as usize).copied()
                        }
                        _ => None,
                    };
                    out.push(format!("export {} {:?} {ty:?}", e.name, e.kind));
                }
            }
            _ => {}
        }
    }
    out
}

/// `fuzz_targets/filesystem_layer`: the input is an entrypoint path, a
/// newline, then a tar stream. The stream is read for that file as a
/// filesystem layer three times (plain, gzip-compressed, zstd-compressed):
/// each must give the same outcome, a found file is never larger than the
/// bound, and nothing panics or reads without bound.
pub fn filesystem_layer(data: &[u8]) {
    use crate::oci::rootfs::{Bounds, Compression, InLayer, entrypoint_path, find_in_layer};
    use std::io::Write;
    let Some(newline) = data.iter().position(|&b| b == b'\n') else {
        return;
    };
    let (path, tar) = (&data[..newline], &data[newline + 1..]);
    let Ok(path) = std::str::from_utf8(path) else {
        return;
    };
    let Ok(path) = entrypoint_path(Some(&[path.to_string()]), None, None) else {
        return;
    };
    let bounds = Bounds {
        max_file: 4096,
        max_unpacked: 1 << 20,
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(tar).expect("compressing into memory");
    let gz = gz.finish().expect("compressing into memory");
    let zst = zstd::encode_all(tar, 1).expect("compressing into memory");
    let outcome = |bytes: &[u8], c: Compression| -> Option<InLayer> {
        find_in_layer(bytes, c, &path, bounds).ok()
    };
    let plain = outcome(tar, Compression::None);
    if let Some(InLayer::Found(file)) = &plain {
        assert!(
            file.len() as u64 <= bounds.max_file,
            "a file past the bound"
        );
    }
    assert_eq!(
        outcome(&gz, Compression::Gzip),
        plain,
        "gzip changes the outcome"
    );
    assert_eq!(
        outcome(&zst, Compression::Zstd),
        plain,
        "zstd changes the outcome"
    );
}

/// `fuzz_targets/oci_json`: reads bytes as an image index, a manifest and a
/// CNCF wasm config (each must serialize and read back equal), and probes
/// their media type.
pub fn oci_json(data: &[u8]) {
    fn round_trip<T>(data: &[u8])
    where
        T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
    {
        let limited = ReadLimits::default().parse_json::<T>(data);
        let Ok(value) = serde_json::from_slice::<T>(data) else {
            assert!(
                limited.is_err(),
                "the depth check admits nothing serde refuses"
            );
            return;
        };
        if let Ok(v) = limited {
            assert_eq!(v, value, "the depth check doesn't change what is read");
        }
        let json = serde_json::to_vec(&value).expect("a parsed value serializes");
        let back: T = serde_json::from_slice(&json).expect("its JSON reads back");
        assert_eq!(back, value, "the value round-trips through JSON");
    }
    round_trip::<Index>(data);
    round_trip::<Manifest>(data);
    round_trip::<WasmConfig>(data);
    round_trip::<Platform>(data);
    if let Ok(m) = probe_media_type(data) {
        assert!(
            serde_json::from_slice::<serde::de::IgnoredAny>(data).is_ok(),
            "a media type is probed only from valid JSON, got `{m}`"
        );
    }
    // The depth scan is monotone in its limit.
    let shallow = check_json_depth(data, 2).is_ok();
    let deep = check_json_depth(data, 64).is_ok();
    assert!(!shallow || deep, "depth 2 passes but depth 64 fails");
}

/// `fuzz_targets/wit_name`: parses text as a WIT name (which must
/// round-trip through `Display`) and judges it as a platform feature of the
/// built-in host. Two names on two lines are also compared by track.
pub fn wit_name(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let parse = |s: &str| -> Option<WitName> {
        let name = s.parse::<WitName>().ok()?;
        let shown = name.to_string();
        assert_eq!(shown, s, "a parsed WIT name displays as written");
        assert_eq!(
            shown.parse::<WitName>().ok().as_ref(),
            Some(&name),
            "a WIT name round-trips through Display"
        );
        assert!(name.same_track(&name) && name.same_name(&name));
        Some(name)
    };
    let name = parse(text);
    let level = os_feature_level(text, host());
    assert_eq!(level.feature, text);
    if name.is_none() {
        assert_eq!(level.level, Level::No, "a malformed feature is never met");
    }
    if let Some(has) = &level.host_has {
        assert!(has.parse::<WitName>().is_ok(), "host feature `{has}`");
    }
    if let Some((a, b)) = text.split_once('\n')
        && let (Some(a), Some(b)) = (parse(a), parse(b))
    {
        assert_eq!(
            a.same_track(&b),
            b.same_track(&a),
            "same_track is symmetric"
        );
        if a.same_track(&b) {
            assert!(a.same_name(&b));
            assert_eq!(a.track(), b.track());
        }
        assert_eq!(a.cmp(&b), b.cmp(&a).reverse());
    }
}

/// Separates the sections of a [`layout`] input.
pub const LAYOUT_SEP: &[u8] = b"\n--8<--\n";

/// The most blobs a [`layout`] input writes.
pub const LAYOUT_MAX_BLOBS: usize = 10;

/// `fuzz_targets/layout`: writes an OCI image layout described by the
/// bytes into a fresh temporary directory, reads it the way `inspect` and
/// `select --no-confirm` do, and removes it.
///
/// The input is sections separated by [`LAYOUT_SEP`]:
///
/// 0. appended to the layout's path to name the source: empty (the default
///    image), `:TAG` or `@DIGEST`, optionally after `oci:` (which then
///    prefixes the path); any `/` is dropped, so it names nothing else;
/// 1. `oci-layout`;
/// 2. `index.json`;
/// 3. up to [`LAYOUT_MAX_BLOBS`] blobs, each one of
///    - `name=PATH\n` then bytes: a file at `blobs/sha256/PATH`,
///    - `link=PATH\n` then a target: a symlink at `blobs/sha256/PATH`,
///    - `dir=PATH\n`: a directory,
///    - anything else: bytes stored under their real sha256.
///
/// `PATH` and link targets may be hostile (`..`, absolute paths are
/// dropped), but are kept only where they stay inside the case's directory,
/// which also holds a file `outside` beside the layout. Section 1 or 2 as
/// `!absent` leaves the file out. In sections 0 and 2 and in each blob,
/// `$Dn` becomes `sha256:<hex>` of blob `n` (0-9, counted from section 3)
/// and `$Sn` its size; a blob's own placeholders name only later blobs, so
/// index → manifest → config → layer stays valid while a layer mutates.
/// The temporary directory is `std::env::temp_dir()` (`TMPDIR`): on tmpfs
/// this target runs an order of magnitude faster.
pub fn layout(data: &[u8]) {
    layout_report(data);
}

/// A temporary directory for one input, removed on drop.
struct Case {
    root: PathBuf,
}

impl Case {
    fn new() -> Case {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let root =
            std::env::temp_dir().join(format!("worldfit-fuzz-layout-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(root.join("layout")).expect("a temporary directory");
        let _ = std::fs::write(root.join("outside"), b"outside the layout\n");
        Case { root }
    }

    /// Writes the layout the input describes; returns the source name.
    fn write(&self, data: &[u8]) -> String {
        let dir = self.root.join("layout");
        let mut sections = split(data, LAYOUT_SEP).into_iter();
        let selector = sections.next().unwrap_or_default();
        let marker = sections.next();
        let index = sections.next();
        let blobs: Vec<Blob> = sections
            .take(LAYOUT_MAX_BLOBS)
            .enumerate()
            .map(|(i, s)| Blob::parse(i, s))
            .collect();
        // Resolve placeholders from the last blob back: each names only later ones.
        let mut digests = vec![(String::new(), 0usize); blobs.len()];
        let mut contents = vec![Vec::new(); blobs.len()];
        for i in (0..blobs.len()).rev() {
            let bytes = substitute(blobs[i].bytes, &digests, i + 1);
            digests[i] = (
                format!("sha256:{}", crate::cache::sha256_hex(&bytes)),
                bytes.len(),
            );
            contents[i] = bytes;
        }
        let put = |name: &str, bytes: Option<&[u8]>| {
            if let Some(b) = bytes.filter(|b| *b != b"!absent") {
                let _ = std::fs::write(dir.join(name), b);
            }
        };
        put("oci-layout", marker);
        let index = index.map(|i| substitute(i, &digests, 0));
        put("index.json", index.as_deref());
        let blob_dir = dir.join("blobs").join("sha256");
        let _ = std::fs::create_dir_all(&blob_dir);
        for (blob, bytes) in blobs.iter().zip(&contents) {
            let path = match blob.path {
                Some(p) => match self.inside(&blob_dir, p) {
                    Some(p) => p,
                    None => continue,
                },
                None => blob_dir.join(&digests[blob.index].0["sha256:".len()..]),
            };
            if let Some(parent) = path.parent() {
                let _ = std::fs::create_dir_all(parent);
            }
            if blob.path.is_some() {
                // An explicit name replaces what is there (a file by its digest).
                let _ = std::fs::remove_file(&path);
            }
            match blob.kind {
                Kind::File => {
                    let _ = std::fs::write(&path, bytes);
                }
                Kind::Dir => {
                    let _ = std::fs::create_dir_all(&path);
                }
                Kind::Link => {
                    let target = std::ffi::OsStr::from_bytes(bytes);
                    let parent = path.parent().unwrap_or(&blob_dir);
                    if self.inside(parent, target.as_bytes()).is_some() {
                        let _ = std::os::unix::fs::symlink(target, &path);
                    }
                }
            }
        }
        let selector = String::from_utf8_lossy(&substitute(selector, &digests, 0)).replace('/', "");
        let (prefix, rest) = match selector.strip_prefix("oci:") {
            Some(rest) => ("oci:", rest),
            None => ("", selector.as_str()),
        };
        format!("{prefix}{}{rest}", dir.display())
    }

    /// `base/rel`, resolved lexically, if it is relative and stays inside
    /// the case's directory (and isn't the directory itself).
    fn inside(&self, base: &Path, rel: &[u8]) -> Option<PathBuf> {
        let rel = Path::new(std::ffi::OsStr::from_bytes(rel));
        if rel.as_os_str().is_empty() || rel.as_os_str().as_bytes().contains(&0) {
            return None;
        }
        let mut out = base.to_path_buf();
        for c in rel.components() {
            match c {
                Component::Normal(c) => out.push(c),
                Component::CurDir => {}
                Component::ParentDir => {
                    out.pop();
                }
                Component::RootDir | Component::Prefix(_) => return None,
            }
        }
        (out.starts_with(&self.root) && out != self.root).then_some(out)
    }
}

impl Drop for Case {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

enum Kind {
    File,
    Link,
    Dir,
}

/// One blob section of a [`layout`] input.
struct Blob<'a> {
    index: usize,
    kind: Kind,
    path: Option<&'a [u8]>,
    bytes: &'a [u8],
}

impl<'a> Blob<'a> {
    fn parse(index: usize, section: &'a [u8]) -> Blob<'a> {
        let header = |prefix: &[u8]| -> Option<(&'a [u8], &'a [u8])> {
            let rest = section.strip_prefix(prefix)?;
            Some(match rest.iter().position(|&b| b == b'\n') {
                Some(n) => (&rest[..n], &rest[n + 1..]),
                None => (rest, &[][..]),
            })
        };
        let (kind, path, bytes) = if let Some((p, b)) = header(b"name=") {
            (Kind::File, Some(p), b)
        } else if let Some((p, b)) = header(b"link=") {
            (Kind::Link, Some(p), b)
        } else if let Some((p, _)) = header(b"dir=") {
            (Kind::Dir, Some(p), &[][..])
        } else {
            (Kind::File, None, section)
        };
        Blob {
            index,
            kind,
            path,
            bytes,
        }
    }
}

/// Splits `data` at every `sep`.
fn split<'a>(data: &'a [u8], sep: &[u8]) -> Vec<&'a [u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i + sep.len() <= data.len() {
        if &data[i..i + sep.len()] == sep {
            out.push(&data[start..i]);
            i += sep.len();
            start = i;
        } else {
            i += 1;
        }
    }
    out.push(&data[start..]);
    out
}

/// Replaces `$Dn` and `$Sn` for blobs `n >= from` (see [`layout`]).
fn substitute(bytes: &[u8], digests: &[(String, usize)], from: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$'
            && let Some(&[kind, d]) = bytes.get(i + 1..i + 3)
            && (kind == b'D' || kind == b'S')
            && d.is_ascii_digit()
            && let n = usize::from(d - b'0')
            && n >= from
            && n < digests.len()
        {
            let (digest, size) = &digests[n];
            if kind == b'D' {
                out.extend_from_slice(digest.as_bytes());
            } else {
                out.extend_from_slice(size.to_string().as_bytes());
            }
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    out
}

/// Polls a future once: a layout never waits, so it must be ready.
fn now<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    match f.as_mut().poll(&mut cx) {
        std::task::Poll::Ready(v) => v,
        std::task::Poll::Pending => panic!("a layout read did not complete at once"),
    }
}

fn verified(digest: &str, bytes: &[u8]) {
    assert_eq!(
        digest,
        format!("sha256:{}", crate::cache::sha256_hex(bytes)),
        "bytes handed out match their digest"
    );
}

/// What [`layout`] made of an input, one line per step: for checking that
/// seeds reach the code they were written for.
pub fn layout_report(data: &[u8]) -> Vec<String> {
    let case = Case::new();
    let text = case.write(data);
    read_layout(&text)
}

/// Reads the layout `text` names as `inspect`, `pull` and `select` do.
fn read_layout(text: &str) -> Vec<String> {
    let mut report = Vec::new();
    let source = match Source::parse_layout(text) {
        Ok(Some(source)) => source,
        Ok(None) => return vec!["source: not a directory".into()],
        Err(e) => return vec![format!("source: {e:#}")],
    };
    let _ = source.name();
    match now(source.root()) {
        Ok((root, bytes)) => {
            verified(&root.digest, &bytes);
            report.push(format!("root: {}", root.media_type));
            match now(crate::oci::image::entries(&source, &root, &bytes, known())) {
                Ok(list) => {
                    for e in &list {
                        assert!(
                            e.layer.is_none() || e.wasm,
                            "only wasm entries keep a layer"
                        );
                    }
                    serde_json::to_string(&list).expect("entries serialize");
                    let declared: Vec<String> = list
                        .iter()
                        .map(|e| format!("{:?}", e.declared).to_lowercase())
                        .collect();
                    report.push(format!("entries: {}", declared.join(" ")));
                }
                Err(e) => report.push(format!("entries: {e:#}")),
            }
            match now(collect(&source, &root, bytes, &mut |_| {})) {
                Ok(blobs) => {
                    for b in &blobs {
                        verified(&b.descriptor.digest, &b.bytes);
                    }
                    report.push(format!("collect: {} blobs", blobs.len()));
                }
                Err(e) => report.push(format!("collect: {e:#}")),
            }
        }
        Err(e) => report.push(format!("root: {e:#}")),
    }
    let options = SelectOptions {
        no_confirm: true,
        ..SelectOptions::default()
    };
    match now(select(&source, host(), &options)) {
        Ok(selection) => {
            if let Some(i) = selection.selected {
                assert!(i < selection.entries.len());
            }
            assert!(
                selection.layer.is_none(),
                "no layer is fetched without confirming"
            );
            let _ = selection.explain();
            serde_json::to_string(&selection).expect("a selection serializes");
            report.push(format!(
                "select: {} of {}",
                selection
                    .selected
                    .map_or("none".to_string(), |i| format!("#{i}")),
                selection.entries.len()
            ));
        }
        Err(e) => report.push(format!("select: {e:#}")),
    }
    report
}
