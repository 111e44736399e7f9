//! OCI encoding of wasm builds: the CNCF "Wasm OCI artifact" manifest, its
//! config, and image layouts on disk.

pub mod artifact;
pub mod binary;
#[cfg(feature = "containerd")]
pub mod containerd;
#[cfg(feature = "containerd")]
mod containerd_api;
#[cfg(feature = "containerd")]
pub(crate) mod hashing;
pub mod image;
pub mod layout;
pub mod limits;
pub mod listed;
#[cfg(feature = "registry")]
pub mod registry;
pub mod rootfs;
pub mod source;
pub mod store;
#[cfg(feature = "registry")]
pub mod transfer;

/// `application/vnd.oci.image.index.v1+json`
pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
/// `application/vnd.oci.image.manifest.v1+json`
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
/// The CNCF wasm config: `application/vnd.wasm.config.v0+json`.
pub const WASM_CONFIG_MEDIA_TYPE: &str = "application/vnd.wasm.config.v0+json";
/// The wasm layer: `application/wasm`.
pub const WASM_LAYER_MEDIA_TYPE: &str = "application/wasm";
/// The annotation that tags an entry of a layout's `index.json`.
pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
