//! One small interface for where an image's bytes come from: a local OCI
//! layout, a registry, containerd's content store, or an embedder's own
//! store. Selection, inspection and transfers read through it and never
//! learn which.
//!
//! An implementation names an image (its *root*: an index or a manifest)
//! and reads what a descriptor names, **verified**: exactly the
//! descriptor's size and digest, never more than the limit it is given
//! (ideally refused before reading, by a declared size). [`verify`] does
//! the check for stores that hand back whole buffers.
//!
//! ```
//! use worldfit::oci::artifact::Descriptor;
//! use worldfit::oci::limits::ReadLimits;
//! use worldfit::oci::store::{ContentStore, StoreFuture, verify};
//! use std::collections::HashMap;
//!
//! /// Blobs a shim already holds in memory, by digest.
//! struct InMemory {
//!     root: Descriptor,
//!     blobs: HashMap<String, Vec<u8>>,
//! }
//!
//! impl ContentStore for InMemory {
//!     fn name(&self) -> String {
//!         format!("memory@{}", self.root.digest)
//!     }
//!     fn root<'a>(&'a self, limits: &'a ReadLimits) -> StoreFuture<'a, (Descriptor, Vec<u8>)> {
//!         Box::pin(async move {
//!             let mut no_progress = |_| {};
//!             let bytes = self
//!                 .fetch(&self.root, limits.max_manifest_bytes, limits, &mut no_progress)
//!                 .await?;
//!             Ok((self.root.clone(), bytes))
//!         })
//!     }
//!     fn fetch<'a>(
//!         &'a self,
//!         d: &'a Descriptor,
//!         limit: u64,
//!         _limits: &'a ReadLimits,
//!         on_bytes: &'a mut dyn FnMut(u64),
//!     ) -> StoreFuture<'a, Vec<u8>> {
//!         Box::pin(async move {
//!             let bytes = self
//!                 .blobs
//!                 .get(&d.digest)
//!                 .ok_or_else(|| anyhow::anyhow!("no blob `{}`", d.digest))?;
//!             anyhow::ensure!(d.size <= limit, "`{}` is over the limit of {limit}", d.digest);
//!             verify(d, bytes)?;
//!             on_bytes(bytes.len() as u64);
//!             Ok(bytes.clone())
//!         })
//!     }
//! }
//! ```
//!
//! A [`super::source::Source`] wraps any of them (`Origin::Custom`) with
//! read limits, and `worldfit::select::select` takes that.

use super::artifact::Descriptor;
use super::limits::ReadLimits;
use anyhow::{Result, bail};
use std::future::Future;
use std::pin::Pin;

/// What a store's reads return: boxed, so the trait can be used as
/// `dyn ContentStore` (an embedder's store beside the built-in ones).
pub type StoreFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T>> + 'a>>;

/// Where an image's bytes come from. See the module documentation.
pub trait ContentStore {
    /// A short name for messages: `DIR:TAG`, `HOST/REPO:TAG`,
    /// `containerd://NAMESPACE/IMAGE`.
    fn name(&self) -> String;

    /// The image the store names: its index or manifest, with a descriptor
    /// whose media type, digest and size describe the bytes, at most
    /// `limits.max_manifest_bytes` of them.
    fn root<'a>(&'a self, limits: &'a ReadLimits) -> StoreFuture<'a, (Descriptor, Vec<u8>)>;

    /// The bytes `d` names, verified against its size and digest, refusing
    /// more than `limit`. `on_bytes` sees progress (bytes as they arrive).
    fn fetch<'a>(
        &'a self,
        d: &'a Descriptor,
        limit: u64,
        limits: &'a ReadLimits,
        on_bytes: &'a mut dyn FnMut(u64),
    ) -> StoreFuture<'a, Vec<u8>>;

    /// The bytes `d` names, handed to `sink` piece by piece as they arrive,
    /// under the same checks as [`ContentStore::fetch`]. The pieces are
    /// *unverified* until this returns `Ok`: a consumer keeps nothing it
    /// learned from them when it returns an error. An `Err` from `sink`
    /// stops the read and is returned.
    ///
    /// The default reads the whole blob with `fetch` and hands it over in
    /// one piece; the built-in layout and registry stores stream, so a
    /// consumer that keeps little (one file out of a filesystem layer)
    /// holds little.
    fn fetch_to<'a>(
        &'a self,
        d: &'a Descriptor,
        limit: u64,
        limits: &'a ReadLimits,
        sink: &'a mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> StoreFuture<'a, ()> {
        Box::pin(async move {
            let bytes = self.fetch(d, limit, limits, &mut |_| {}).await?;
            sink(&bytes)
        })
    }
}

/// Checks bytes against their descriptor: a well-formed digest, the size,
/// the SHA-256.
pub fn verify(d: &Descriptor, bytes: &[u8]) -> Result<()> {
    super::layout::check_digest(&d.digest)?;
    if bytes.len() as u64 != d.size {
        bail!(
            "`{}` has {} bytes, its descriptor says {}",
            d.digest,
            bytes.len(),
            d.size
        );
    }
    let actual = format!("sha256:{}", crate::cache::sha256_hex(bytes));
    if actual != d.digest {
        bail!("`{}` hashes to `{actual}`: corrupt or tampered", d.digest);
    }
    Ok(())
}
