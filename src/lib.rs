//! worldfit answers, before anything runs: *will this WebAssembly component
//! run on this host?*
//!
//! It reads what a binary needs (a component's imports and exports with their
//! types, or a wasip1 module's core imports), reads what a host offers (WIT
//! worlds, or the built-in profile of the embedded wasmtime 48), and gives a
//! verdict that names every problem and what the host has instead. It also
//! computes the OCI platform (`os`, `os.features`) that lets an image index
//! say which build needs what.
//!
//! ```
//! use worldfit::{Host, check, decode};
//!
//! let bytes = std::fs::read("fixtures/hello-cli.wasm")?;
//! let wasm = decode(&bytes)?;
//! let verdict = check(&wasm, &Host::wasmtime());
//! assert!(verdict.compatible);
//! assert_eq!(verdict.world.as_deref(), Some("worldfit:wasmtime/wasip2-command@48.0.0"));
//! for problem in &verdict.problems {
//!     eprintln!("{}: {}", problem.name, problem.detail);
//! }
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
#![deny(missing_docs)]

#[cfg(feature = "kubernetes")]
pub mod affinity;
pub mod cache;
pub mod component;
#[cfg(feature = "wasmtime")]
pub mod confirm;
pub mod engine_features;
#[cfg(feature = "wasmtime")]
mod fit_record;
pub mod os_features;
// Entry points for the fuzz targets in `fuzz/` and tests/fuzz_smoke.rs.
#[doc(hidden)]
pub mod fuzzing;
pub mod host;
pub mod labels;
pub mod oci;
pub mod platform;
#[cfg(all(feature = "containerd", feature = "wasmtime"))]
pub mod preflight;
pub mod select;
pub mod stub;
pub mod types;
pub mod verdict;
pub mod wasip1;
pub mod wit_name;

pub use component::{DecodeError, Wasm, decode};
pub use host::Host;
pub use os_features::{Level, os_feature_levels};
pub use platform::{Platform, platform};
pub use verdict::{Problem, ProblemKind, Verdict, check};
pub use wit_name::{Track, WitName};
