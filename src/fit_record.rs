//! Remembered fits: "the layer with this digest fits this world of the
//! built-in host", kept as a record in the compile cache, so a warm
//! selection doesn't decode the layer again.
//!
//! Why: decoding an 18 MB component's world and checking its types costs
//! 12–20 ms, the largest step left after the fetch of a warm selection that
//! otherwise maps its compiled artifact from the same cache. The fit is a
//! pure function of three things, and the record's key names all three:
//! - the layer's bytes, by the SHA-256 they were verified against as they
//!   were read;
//! - the host: only the built-in profile is remembered, fingerprinted by
//!   its embedded WIT and world list (a user's WIT host isn't confirmed, and
//!   hashing its resolve would cost what the record saves);
//! - the checker: worldfit's version.
//!
//! Only fits are remembered, and only where the selection then instantiates
//! the layer in the embedded wasmtime, which checks the imports against the
//! real linker regardless; a layer that doesn't fit is decoded every time,
//! so its problems are always listed fresh. A record naming a world the host
//! doesn't have is removed and ignored. Records share the cache's
//! protections (a private directory, owner and mode checks, no symlinks).

use crate::cache::CompileCache;
use crate::host::{BUILTIN_WORLDS, Host, builtin_wit};
use std::sync::OnceLock;

const TAG: &str = "worldfit-fit-v1";

/// The record's key: the layer digest and the host fingerprint.
fn key(layer_sha256_hex: &str) -> String {
    format!("fit-{layer_sha256_hex}-{}", builtin_fingerprint())
}

/// A hash of worldfit's version, the embedded WIT and the built-in worlds.
fn builtin_fingerprint() -> &'static str {
    static FINGERPRINT: OnceLock<String> = OnceLock::new();
    FINGERPRINT.get_or_init(|| {
        let mut h = blake3::Hasher::new();
        let mut add = |part: &str| {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        };
        add(env!("CARGO_PKG_VERSION"));
        for (name, text) in builtin_wit() {
            add(name);
            add(text);
        }
        BUILTIN_WORLDS.iter().for_each(|w| add(w));
        h.finalize().to_hex()[..16].to_string()
    })
}

/// The host world a layer was found to fit before, if remembered for this
/// host. `None` for any host but the built-in one.
pub(crate) fn recall(host: &Host, layer_sha256_hex: &str, cache: &CompileCache) -> Option<String> {
    if !host.builtin {
        return None;
    }
    let key = key(layer_sha256_hex);
    let text = cache.load_record(&key)?;
    let world = text
        .strip_suffix('\n')
        .and_then(|t| t.strip_prefix(TAG))
        .and_then(|t| t.strip_prefix(' '))
        .filter(|w| host.worlds.iter().any(|hw| hw.name == *w));
    if world.is_none() {
        cache.remove_record(&key);
    }
    world.map(str::to_string)
}

/// Remembers that a layer fits `world` of the built-in host. Best effort: a
/// cache that can't be written only means the next run decodes again (the
/// compile cache reports unwritable directories already).
pub(crate) fn remember(host: &Host, layer_sha256_hex: &str, world: &str, cache: &CompileCache) {
    if host.builtin {
        let _ = cache.store_record(&key(layer_sha256_hex), &format!("{TAG} {world}\n"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DIGEST: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn remembers_fits_of_the_builtin_host_only() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path());
        let host = Host::wasmtime();
        let world = host.worlds[1].name.clone();
        assert_eq!(recall(&host, DIGEST, &cache), None);
        remember(&host, DIGEST, &world, &cache);
        assert_eq!(recall(&host, DIGEST, &cache), Some(world.clone()));
        // Another layer, and another host, recall nothing.
        assert_eq!(recall(&host, &DIGEST.replace('0', "f"), &cache), None);
        let mut other = Host::wasmtime();
        other.builtin = false;
        assert_eq!(recall(&other, DIGEST, &cache), None);
        remember(&other, &DIGEST.replace('0', "e"), &world, &cache);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_record_naming_a_world_the_host_lacks_is_removed() {
        let dir = tempfile::tempdir().unwrap();
        let cache = CompileCache::new(dir.path());
        let host = Host::wasmtime();
        remember(&host, DIGEST, "wasi:cli/command@0.2.0", &cache);
        assert_eq!(recall(&host, DIGEST, &cache), None);
        assert_eq!(cache.load_record(&key(DIGEST)), None);
        // A record in another format is removed too.
        cache
            .store_record(&key(DIGEST), "worldfit-fit-v0 x\n")
            .unwrap();
        assert_eq!(recall(&host, DIGEST, &cache), None);
        assert_eq!(cache.load_record(&key(DIGEST)), None);
    }
}
