//! OCI image layouts on disk (`oci-layout`, `index.json`, `blobs/sha256/`),
//! read with verification and written atomically.
//!
//! Reading never trusts a digest: it must be `sha256:` and 64 lowercase hex
//! digits (so it can't name a path outside the layout), and the blob's size
//! and hash must match its descriptor. Writing puts blobs first (each to a
//! temporary file renamed into place) and `index.json` last, the same way, so
//! a failure at any step leaves the previous layout readable as it was. A
//! layout that doesn't exist yet is built beside its destination and renamed
//! into place at the end, so a failed first run leaves nothing. Files are
//! synced before they are renamed, and directories after, so the same holds
//! across a power cut (as containerd's content store and skopeo do).

use super::artifact::{Artifact, Blob, Descriptor};
use super::limits::ReadLimits;
use super::{INDEX_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, REF_NAME};
use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// Largest `index.json`, manifest or index read by default (as
/// distribution allows); see [`ReadLimits`].
pub const MAX_MANIFEST_BYTES: u64 = 4 << 20;

/// An image index (also the shape of a layout's `index.json`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Index {
    /// Always 2.
    pub schema_version: u32,
    /// `application/vnd.oci.image.index.v1+json`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_type: Option<String>,
    /// The entries.
    pub manifests: Vec<Descriptor>,
    /// Annotations.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
}

impl Index {
    fn empty() -> Index {
        Index {
            schema_version: 2,
            media_type: Some(INDEX_MEDIA_TYPE.into()),
            manifests: vec![],
            annotations: BTreeMap::new(),
        }
    }
}

/// A layout directory.
#[derive(Debug, Clone)]
pub struct Layout {
    dir: PathBuf,
}

/// The path a digest names inside a layout, refusing anything that isn't
/// `sha256:` + 64 lowercase hex digits.
pub fn blob_path(dir: &Path, digest: &str) -> Result<PathBuf> {
    let hex = check_digest(digest)?;
    Ok(dir.join("blobs").join("sha256").join(hex))
}

/// Checks that a digest is `sha256:` + 64 lowercase hex digits (so it can
/// never name a path) and returns the hex part.
pub fn check_digest(digest: &str) -> Result<&str> {
    let Some(hex) = digest.strip_prefix("sha256:") else {
        bail!("unsupported or malformed digest `{digest}` (expected sha256:<64 hex digits>)");
    };
    if hex.len() != 64
        || !hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    {
        bail!("malformed digest `{digest}` (expected sha256:<64 hex digits>)");
    }
    Ok(hex)
}

impl Layout {
    /// A layout at `dir` (which may not exist yet).
    pub fn new(dir: impl Into<PathBuf>) -> Layout {
        Layout { dir: dir.into() }
    }

    /// The layout's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Reads a blob, checking its size and digest against the descriptor.
    pub fn read_blob(&self, d: &Descriptor, limit: u64) -> Result<Vec<u8>> {
        let path = self.checked_blob_path(d, limit)?;
        let bytes = read_regular(&path, d.size)
            .with_context(|| format!("failed to read blob `{}`", d.digest))?;
        let actual = format!("sha256:{}", crate::cache::sha256_hex(&bytes));
        check_hash(d, &actual)?;
        Ok(bytes)
    }

    /// Reads a blob in pieces of at most 256 KiB, handing each to `sink`
    /// as it is read and checking size and digest at the end (see
    /// [`super::store::ContentStore::fetch_to`]: the pieces are unverified
    /// until this returns `Ok`).
    pub fn stream_blob(
        &self,
        d: &Descriptor,
        limit: u64,
        sink: &mut dyn FnMut(&[u8]) -> Result<()>,
    ) -> Result<()> {
        use sha2::Digest;
        use std::io::Read;
        let path = self.checked_blob_path(d, limit)?;
        let failed = |e: std::io::Error| anyhow::anyhow!("failed to read blob `{}`: {e}", d.digest);
        let file = open_regular(&path, d.size).map_err(failed)?;
        let mut hasher = sha2::Sha256::new();
        let mut buf = vec![0u8; 256 << 10];
        let mut read: u64 = 0;
        let mut file = file.take(d.size.saturating_add(1));
        loop {
            let n = file.read(&mut buf).map_err(failed)?;
            if n == 0 {
                break;
            }
            read += n as u64;
            if read > d.size {
                bail!(
                    "blob `{}` grew past its descriptor's {} bytes",
                    d.digest,
                    d.size
                );
            }
            hasher.update(&buf[..n]);
            sink(&buf[..n])?;
        }
        if read != d.size {
            bail!(
                "blob `{}` has {read} bytes, its descriptor says {}",
                d.digest,
                d.size
            );
        }
        check_hash(
            d,
            &format!("sha256:{}", crate::cache::hex(&hasher.finalize())),
        )
    }

    /// The path of a blob whose descriptor is within `limit` and matches
    /// the file's size.
    fn checked_blob_path(&self, d: &Descriptor, limit: u64) -> Result<PathBuf> {
        let path = blob_path(&self.dir, &d.digest)?;
        if d.size > limit {
            bail!(
                "blob `{}` declares {} bytes, over the limit of {limit}",
                d.digest,
                d.size
            );
        }
        let meta = std::fs::symlink_metadata(&path)
            .with_context(|| format!("missing blob `{}`", d.digest))?;
        if !meta.file_type().is_file() {
            bail!("blob `{}` is not a regular file", d.digest);
        }
        if meta.len() != d.size {
            bail!(
                "blob `{}` has {} bytes, its descriptor says {}",
                d.digest,
                meta.len(),
                d.size
            );
        }
        Ok(path)
    }

    /// Reads `index.json` within the default limits.
    pub fn read_index(&self) -> Result<Index> {
        self.read_index_with(&ReadLimits::default())
    }

    /// Reads `index.json` within `limits` (size, JSON depth, entries).
    pub fn read_index_with(&self, limits: &ReadLimits) -> Result<Index> {
        let path = self.dir.join("index.json");
        let meta = std::fs::symlink_metadata(&path).with_context(|| {
            format!(
                "`{}` is not an OCI layout (no index.json)",
                self.dir.display()
            )
        })?;
        if !meta.file_type().is_file() {
            bail!("`{}` is not a regular file", path.display());
        }
        let bytes = read_regular(&path, limits.max_manifest_bytes)
            .with_context(|| format!("failed to read `{}`", path.display()))?;
        let index: Index = limits
            .parse_json(&bytes)
            .with_context(|| format!("`{}` is not a valid OCI index", path.display()))?;
        limits.check_entries(index.manifests.len())?;
        Ok(index)
    }

    /// Writes a blob unless an identical one is there.
    pub fn write_blob(&self, blob: &Blob) -> Result<()> {
        let path = blob_path(&self.dir, &blob.descriptor.digest)?;
        if self.read_blob(&blob.descriptor, u64::MAX).is_ok() {
            return Ok(());
        }
        write_atomically(&path, &blob.bytes)
    }

    /// Writes `index.json` (last, atomically).
    pub fn write_index(&self, index: &Index) -> Result<()> {
        write_atomically(&self.dir.join("index.json"), &serde_json::to_vec(index)?)
    }
}

/// Reads a file of the layout that must be a regular file of at most
/// `limit` bytes. Opened without following a symlink and without blocking
/// (a FIFO or device in a hostile layout must not hang or flood the read),
/// checked on the open descriptor, and read no further than the limit.
fn read_regular(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = open_regular(path, limit)?;
    let mut bytes = Vec::with_capacity(file.metadata()?.len().min(limit) as usize);
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::other(format!(
            "over the limit of {limit} bytes"
        )));
    }
    Ok(bytes)
}

/// Fails unless `actual` is the descriptor's digest.
fn check_hash(d: &Descriptor, actual: &str) -> Result<()> {
    if actual != d.digest {
        bail!(
            "blob `{}` does not match its digest (it hashes to `{actual}`)",
            d.digest
        );
    }
    Ok(())
}

/// Opens a regular file of at most `limit` bytes (see [`read_regular`]).
fn open_regular(path: &Path, limit: u64) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            Some(libc::ELOOP) => std::io::Error::other("a symlink, not a regular file"),
            _ => e,
        })?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    if meta.len() > limit {
        return Err(std::io::Error::other(format!(
            "{} bytes, over the limit of {limit}",
            meta.len()
        )));
    }
    Ok(file)
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = path.parent().expect("layout paths have a parent");
    std::fs::create_dir_all(dir)
        .with_context(|| format!("failed to create `{}`", dir.display()))?;
    let name = path.file_name().expect("a file name").to_string_lossy();
    let tmp = dir.join(format!(".{name}.{}.tmp", unique()));
    // A new file, never through a symlink planted at the temporary name.
    let result = {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .custom_flags(libc::O_NOFOLLOW)
            .mode(0o644)
            .open(&tmp)
            // On disk before it has its name: a power cut after the rename
            // must not leave a named file with no content.
            .and_then(|mut f| f.write_all(bytes).and_then(|()| f.sync_all()))
    }
    .and_then(|()| std::fs::rename(&tmp, path))
    .with_context(|| format!("failed to write `{}`", path.display()));
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Makes the names in a directory (renames into it) durable.
fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("failed to sync `{}`", dir.display()))
}

/// Whether two platforms are the same slot of an index: architecture, os,
/// and variant. `os.features` are requirements, not identity: a rebuilt
/// wasip2 component replaces the old wasip2 entry even if its features moved.
/// Whether two entries are for the same platform: os, architecture,
/// variant, os.version and `os.features` (as a set). Two builds for one
/// `os` that need different features (a lean one, one that needs
/// `wasi:http`) are different platforms, as containerd's matcher treats
/// them.
fn same_slot(a: &Descriptor, b: &Descriptor) -> bool {
    fn features(p: &crate::platform::Platform) -> Vec<&String> {
        let mut f: Vec<&String> = p.os_features.iter().collect();
        f.sort();
        f.dedup();
        f
    }
    match (&a.platform, &b.platform) {
        (Some(x), Some(y)) => {
            x.architecture == y.architecture
                && x.os == y.os
                && x.variant == y.variant
                && x.os_version == y.os_version
                && features(x) == features(y)
        }
        _ => false,
    }
}

/// Checks that `oci-layout` marks `layout` as an OCI layout of version 1.0.0.
fn check_marker(layout: &Layout) -> Result<()> {
    let marker = layout.dir().join("oci-layout");
    let text = read_regular(&marker, 4096).with_context(|| {
        format!(
            "`{}` exists but is not an OCI layout (no readable oci-layout file)",
            layout.dir().display()
        )
    })?;
    let version = serde_json::from_slice::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v.get("imageLayoutVersion")?.as_str().map(String::from));
    if version.as_deref() != Some("1.0.0") {
        bail!(
            "`{}` is not an oci-layout file of version 1.0.0",
            marker.display()
        );
    }
    Ok(())
}

/// Opens an existing layout for reading: `oci-layout` and `index.json` must be valid.
pub fn open(dir: &Path) -> Result<(Layout, Index)> {
    open_with(dir, &ReadLimits::default())
}

/// [`open`] within `limits`.
pub fn open_with(dir: &Path, limits: &ReadLimits) -> Result<(Layout, Index)> {
    let layout = Layout::new(dir);
    check_marker(&layout)?;
    // Blobs are opened without following a final symlink; the directories
    // above them must not be symlinks either, or reads and writes would
    // leave the layout.
    for sub in ["blobs", "blobs/sha256"] {
        let path = dir.join(sub);
        match std::fs::symlink_metadata(&path) {
            Ok(m) if !m.file_type().is_dir() => {
                bail!("`{}` is not a directory (a symlink?)", path.display())
            }
            _ => {}
        }
    }
    let index = layout.read_index_with(limits)?;
    Ok((layout, index))
}

/// The entries already under `tag` in a layout: an index's entries, or one
/// manifest that has a platform.
fn entries_under(layout: &Layout, top: &Index, tag: &str) -> Result<Vec<Descriptor>> {
    let Some(old) = top
        .manifests
        .iter()
        .find(|d| d.annotations.get(REF_NAME).map(String::as_str) == Some(tag))
    else {
        return Ok(vec![]);
    };
    Ok(match old.media_type.as_str() {
        INDEX_MEDIA_TYPE => {
            let bytes = layout.read_blob(old, MAX_MANIFEST_BYTES)?;
            let index: Index = ReadLimits::default().parse_json(&bytes).with_context(|| {
                format!("index `{}` of tag `{tag}` is not valid JSON", old.digest)
            })?;
            index.manifests
        }
        MANIFEST_MEDIA_TYPE if old.platform.is_some() => vec![Descriptor {
            annotations: BTreeMap::new(),
            ..old.clone()
        }],
        _ => vec![],
    })
}

/// Writes builds into the layout under `tag`: one manifest each, gathered in
/// an image index that `index.json` names by `org.opencontainers.image.ref.name`.
/// Other tags, and other platforms already under this tag, are kept; an entry
/// for the same platform (os, architecture and `os.features`: see
/// `same_slot`) is replaced, so builds for one `os` that need different
/// features sit side by side. Returns the image index's descriptor and the
/// index itself.
pub fn tag(dir: &Path, tag: &str, artifacts: &[Artifact]) -> Result<(Descriptor, Index)> {
    for (i, a) in artifacts.iter().enumerate() {
        if artifacts[..i].iter().any(|b| same_slot(&a.entry, &b.entry)) {
            let p = a.entry.platform.as_ref().expect("entries have platforms");
            bail!(
                "two inputs are for the same platform `{}/{}` with the same os.features ({}); \
                 an index holds one build per platform",
                p.os,
                p.architecture,
                if p.os_features.is_empty() {
                    "none".to_string()
                } else {
                    p.os_features.join(", ")
                }
            );
        }
    }
    // The tag's index is worked out from what the layout holds under the
    // lock, so two runs adding platforms to one tag both keep theirs.
    let merged = |old: Vec<Descriptor>| -> Result<(Index, Blob)> {
        let mut entries = old;
        for a in artifacts {
            match entries.iter().position(|e| same_slot(e, &a.entry)) {
                Some(i) => entries[i] = a.entry.clone(),
                None => entries.push(a.entry.clone()),
            }
        }
        let index = Index {
            manifests: entries,
            ..Index::empty()
        };
        let blob = Blob::new(INDEX_MEDIA_TYPE, serde_json::to_vec(&index)?);
        Ok((index, blob))
    };
    let blobs_with = |index_blob: &Blob| -> Vec<Blob> {
        let mut blobs = Vec::new();
        for a in artifacts {
            blobs.extend([a.layer.clone(), a.config.clone(), a.manifest.clone()]);
        }
        blobs.push(index_blob.clone());
        blobs
    };
    loop {
        if dir.exists() {
            let _lock = DirLock::exclusive(dir)?;
            let (layout, top) = open(dir)?;
            let (index, index_blob) = merged(entries_under(&layout, &top, tag)?)?;
            let blobs = blobs_with(&index_blob);
            let refs: Vec<&Blob> = blobs.iter().collect();
            let d = write_into(
                &layout,
                Some(top),
                tag,
                &refs,
                &index_blob.descriptor,
                &mut |_| Ok(()),
            )?;
            return Ok((d, index));
        }
        let (index, index_blob) = merged(vec![])?;
        let blobs = blobs_with(&index_blob);
        let refs: Vec<&Blob> = blobs.iter().collect();
        if let Some(d) = create(dir, tag, &refs, &index_blob.descriptor, &mut |_| Ok(()))? {
            return Ok((d, index));
        }
    }
}

/// Writes blobs into the layout at `dir` (creating it if missing) and names
/// `root` (one of them, a manifest or index) `tag` in `index.json`,
/// replacing what the tag named before and keeping every other entry.
/// Blobs go first and `index.json` last, each atomically; a new layout is
/// built beside `dir` and renamed into place, so a failure leaves nothing.
/// Returns `root`'s descriptor as `index.json` lists it.
pub fn write_tagged(
    dir: &Path,
    tag: &str,
    blobs: &[&Blob],
    root: &Descriptor,
) -> Result<Descriptor> {
    write_tagged_with_hook(dir, tag, blobs, root, &mut |_| Ok(()))
}

/// [`write_tagged`], calling `before` ahead of each write step (each blob,
/// `oci-layout`, `index.json`, the rename of a new layout) with a name for
/// the step: an error from it aborts the write there, as a crash would. For
/// tests of crash safety.
#[doc(hidden)]
pub fn write_tagged_with_hook(
    dir: &Path,
    tag: &str,
    blobs: &[&Blob],
    root: &Descriptor,
    before: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<Descriptor> {
    loop {
        if dir.exists() {
            // One writer at a time: the index is read and replaced under the lock.
            let _lock = DirLock::exclusive(dir)?;
            let (layout, top) = open(dir)?;
            return write_into(&layout, Some(top), tag, blobs, root, before);
        }
        if let Some(d) = create(dir, tag, blobs, root, before)? {
            return Ok(d);
        }
    }
}

/// Builds a new layout beside `dir` and renames it into place. `None` when
/// another writer created `dir` first (the caller adds to it instead).
fn create(
    dir: &Path,
    tag: &str,
    blobs: &[&Blob],
    root: &Descriptor,
    before: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<Option<Descriptor>> {
    let parent = dir
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = dir
        .file_name()
        .context("the layout path has no name")?
        .to_string_lossy();
    let staging = parent.join(format!(".{name}.{}.partial", unique()));
    let written = write_into(&Layout::new(&staging), None, tag, blobs, root, before)
        .and_then(|d| before("rename").map(|()| d));
    let result = written.and_then(|d| match std::fs::rename(&staging, dir) {
        Ok(()) => sync_dir(parent).map(|()| Some(d)),
        // Another writer created the layout first.
        Err(_) if dir.is_dir() => Ok(None),
        Err(e) => Err(e).with_context(|| format!("failed to create `{}`", dir.display())),
    });
    if !matches!(result, Ok(Some(_))) {
        let _ = std::fs::remove_dir_all(&staging);
    }
    result
}

/// A name part unique to this call, for temporary files: the process id
/// alone repeats across containers (everyone is pid 1), so the time and a
/// counter are mixed in.
fn unique() -> String {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{}-{nanos:08x}-{n}", std::process::id())
}

/// An exclusive `flock` on a layout directory, released when dropped (or
/// when the process dies, so a crashed writer never wedges the layout).
struct DirLock {
    _file: std::fs::File,
}

impl DirLock {
    fn exclusive(dir: &Path) -> Result<DirLock> {
        use std::os::fd::AsRawFd;
        let file = std::fs::File::open(dir)
            .with_context(|| format!("failed to open `{}` to lock it", dir.display()))?;
        // SAFETY: flock on a descriptor we own; no memory is involved.
        let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error())
                .with_context(|| format!("failed to lock `{}`", dir.display()));
        }
        Ok(DirLock { _file: file })
    }
}

fn write_into(
    layout: &Layout,
    top: Option<Index>,
    tag: &str,
    blobs: &[&Blob],
    root: &Descriptor,
    before: &mut dyn FnMut(&str) -> Result<()>,
) -> Result<Descriptor> {
    let existing = top.is_some();
    let mut top = top.unwrap_or_else(Index::empty);
    for blob in blobs {
        before(&blob.descriptor.digest)?;
        layout.write_blob(blob)?;
    }
    // The blobs' names are durable before an index can name them.
    let blob_dir = layout.dir().join("blobs/sha256");
    if !blobs.is_empty() && blob_dir.is_dir() {
        sync_dir(&blob_dir)?;
    }
    if !existing {
        before("oci-layout")?;
        write_atomically(
            &layout.dir().join("oci-layout"),
            br#"{"imageLayoutVersion":"1.0.0"}"#,
        )?;
    }
    let mut descriptor = Descriptor {
        platform: None,
        annotations: BTreeMap::new(),
        ..root.clone()
    };
    descriptor.annotations.insert(REF_NAME.into(), tag.into());
    top.manifests
        .retain(|d| d.annotations.get(REF_NAME).map(String::as_str) != Some(tag));
    top.manifests.push(descriptor.clone());
    top.media_type
        .get_or_insert_with(|| INDEX_MEDIA_TYPE.into());
    before("index.json")?;
    layout.write_index(&top)?;
    sync_dir(layout.dir())?;
    Ok(descriptor)
}
