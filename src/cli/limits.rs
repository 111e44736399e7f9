//! `--max-*` flags: the read limits of `worldfit::oci::limits`, for the
//! commands that read images.

use clap::Args;
use worldfit::oci::limits::ReadLimits;

/// Read limits (defaults in docs/LIMITS.md).
#[derive(Args, Debug, Clone)]
#[command(next_help_heading = "Limits")]
pub struct LimitFlags {
    /// Largest wasm layer (or other blob) to read, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = ReadLimits::default().max_layer_bytes)]
    max_layer_bytes: u64,
    /// Most bytes a filesystem layer (tar, tar+gzip, tar+zstd) may unpack to
    /// while the entrypoint file is looked for in it.
    #[arg(long, value_name = "BYTES", default_value_t = ReadLimits::default().max_unpacked_bytes)]
    max_unpacked_bytes: u64,
    /// Largest config blob to read, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = ReadLimits::default().max_config_bytes)]
    max_config_bytes: u64,
    /// Largest manifest, index or index.json to read, in bytes.
    #[arg(long, value_name = "BYTES", default_value_t = ReadLimits::default().max_manifest_bytes)]
    max_manifest_bytes: u64,
    /// Most entries in one index.
    #[arg(long, value_name = "N", default_value_t = ReadLimits::default().max_index_entries)]
    max_index_entries: usize,
    /// Deepest JSON nesting (arrays and objects) in any manifest, index or config.
    #[arg(long, value_name = "N", default_value_t = ReadLimits::default().max_json_depth)]
    max_json_depth: usize,
    /// Deepest chain of indexes (an index of indexes of ...).
    #[arg(long, value_name = "N", default_value_t = ReadLimits::default().max_index_depth)]
    max_index_depth: usize,
}

impl LimitFlags {
    /// The limits these flags select.
    pub fn limits(&self) -> ReadLimits {
        ReadLimits {
            max_layer_bytes: self.max_layer_bytes,
            max_unpacked_bytes: self.max_unpacked_bytes,
            max_config_bytes: self.max_config_bytes,
            max_manifest_bytes: self.max_manifest_bytes,
            max_index_entries: self.max_index_entries,
            max_json_depth: self.max_json_depth,
            max_index_depth: self.max_index_depth,
        }
    }
}
