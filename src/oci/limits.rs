//! How much of an image worldfit will read, and how deep its JSON and its
//! indexes may nest. Registries and layouts are untrusted: every limit is
//! checked against a descriptor's declared size (or a response's
//! `Content-Length`) before a byte is read, and against the bytes as they
//! arrive; JSON nesting is measured by a scan before the parser (whose
//! recursion allocates) sees the document.

use anyhow::{Result, bail};
use serde::Deserialize;

/// Read limits. The defaults are documented in docs/LIMITS.md.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadLimits {
    /// Largest wasm layer (or other blob) read: 1 GiB.
    pub max_layer_bytes: u64,
    /// Most bytes one filesystem layer may unpack to (decompressed tar,
    /// headers included) while worldfit looks for the entrypoint file in
    /// it: 1 GiB. A decompression bomb stops here.
    pub max_unpacked_bytes: u64,
    /// Largest config blob read: 4 MiB.
    pub max_config_bytes: u64,
    /// Largest manifest, index or `index.json` read: 4 MiB, as distribution allows.
    pub max_manifest_bytes: u64,
    /// Most entries in one index: 100,000.
    pub max_index_entries: usize,
    /// Deepest JSON nesting (arrays and objects) in any document: 64.
    pub max_json_depth: usize,
    /// Deepest chain of indexes (an index of indexes of ...): 4.
    pub max_index_depth: usize,
}

impl Default for ReadLimits {
    fn default() -> Self {
        ReadLimits {
            max_layer_bytes: 1 << 30,
            max_unpacked_bytes: 1 << 30,
            max_config_bytes: 4 << 20,
            max_manifest_bytes: 4 << 20,
            max_index_entries: 100_000,
            max_json_depth: 64,
            max_index_depth: 4,
        }
    }
}

/// Fails if `bytes`, read as JSON, nests arrays and objects deeper than
/// `max`. A linear scan that skips strings; it doesn't validate the JSON
/// (the parser does that next).
///
/// Most of an index is strings (digests, media types, names), so the scan
/// jumps from quote to quote with one vectorized search over the whole
/// document and looks at bytes one by one only between strings.
pub fn check_json_depth(bytes: &[u8], max: usize) -> Result<()> {
    let mut depth = 0usize;
    let mut structure = |segment: &[u8]| -> Result<()> {
        for &b in segment {
            match b {
                b'[' | b'{' => {
                    depth += 1;
                    if depth > max {
                        bail!("JSON nests deeper than the limit of {max} levels");
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        Ok(())
    };
    let mut in_string = false;
    // Where the current run of bytes outside strings starts.
    let mut outside = 0;
    for q in memchr::memchr_iter(b'"', bytes) {
        if in_string {
            // A quote after an odd run of backslashes is escaped. Each run
            // is counted once (by the quote right after it): linear overall.
            let run = bytes[..q].iter().rev().take_while(|&&b| b == b'\\').count();
            if run % 2 == 1 {
                continue;
            }
            in_string = false;
            outside = q + 1;
        } else {
            structure(&bytes[outside..q])?;
            in_string = true;
        }
    }
    if !in_string {
        structure(&bytes[outside..])?;
    }
    // An unterminated string is the parser's problem.
    Ok(())
}

impl ReadLimits {
    /// Parses JSON after checking its nesting depth.
    /// What it parses may borrow from `bytes`.
    pub fn parse_json<'a, T: Deserialize<'a>>(&self, bytes: &'a [u8]) -> Result<T> {
        check_json_depth(bytes, self.max_json_depth)?;
        Ok(serde_json::from_slice(bytes)?)
    }

    /// Fails if an index lists more entries than allowed.
    pub fn check_entries(&self, n: usize) -> Result<()> {
        if n > self.max_index_entries {
            bail!(
                "the index lists {n} entries, over the limit of {}",
                self.max_index_entries
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_at_and_over_the_limit() {
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(check_json_depth(nested(64).as_bytes(), 64).is_ok());
        assert!(check_json_depth(nested(65).as_bytes(), 64).is_err());
        // Brackets inside strings don't count, escaped quotes don't end them.
        let s = format!(r#"{{"a":"{}\"[[["}}"#, "[".repeat(100));
        assert!(check_json_depth(s.as_bytes(), 1).is_ok());
        // Unterminated strings and a trailing escape are the parser's problem.
        assert!(check_json_depth(br#"["abc\"#, 1).is_ok());
        assert!(check_json_depth(br#"["abc"#, 1).is_ok());
        assert!(check_json_depth(br#"["a\"]"]"#, 1).is_ok());
        // 200,000 deep fails fast, without recursion.
        assert!(check_json_depth(nested(200_000).as_bytes(), 64).is_err());
    }

    /// The plain byte-at-a-time scan the vectorized one must agree with.
    fn reference_depth_ok(bytes: &[u8], max: usize) -> bool {
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        for &b in bytes {
            if in_string {
                match (escaped, b) {
                    (true, _) => escaped = false,
                    (false, b'\\') => escaped = true,
                    (false, b'"') => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > max {
                        return false;
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        true
    }

    proptest::proptest! {
        #[test]
        fn agrees_with_the_plain_scan(
            text in proptest::collection::vec(
                proptest::sample::select(b"[]{}\"\\ab,:".to_vec()), 0..200),
            max in 0usize..8,
        ) {
            proptest::prop_assert_eq!(
                check_json_depth(&text, max).is_ok(),
                reference_depth_ok(&text, max)
            );
        }
    }

    #[test]
    fn entries_at_and_over_the_limit() {
        let l = ReadLimits {
            max_index_entries: 3,
            ..ReadLimits::default()
        };
        assert!(l.check_entries(3).is_ok());
        assert!(l.check_entries(4).is_err());
    }
}
