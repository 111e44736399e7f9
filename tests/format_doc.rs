//! docs/FORMAT.md's examples are produced here from fixtures. A run fails if
//! the document differs from the code; `BLESS=1` rewrites the document.
//! (The affinity example needs `worldfit affinity`: the default features.)
#![cfg(all(feature = "registry", feature = "kubernetes"))]

mod common;

use common::{fixture, root, wat_module, worldfit_command};
use serde_json::Value;

fn pretty(v: &Value) -> String {
    serde_json::to_string_pretty(v).unwrap()
}

/// The examples, by name.
fn examples() -> Vec<(&'static str, String)> {
    let dir = tempfile::tempdir().unwrap();
    let module = dir.path().join("wasip1-hello.wasm");
    std::fs::write(&module, wat_module("wasip1-hello.wat")).unwrap();
    let hello = fixture("hello-cli.wasm");
    let layout = dir.path().join("oci");
    let out = worldfit_command()
        .env("SOURCE_DATE_EPOCH", "0")
        .args([
            "tag",
            hello.to_str().unwrap(),
            module.to_str().unwrap(),
            "--layout",
            layout.to_str().unwrap(),
            "--tag",
            "1.0",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let blob = |digest: &Value| -> Value {
        let hex = digest.as_str().unwrap().strip_prefix("sha256:").unwrap();
        serde_json::from_slice(&std::fs::read(layout.join("blobs/sha256").join(hex)).unwrap())
            .unwrap()
    };
    let index = blob(&report["digest"]);
    let manifest = blob(&index["manifests"][0]["digest"]);
    let config = blob(&manifest["config"]["digest"]);
    let inspect = worldfit_command()
        .args(["inspect", hello.to_str().unwrap(), "--json"])
        .output()
        .unwrap();
    let inspect: Value = serde_json::from_slice(&inspect.stdout).unwrap();
    let containerd = String::from_utf8(
        worldfit_command()
            .args(["inspect", hello.to_str().unwrap()])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .lines()
    .find_map(|l| {
        l.trim()
            .strip_prefix("containerd")
            .map(|s| s.trim().to_string())
    })
    .unwrap();
    assert_eq!(
        inspect["platform"], index["manifests"][0]["platform"],
        "inspect and tag agree on the platform"
    );
    // Node labels (a few of the built-in host's) and the affinity of the
    // layout above.
    let nfd = String::from_utf8(
        worldfit_command()
            .args(["host", "--format", "nfd"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .lines()
    .filter(|l| {
        l.contains("/os.") || l.contains("/wasi_cli.command") || l.contains("/wasi_http.types")
    })
    .collect::<Vec<_>>()
    .join("\n");
    let affinity = worldfit_command()
        .args(["affinity", &format!("{}:1.0", layout.display())])
        .output()
        .unwrap();
    assert_eq!(affinity.status.code(), Some(0));
    let affinity = String::from_utf8(affinity.stdout)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .collect::<Vec<_>>()
        .join("\n");
    vec![
        ("nfd", nfd),
        ("affinity", affinity),
        ("platform", pretty(&inspect["platform"])),
        ("containerd", containerd),
        ("config", pretty(&config)),
        ("manifest", pretty(&manifest)),
        ("index", pretty(&index)),
    ]
}

/// Replaces the fenced block after each `<!-- example: NAME -->` marker.
fn render(doc: &str, examples: &[(&str, String)]) -> String {
    let mut out = String::new();
    let mut lines = doc.lines().peekable();
    while let Some(line) = lines.next() {
        out.push_str(line);
        out.push('\n');
        let Some(name) = line
            .strip_prefix("<!-- example: ")
            .and_then(|l| l.strip_suffix(" -->"))
        else {
            continue;
        };
        let body = &examples
            .iter()
            .find(|(n, _)| *n == name)
            .unwrap_or_else(|| panic!("unknown example `{name}`"))
            .1;
        let fence = lines.next().expect("a fence after the marker");
        out.push_str(fence);
        out.push('\n');
        for inner in lines.by_ref() {
            if inner == "```" {
                break;
            }
        }
        out.push_str(body);
        out.push_str("\n```\n");
    }
    out
}

#[test]
fn format_doc_examples_match_the_code() {
    let path = root().join("docs/FORMAT.md");
    let doc = std::fs::read_to_string(&path).unwrap();
    let expected = render(&doc, &examples());
    if std::env::var_os("BLESS").is_some() {
        std::fs::write(&path, &expected).unwrap();
        return;
    }
    assert!(
        doc == expected,
        "docs/FORMAT.md is out of date; run `BLESS=1 cargo test --test format_doc`"
    );
}
