//! The built-in profile's WIT: the WASI packages the embedded wasmtime 48
//! implements plus worldfit's own host worlds, embedded in the binary and
//! parsed once per process.

use std::sync::Arc;
use wit_parser::{PackageId, Resolve};

/// One embedded WIT file: its name, and its text from `OUT_DIR`.
macro_rules! stripped_wit {
    ($dir:literal, $file:literal) => {
        (
            $file,
            include_str!(concat!(env!("OUT_DIR"), "/wit/", $dir, $file)),
        )
    };
}

/// The embedded WIT of the built-in profile, in dependency order: the files
/// under `wit/` with their comments stripped by `build.rs` (parsing the docs
/// cost a third of every start, and nothing reads them).
const BUILTIN_WIT: &[(&str, &str)] = &[
    stripped_wit!("deps/", "wasi-io-0.2.12.wit"),
    stripped_wit!("deps/", "wasi-clocks-0.2.12.wit"),
    stripped_wit!("deps/", "wasi-random-0.2.12.wit"),
    stripped_wit!("deps/", "wasi-filesystem-0.2.12.wit"),
    stripped_wit!("deps/", "wasi-sockets-0.2.12.wit"),
    stripped_wit!("deps/", "wasi-cli-0.2.12.wit"),
    stripped_wit!("deps/", "wasi-http-0.2.12.wit"),
    stripped_wit!("deps/", "wasi-clocks-0.3.0.wit"),
    stripped_wit!("deps/", "wasi-random-0.3.0.wit"),
    stripped_wit!("deps/", "wasi-filesystem-0.3.0.wit"),
    stripped_wit!("deps/", "wasi-sockets-0.3.0.wit"),
    stripped_wit!("deps/", "wasi-cli-0.3.0.wit"),
    stripped_wit!("deps/", "wasi-http-0.3.0.wit"),
    stripped_wit!("", "worldfit.wit"),
];

/// The embedded WIT files of the built-in profile: (file name, text).
pub(crate) fn builtin_wit() -> &'static [(&'static str, &'static str)] {
    BUILTIN_WIT
}

/// The worlds of the built-in profile, in the order they are tried.
pub const BUILTIN_WORLDS: &[&str] = &[
    "wasip2-command",
    "wasip2-http",
    "wasip3-command",
    "wasip3-http",
];

/// Parses the embedded WIT: the WASI packages wasmtime 48 implements plus
/// worldfit's own host worlds. Returns the resolve and the root package.
pub fn builtin_resolve() -> (Resolve, PackageId) {
    // A clone is much cheaper than a parse.
    let (resolve, root) = parsed_builtin();
    ((**resolve).clone(), *root)
}

/// The embedded WIT as the built-in host holds it: shared, never cloned.
pub(super) fn shared_builtin() -> (Arc<Resolve>, PackageId) {
    let (resolve, root) = parsed_builtin();
    (resolve.clone(), *root)
}

/// The embedded WIT, parsed once per process (about 10 ms).
pub(super) fn parsed_builtin() -> &'static (Arc<Resolve>, PackageId) {
    static PARSED: std::sync::OnceLock<(Arc<Resolve>, PackageId)> = std::sync::OnceLock::new();
    PARSED.get_or_init(|| {
        let (resolve, root) = parse_builtin();
        (Arc::new(resolve), root)
    })
}

fn parse_builtin() -> (Resolve, PackageId) {
    let mut resolve = Resolve::default();
    let mut root = None;
    for (name, text) in BUILTIN_WIT {
        // The embedded WIT is tested; failing to parse it is a build defect.
        let pkg = resolve
            .push_str(name, text)
            .unwrap_or_else(|e| panic!("embedded WIT `{name}` does not parse: {e:#}"));
        root = Some(pkg);
    }
    (resolve, root.expect("embedded WIT is not empty"))
}
