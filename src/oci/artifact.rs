//! One wasm build as an OCI artifact: the layer (the binary), the CNCF wasm
//! config, the manifest, and the index entry with its platform.
//!
//! Everything is serialized from structs with a fixed field order and
//! `BTreeMap`s, so the same inputs always give the same bytes and digests.

use super::{MANIFEST_MEDIA_TYPE, WASM_CONFIG_MEDIA_TYPE, WASM_LAYER_MEDIA_TYPE};
use crate::component::Wasm;
use crate::host::KnownWorld;
use crate::platform::{Platform, platform, targets};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An OCI content descriptor.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Descriptor {
    /// The media type of the referenced content.
    pub media_type: String,
    /// `sha256:<hex>` of the content.
    pub digest: String,
    /// The size of the content in bytes.
    pub size: u64,
    /// The platform, for index entries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform: Option<Platform>,
    /// Annotations, in a stable order.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// A blob and its descriptor.
#[derive(Debug, Clone)]
pub struct Blob {
    /// The descriptor (without platform).
    pub descriptor: Descriptor,
    /// The bytes.
    pub bytes: Vec<u8>,
}

impl Blob {
    /// Describes bytes with a media type.
    pub fn new(media_type: &str, bytes: Vec<u8>) -> Blob {
        let digest = format!("sha256:{}", crate::cache::sha256_hex(&bytes));
        Blob {
            descriptor: Descriptor {
                media_type: media_type.to_string(),
                digest,
                size: bytes.len() as u64,
                platform: None,
                annotations: BTreeMap::new(),
            },
            bytes,
        }
    }
}

/// The CNCF wasm config (`application/vnd.wasm.config.v0+json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WasmConfig {
    /// RFC 3339 time, from `SOURCE_DATE_EPOCH`; omitted without it, so
    /// builds are reproducible by default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The author, if given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// Always `wasm`.
    pub architecture: String,
    /// `wasip1`, `wasip2` or `wasip3`.
    pub os: String,
    /// The digests of the layers, in order.
    pub layer_digests: Vec<String>,
    /// What a component imports, exports and targets (absent for modules).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub component: Option<ComponentConfig>,
}

/// The `component` object of the wasm config.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ComponentConfig {
    /// Every import, as WIT names.
    pub imports: Vec<String>,
    /// Every export, as WIT names.
    pub exports: Vec<String>,
    /// The target world (a string, as the CNCF layout has it; the first one
    /// when a component targets several), as in `os.features`. No other
    /// tool fills it yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
}

/// An image manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Manifest {
    /// Always 2.
    pub schema_version: u32,
    /// `application/vnd.oci.image.manifest.v1+json`.
    pub media_type: String,
    /// `application/wasm`: what the artifact is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub artifact_type: Option<String>,
    /// The config blob.
    pub config: Descriptor,
    /// The layer blobs.
    pub layers: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

/// The pieces of one build, ready to write.
#[derive(Debug, Clone)]
pub struct Artifact {
    /// The wasm layer.
    pub layer: Blob,
    /// The config.
    pub config: Blob,
    /// The manifest.
    pub manifest: Blob,
    /// The index entry: the manifest's descriptor with the platform.
    pub entry: Descriptor,
}

/// Formats seconds since the epoch as RFC 3339 UTC (`1970-01-01T00:00:00Z`).
pub fn rfc3339(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Builds the artifact for one decoded binary.
pub fn build(bytes: Vec<u8>, wasm: &Wasm, known: &[KnownWorld], created: Option<u64>) -> Artifact {
    let platform = platform(wasm, known);
    let layer = Blob::new(WASM_LAYER_MEDIA_TYPE, bytes);
    let component = match wasm {
        Wasm::Component(c) => {
            let names = |items: Vec<String>| {
                let mut items = items;
                items.sort();
                items.dedup();
                items
            };
            let (worlds, _) = targets(c, known);
            Some(ComponentConfig {
                imports: names(c.imports().map(|(n, _)| n.to_string()).collect()),
                exports: names(c.exports().map(|(n, _)| n.to_string()).collect()),
                target: worlds.first().map(ToString::to_string),
            })
        }
        Wasm::Module(_) => None,
    };
    let config = WasmConfig {
        created: created.map(rfc3339),
        author: None,
        architecture: platform.architecture.clone(),
        os: platform.os.clone(),
        layer_digests: vec![layer.descriptor.digest.clone()],
        component,
    };
    let config = Blob::new(
        WASM_CONFIG_MEDIA_TYPE,
        serde_json::to_vec(&config).expect("config serializes"),
    );
    let manifest = Manifest {
        schema_version: 2,
        media_type: MANIFEST_MEDIA_TYPE.into(),
        artifact_type: Some(WASM_LAYER_MEDIA_TYPE.into()),
        config: config.descriptor.clone(),
        layers: vec![layer.descriptor.clone()],
        annotations: BTreeMap::new(),
    };
    let manifest = Blob::new(
        MANIFEST_MEDIA_TYPE,
        serde_json::to_vec(&manifest).expect("manifest serializes"),
    );
    let mut entry = manifest.descriptor.clone();
    entry.platform = Some(platform);
    Artifact {
        layer,
        config,
        manifest,
        entry,
    }
}

#[cfg(test)]
mod tests {
    use super::rfc3339;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_798_416_000 + 3_661), "2026-12-28T01:01:01Z");
    }
}
