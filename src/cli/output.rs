//! Shared output helpers: JSON printing and aligned tables for people.

use anyhow::Result;
use serde::Serialize;
use std::io::Write;

/// Prints a value as pretty JSON on stdout, with a trailing newline.
pub fn print_json<T: Serialize>(value: &T) -> Result<()> {
    // Serialized first, so a closed pipe surfaces as an io::Error (which
    // main treats as a normal end), not wrapped in a serde error.
    let mut text = serde_json::to_string_pretty(value)?;
    text.push('\n');
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// Renders rows as columns padded to the widest cell; the last column is not padded.
pub fn table(rows: &[Vec<String>], indent: &str) -> String {
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    // A row's last cell is never padded, so it doesn't widen its column.
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter(|r| c + 1 < r.len())
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        out.push_str(indent);
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == row.len() {
                out.push_str(cell);
            } else {
                out.push_str(cell);
                out.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
            }
        }
        out.push('\n');
    }
    out
}

/// Writes text to stdout.
pub fn print(text: &str) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(text.as_bytes())?;
    out.flush()?;
    Ok(())
}

/// `word` as one shell word, quoted only when it needs to be: next-step
/// commands embed paths, and a socket or layout path with a space must
/// still paste as one argument.
#[cfg(feature = "registry")]
pub fn shell_word(word: &str) -> std::borrow::Cow<'_, str> {
    // Only a NUL can't be quoted, and no path holds one.
    shlex::try_quote(word).unwrap_or(std::borrow::Cow::Borrowed(word))
}

#[cfg(all(test, feature = "registry"))]
mod tests {
    use super::shell_word;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(
            shell_word("/run/containerd/containerd.sock"),
            "/run/containerd/containerd.sock"
        );
        assert_eq!(shell_word("./oci:1.0"), "./oci:1.0");
        assert_eq!(shell_word("/tmp/my dir/oci:1.0"), "'/tmp/my dir/oci:1.0'");
        assert_eq!(shell_word("it's"), r#""it's""#);
    }
}
