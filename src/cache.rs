//! A compile cache for precompiled components that is safe to load.
//!
//! Loading precompiled code (`Component::deserialize_file`) is `unsafe`: the
//! bytes become machine code. So an entry is only handed out when
//! - the cache directory and both files of the entry are owned by the current
//!   user and writable by no one else, and the files are regular files opened
//!   without following symlinks;
//! - the artifact's length and BLAKE3 checksum match what worldfit wrote
//!   beside it (`KEY.sum`) when it stored it.
//!
//! The artifact itself (`KEY.cwasm`) is exactly what wasmtime serialized, so
//! wasmtime can map it from disk instead of copying it (a warm load of a
//! 46 MB artifact then costs a checksum pass, not a copy plus a checksum).
//! Anything else — corrupt, truncated, foreign, tampered — is discarded and
//! the caller rebuilds. Writers write temporary files in the same directory
//! and rename them into place (artifact first, checksum last), so concurrent
//! writers never leave a torn entry: at worst a checksum that doesn't match,
//! which is discarded.

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const SUM_TAG: &str = "worldfit-cache-v1 blake3";

/// The largest record [`CompileCache::load_record`] reads.
pub const RECORD_MAX_BYTES: u64 = 4096;

/// Hex-encoded SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Lowercase hex of bytes (a digest's text form).
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Why an entry was not used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// No entry for the key.
    Absent,
    /// An entry existed but failed a check; it was removed.
    Discarded(String),
}

/// A directory of verified precompiled artifacts.
#[derive(Debug, Clone)]
pub struct CompileCache {
    dir: PathBuf,
}

impl CompileCache {
    /// A cache in `dir` (created on first store).
    pub fn new(dir: impl Into<PathBuf>) -> CompileCache {
        CompileCache { dir: dir.into() }
    }

    /// `$XDG_CACHE_HOME/worldfit`, else `$HOME/.cache/worldfit`.
    pub fn default_dir() -> Option<PathBuf> {
        let base = std::env::var_os("XDG_CACHE_HOME")
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
        Some(base.join("worldfit"))
    }

    /// The cache directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The artifact and checksum files of an entry. Keys are made by the
    /// caller from hex digests; anything else is refused so a key can't name
    /// a path.
    fn paths(&self, key: &str) -> Result<(PathBuf, PathBuf)> {
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            bail!("invalid cache key `{key}`");
        }
        Ok((
            self.dir.join(format!("{key}.cwasm")),
            self.dir.join(format!("{key}.sum")),
        ))
    }

    /// Verifies an entry and returns the path of its artifact, ready for
    /// wasmtime's `deserialize_file`. A failed entry is removed.
    pub fn load(&self, key: &str) -> Result<Result<PathBuf, Miss>> {
        let (artifact, sum) = self.paths(key)?;
        if !sum.exists() && !artifact.exists() {
            return Ok(Err(Miss::Absent));
        }
        match self.verify(&artifact, &sum) {
            Ok(()) => Ok(Ok(artifact)),
            Err(reason) => {
                let _ = std::fs::remove_file(&sum);
                let _ = std::fs::remove_file(&artifact);
                Ok(Err(Miss::Discarded(reason)))
            }
        }
    }

    fn verify(&self, artifact: &Path, sum: &Path) -> Result<(), String> {
        let dir = std::fs::symlink_metadata(&self.dir)
            .map_err(|e| format!("cannot stat the cache directory: {e}"))?;
        check_owner_and_mode(&dir, "the cache directory")?;
        let mut sum_file = open_private(sum)?;
        let mut text = String::new();
        (&mut sum_file)
            .take(256)
            .read_to_string(&mut text)
            .map_err(|e| format!("cannot read checksum: {e}"))?;
        let mut words = text.split_whitespace();
        let (tag1, tag2, hex, len) = (words.next(), words.next(), words.next(), words.next());
        if tag1.zip(tag2).map(|(a, b)| format!("{a} {b}")).as_deref() != Some(SUM_TAG) {
            return Err("not a worldfit checksum".into());
        }
        let len: u64 = len
            .and_then(|l| l.parse().ok())
            .ok_or("malformed checksum")?;
        let file = open_private(artifact)?;
        let actual_len = file.metadata().map_err(|e| e.to_string())?.len();
        if actual_len != len {
            return Err(format!(
                "length {actual_len} does not match the recorded {len}"
            ));
        }
        // Mapped, not read: the checksum pass then costs no copy of the
        // artifact (46 MB for the bench component), and wasmtime maps the
        // same pages right after. worldfit replaces entries by rename and
        // never rewrites one in place, so a mapped entry keeps its length
        // (wasmtime's own mapping relies on the same).
        let mut hasher = blake3::Hasher::new();
        if len > 0 {
            // SAFETY: a private regular file of this cache, opened above;
            // only read through the map while `file` is open.
            let map = unsafe { memmap2::MmapOptions::new().populate().map(&file) }
                .map_err(|e| format!("cannot map: {e}"))?;
            hasher.update(&map);
        }
        if Some(hasher.finalize().to_hex().as_str()) != hex {
            return Err("checksum mismatch".into());
        }
        Ok(())
    }

    /// Reads a small text record stored by [`CompileCache::store_record`]
    /// (at most [`RECORD_MAX_BYTES`]), under the same ownership and mode
    /// checks as artifacts. A record that fails them, or isn't UTF-8, is
    /// removed and reads as absent: records are derived facts, so a lost
    /// one is only recomputed.
    pub fn load_record(&self, key: &str) -> Option<String> {
        let path = self.record_path(key).ok()?;
        if !path.exists() {
            return None;
        }
        let read = || -> Result<String, String> {
            let dir = std::fs::symlink_metadata(&self.dir).map_err(|e| e.to_string())?;
            check_owner_and_mode(&dir, "the cache directory")?;
            let mut text = String::new();
            open_private(&path)?
                .take(RECORD_MAX_BYTES + 1)
                .read_to_string(&mut text)
                .map_err(|e| e.to_string())?;
            if text.len() as u64 > RECORD_MAX_BYTES {
                return Err("too long".into());
            }
            Ok(text)
        };
        match read() {
            Ok(text) => Some(text),
            Err(_) => {
                let _ = std::fs::remove_file(&path);
                None
            }
        }
    }

    /// Stores a small text record under a key, renamed into place.
    pub fn store_record(&self, key: &str, text: &str) -> Result<()> {
        if text.len() as u64 > RECORD_MAX_BYTES {
            bail!("cache record `{key}` is longer than {RECORD_MAX_BYTES} bytes");
        }
        let path = self.record_path(key)?;
        create_private_dir(&self.dir)?;
        write_atomically(&self.dir, key, &path, text.as_bytes())
    }

    /// Removes a record (one that turned out to be wrong for its reader).
    pub fn remove_record(&self, key: &str) {
        if let Ok(path) = self.record_path(key) {
            let _ = std::fs::remove_file(path);
        }
    }

    fn record_path(&self, key: &str) -> Result<PathBuf> {
        let (artifact, _) = self.paths(key)?;
        Ok(artifact.with_extension("record"))
    }

    /// Stores an artifact under a key: private temporary files renamed into
    /// place, the artifact first and its checksum last.
    pub fn store(&self, key: &str, payload: &[u8]) -> Result<()> {
        let (artifact, sum) = self.paths(key)?;
        create_private_dir(&self.dir)?;
        let sum_text = format!(
            "{SUM_TAG} {} {}\n",
            blake3::hash(payload).to_hex(),
            payload.len()
        );
        write_atomically(&self.dir, key, &artifact, payload)?;
        write_atomically(&self.dir, key, &sum, sum_text.as_bytes())
    }
}

fn create_private_dir(dir: &Path) -> Result<()> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("failed to create cache directory `{}`", dir.display()))
}

fn write_atomically(dir: &Path, key: &str, dest: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = dir.join(format!(".{key}.{}.{}.tmp", std::process::id(), unique()));
    let result = (|| -> Result<()> {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .with_context(|| format!("failed to create `{}`", tmp.display()))?;
        // No fsync: a crash can leave a short or empty file, but the checksum
        // catches that and the entry is rebuilt; syncing 46 MB would cost the
        // cold path a tenth of a second for nothing.
        f.write_all(bytes)?;
        std::fs::rename(&tmp, dest)
            .with_context(|| format!("failed to rename into `{}`", dest.display()))?;
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    (u64::from(nanos) << 20) ^ COUNTER.fetch_add(1, Ordering::Relaxed)
}

fn check_owner_and_mode(meta: &std::fs::Metadata, what: &str) -> Result<(), String> {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if meta.uid() != uid {
        return Err(format!("{what} is owned by uid {}, not {uid}", meta.uid()));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(format!(
            "{what} is writable by others (mode {:o})",
            meta.permissions().mode() & 0o777
        ));
    }
    Ok(())
}

/// Opens a file without following symlinks and checks it is a private regular file.
fn open_private(path: &Path) -> Result<File, String> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)
        .map_err(|e| format!("cannot open `{}`: {e}", path.display()))?;
    let meta = file.metadata().map_err(|e| format!("cannot stat: {e}"))?;
    if !meta.file_type().is_file() {
        return Err(format!("`{}` is not a regular file", path.display()));
    }
    check_owner_and_mode(&meta, "the entry")?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn discarded(r: Result<Result<PathBuf, Miss>>) -> String {
        match r.unwrap() {
            Err(Miss::Discarded(why)) => why,
            other => panic!("expected a discarded entry, got {other:?}"),
        }
    }

    #[test]
    fn round_trips_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path().join("c"));
        assert_eq!(cache.load("k1").unwrap(), Err(Miss::Absent));
        cache.store("k1", b"payload").unwrap();
        let path = cache.load("k1").unwrap().unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"payload");

        // A flipped byte fails the checksum, and the entry is removed.
        std::fs::write(&path, b"paYload").unwrap();
        assert_eq!(discarded(cache.load("k1")), "checksum mismatch");
        assert!(!path.exists());
        assert_eq!(cache.load("k1").unwrap(), Err(Miss::Absent));

        // Truncated.
        cache.store("k2", b"payload").unwrap();
        std::fs::write(dir.path().join("c/k2.cwasm"), b"payloa").unwrap();
        assert!(discarded(cache.load("k2")).contains("does not match"));

        // Group-writable.
        cache.store("k3", b"payload").unwrap();
        std::fs::set_permissions(
            dir.path().join("c/k3.cwasm"),
            std::fs::Permissions::from_mode(0o664),
        )
        .unwrap();
        assert!(discarded(cache.load("k3")).contains("writable by others"));

        // A symlink to a valid artifact elsewhere is never followed.
        cache.store("k4", b"payload").unwrap();
        std::fs::copy(dir.path().join("c/k4.sum"), dir.path().join("c/k5.sum")).unwrap();
        std::os::unix::fs::symlink(dir.path().join("c/k4.cwasm"), dir.path().join("c/k5.cwasm"))
            .unwrap();
        assert!(discarded(cache.load("k5")).contains("cannot open"));

        // A checksum file without an artifact, or a foreign one.
        std::fs::write(dir.path().join("c/k6.sum"), "something else").unwrap();
        std::fs::set_permissions(
            dir.path().join("c/k6.sum"),
            std::fs::Permissions::from_mode(0o600),
        )
        .unwrap();
        assert_eq!(discarded(cache.load("k6")), "not a worldfit checksum");

        // A directory others can write to is refused.
        std::fs::set_permissions(dir.path().join("c"), std::fs::Permissions::from_mode(0o777))
            .unwrap();
        assert!(discarded(cache.load("k4")).contains("cache directory is writable by others"));

        // Keys can't name paths.
        assert!(cache.load("../x").is_err());
    }

    #[test]
    fn records_round_trip_and_damaged_ones_read_as_absent() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path().join("c"));
        assert_eq!(cache.load_record("r1"), None);
        cache.store_record("r1", "a fact\n").unwrap();
        assert_eq!(cache.load_record("r1").as_deref(), Some("a fact\n"));
        let path = dir.path().join("c/r1.record");

        // Others could have written it: removed, absent.
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert_eq!(cache.load_record("r1"), None);
        assert!(!path.exists());

        // Not UTF-8, or longer than the bound: removed, absent.
        cache.store_record("r1", "x").unwrap();
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert_eq!(cache.load_record("r1"), None);
        assert!(!path.exists());
        cache.store_record("r1", "x").unwrap();
        std::fs::write(&path, vec![b'x'; RECORD_MAX_BYTES as usize + 1]).unwrap();
        assert_eq!(cache.load_record("r1"), None);
        assert!(!path.exists());
        assert!(cache.store_record("r1", &"x".repeat(5000)).is_err());

        // A symlink is never followed.
        cache.store_record("r2", "elsewhere").unwrap();
        std::os::unix::fs::symlink(dir.path().join("c/r2.record"), &path).unwrap();
        assert_eq!(cache.load_record("r1"), None);

        cache.store_record("r3", "x").unwrap();
        cache.remove_record("r3");
        assert_eq!(cache.load_record("r3"), None);
        assert!(cache.store_record("../r", "x").is_err());
    }
}
