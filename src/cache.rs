//! A compile cache for precompiled components that is safe to load.
//!
//! Loading precompiled code (`Component::deserialize`) is `unsafe`: the bytes
//! become machine code. So an entry is only handed out when
//! - it is a regular file (never followed through a symlink) owned by the
//!   current user and writable by no one else, and
//! - its length and SHA-256 checksum, written by worldfit in the entry's
//!   header, match its payload.
//!
//! Anything else (corrupt, truncated, foreign, tampered) is discarded and the
//! caller rebuilds. Writers write a temporary file in the same directory and
//! rename it into place, so concurrent writers never leave a torn entry.

use anyhow::{Context, Result, bail};
use sha2::{Digest, Sha256};
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

const MAGIC: &[u8; 16] = b"worldfit-cache\0\x01";
const HEADER: usize = 16 + 8 + 32;

/// Hex-encoded SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(bytes: &[u8]) -> String {
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

    /// The file an entry lives in. Keys are made by the caller from hex
    /// digests; anything else is refused so a key can't name a path.
    fn path(&self, key: &str) -> Result<PathBuf> {
        if key.is_empty() || !key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            bail!("invalid cache key `{key}`");
        }
        Ok(self.dir.join(format!("{key}.cwasm")))
    }

    /// Loads and verifies an entry's payload.
    pub fn load(&self, key: &str) -> Result<Result<Vec<u8>, Miss>> {
        let path = self.path(key)?;
        let file = match OpenOptions::new().read(true).custom_flags(libc::O_NOFOLLOW).open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Err(Miss::Absent)),
            // O_NOFOLLOW on a symlink gives ELOOP: treat as a foreign entry.
            Err(e) => return Ok(Err(self.discard(&path, format!("cannot open: {e}")))),
        };
        match verify(file) {
            Ok(payload) => Ok(Ok(payload)),
            Err(reason) => Ok(Err(self.discard(&path, reason))),
        }
    }

    fn discard(&self, path: &Path, reason: String) -> Miss {
        let _ = std::fs::remove_file(path);
        Miss::Discarded(reason)
    }

    /// Stores a payload under a key: write a private temporary file, then
    /// rename it into place.
    pub fn store(&self, key: &str, payload: &[u8]) -> Result<()> {
        let path = self.path(key)?;
        std::fs::create_dir_all(&self.dir)
            .with_context(|| format!("failed to create cache directory `{}`", self.dir.display()))?;
        let tmp = self.dir.join(format!(".{key}.{}.{}.tmp", std::process::id(), unique()));
        let result = (|| -> Result<()> {
            let mut f = OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(0o600)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&tmp)
                .with_context(|| format!("failed to create `{}`", tmp.display()))?;
            f.write_all(MAGIC)?;
            f.write_all(&(payload.len() as u64).to_le_bytes())?;
            f.write_all(&Sha256::digest(payload))?;
            f.write_all(payload)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &path).with_context(|| format!("failed to rename into `{}`", path.display()))?;
            Ok(())
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result
    }
}

fn unique() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    (u64::from(nanos) << 20) ^ COUNTER.fetch_add(1, Ordering::Relaxed)
}

/// Checks ownership, mode, length and checksum; returns the payload.
fn verify(mut file: File) -> Result<Vec<u8>, String> {
    let meta = file.metadata().map_err(|e| format!("cannot stat: {e}"))?;
    if !meta.file_type().is_file() {
        return Err("not a regular file".into());
    }
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    if meta.uid() != uid {
        return Err(format!("owned by uid {}, not {uid}", meta.uid()));
    }
    if meta.permissions().mode() & 0o022 != 0 {
        return Err(format!("writable by others (mode {:o})", meta.permissions().mode() & 0o777));
    }
    let len = meta.len() as usize;
    if len < HEADER {
        return Err("truncated header".into());
    }
    let mut bytes = Vec::with_capacity(len);
    file.read_to_end(&mut bytes).map_err(|e| format!("cannot read: {e}"))?;
    if &bytes[..16] != MAGIC {
        return Err("not a worldfit cache entry".into());
    }
    let declared = u64::from_le_bytes(bytes[16..24].try_into().expect("8 bytes")) as usize;
    if declared != bytes.len() - HEADER {
        return Err(format!("length {} does not match header {declared}", bytes.len() - HEADER));
    }
    if Sha256::digest(&bytes[HEADER..]).as_slice() != &bytes[24..HEADER] {
        return Err("checksum mismatch".into());
    }
    bytes.drain(..HEADER);
    Ok(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_rejects_damage() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path().join("c"));
        assert_eq!(cache.load("k1").unwrap(), Err(Miss::Absent));
        cache.store("k1", b"payload").unwrap();
        assert_eq!(cache.load("k1").unwrap(), Ok(b"payload".to_vec()));

        // A flipped payload byte fails the checksum and is removed.
        let path = dir.path().join("c/k1.cwasm");
        let mut bytes = std::fs::read(&path).unwrap();
        *bytes.last_mut().unwrap() ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(matches!(cache.load("k1").unwrap(), Err(Miss::Discarded(r)) if r == "checksum mismatch"));
        assert!(!path.exists());

        // Truncated.
        cache.store("k2", b"payload").unwrap();
        let path2 = dir.path().join("c/k2.cwasm");
        let bytes = std::fs::read(&path2).unwrap();
        std::fs::write(&path2, &bytes[..bytes.len() - 1]).unwrap();
        assert!(matches!(cache.load("k2").unwrap(), Err(Miss::Discarded(_))));

        // Group-writable.
        cache.store("k3", b"payload").unwrap();
        let path3 = dir.path().join("c/k3.cwasm");
        std::fs::set_permissions(&path3, std::fs::Permissions::from_mode(0o664)).unwrap();
        assert!(matches!(cache.load("k3").unwrap(), Err(Miss::Discarded(r)) if r.contains("writable by others")));

        // A symlink to a valid entry elsewhere is never followed.
        cache.store("k4", b"payload").unwrap();
        std::os::unix::fs::symlink(dir.path().join("c/k4.cwasm"), dir.path().join("c/k5.cwasm")).unwrap();
        assert!(matches!(cache.load("k5").unwrap(), Err(Miss::Discarded(_))));

        // Keys can't name paths.
        assert!(cache.load("../x").is_err());
    }
}
