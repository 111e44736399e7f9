//! Strips the comments from the WIT of the built-in host profile before it
//! is embedded (`src/host/embedded.rs`), and lists the host profiles of the
//! catalog (`hosts/`, `src/host/catalog.rs`).
//!
//! Why: every process that uses the built-in host parses this WIT (about
//! 240 KB), and its doc comments are more than half the text and a third of
//! the parse (about 3 of 9 ms at every start of a warm `select`); worldfit
//! never reads the docs of the built-in profile. The files under `wit/` stay
//! the documented source; lines are kept, so positions still match them.
//! WIT has no string literals, so `//` always starts a comment.

use std::path::{Path, PathBuf};

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    // A directory is scanned whole: any change under `wit/` reruns this.
    println!("cargo::rerun-if-changed=wit");
    catalog(&out);
    for dir in ["wit", "wit/deps"] {
        std::fs::create_dir_all(out.join(dir)).expect("create the WIT directory in OUT_DIR");
        for entry in std::fs::read_dir(dir).expect("read the WIT directory") {
            let path = entry.expect("list the WIT directory").path();
            if path.extension().is_some_and(|e| e == "wit") {
                std::fs::write(out.join(&path), strip_comments(&read(&path)))
                    .expect("write the stripped WIT");
            }
        }
    }
}

/// Lists the host profiles under `hosts/` for `src/host/catalog.rs`, which
/// embeds them: adding a probed profile is adding its file.
fn catalog(out: &Path) {
    println!("cargo::rerun-if-changed=hosts");
    let mut files: Vec<PathBuf> = std::fs::read_dir("hosts")
        .expect("read hosts/")
        .map(|e| e.expect("list hosts/").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    let mut code = String::from("&[\n");
    for f in files {
        let abs = std::fs::canonicalize(&f).expect("hosts/ file path");
        code.push_str(&format!(
            "    ({:?}, include_str!({:?})),\n",
            f.file_name().unwrap().to_string_lossy(),
            abs.display().to_string()
        ));
    }
    code.push_str("]\n");
    std::fs::write(out.join("catalog.rs"), code).expect("write the catalog list");
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

fn strip_comments(text: &str) -> String {
    let mut out = String::with_capacity(text.len() / 2);
    for line in text.lines() {
        let code = line.find("//").map_or(line, |i| &line[..i]);
        out.push_str(code.trim_end());
        out.push('\n');
    }
    out
}
