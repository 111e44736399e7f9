//! What the container runs with, from its OCI bundle's `config.json`
//! (runtime spec: `process.args`, `process.env`, `root.path`, relative to
//! the bundle when not absolute).

use anyhow::{Context, Result};
use oci_spec::runtime::Spec;
use std::path::{Path, PathBuf};

/// The process and root of a bundle.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Bundle {
    /// `argv`; the first is the program (for a container with no image, the
    /// wasm file in the root filesystem).
    pub args: Vec<String>,
    /// `KEY=VALUE` entries split at the first `=` (an entry without one has
    /// an empty value).
    pub env: Vec<(String, String)>,
    /// The root filesystem's directory.
    pub root: Option<PathBuf>,
}

/// Reads `BUNDLE/config.json`.
///
/// # Errors
/// The file is missing or not a runtime spec.
pub fn read(bundle: &Path) -> Result<Bundle> {
    let path = bundle.join("config.json");
    let spec = Spec::load(&path)
        .with_context(|| format!("cannot read the container's spec {}", path.display()))?;
    let process = spec.process().as_ref();
    let args = process.and_then(|p| p.args().clone()).unwrap_or_default();
    let env = process
        .and_then(|p| p.env().clone())
        .unwrap_or_default()
        .into_iter()
        .map(|kv| match kv.split_once('=') {
            Some((k, v)) => (k.to_string(), v.to_string()),
            None => (kv, String::new()),
        })
        .collect();
    let root = spec.root().as_ref().map(|r| bundle.join(r.path()));
    Ok(Bundle { args, env, root })
}

/// The file `program` names inside `root` (an absolute path is taken from
/// the root, as the container would see it), which must stay inside it
/// once `..` and symbolic links are resolved: the shim runs as root, and a
/// container's program must not name a host file.
///
/// # Errors
/// The file doesn't exist, isn't a regular file, or resolves to outside
/// `root`.
pub fn program_path(root: &Path, program: &str) -> Result<PathBuf> {
    let root = root
        .canonicalize()
        .with_context(|| format!("cannot open the root filesystem {}", root.display()))?;
    let path = root
        .join(program.trim_start_matches('/'))
        .canonicalize()
        .with_context(|| format!("cannot find `{program}` in the root filesystem"))?;
    if !path.starts_with(&root) {
        anyhow::bail!("`{program}` leads out of the root filesystem");
    }
    // Not a FIFO (reading one would wait for a writer) or a device.
    if !path.is_file() {
        anyhow::bail!("`{program}` in the root filesystem is not a file");
    }
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_program_is_found_inside_the_root_and_nowhere_else() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("rootfs");
        std::fs::create_dir_all(root.join("bin")).unwrap();
        std::fs::write(root.join("bin/app.wasm"), b"").unwrap();
        std::fs::write(dir.path().join("host-file"), b"").unwrap();
        std::os::unix::fs::symlink("../host-file", root.join("escape")).unwrap();
        std::os::unix::fs::symlink("bin/app.wasm", root.join("link")).unwrap();
        let inside = root.canonicalize().unwrap().join("bin/app.wasm");
        assert_eq!(program_path(&root, "/bin/app.wasm").unwrap(), inside);
        assert_eq!(program_path(&root, "bin/app.wasm").unwrap(), inside);
        assert_eq!(program_path(&root, "/link").unwrap(), inside);
        for out in ["/../host-file", "/escape", "/bin/../../host-file"] {
            let e = program_path(&root, out).unwrap_err().to_string();
            assert_eq!(e, format!("`{out}` leads out of the root filesystem"));
        }
        let e = program_path(&root, "/bin").unwrap_err().to_string();
        assert_eq!(e, "`/bin` in the root filesystem is not a file");
        let e = format!("{:#}", program_path(&root, "/nope.wasm").unwrap_err());
        assert!(
            e.starts_with("cannot find `/nope.wasm` in the root filesystem"),
            "{e}"
        );
    }

    #[test]
    fn args_env_and_a_relative_root_are_read() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("config.json"),
            r#"{"ociVersion":"1.0.2","process":{"cwd":"/","user":{"uid":0,"gid":0},"args":["/app.wasm","a b"],
               "env":["PATH=/bin","EMPTY","EQ=x=y"]},"root":{"path":"rootfs"}}"#,
        )
        .unwrap();
        let b = read(dir.path()).unwrap();
        assert_eq!(b.args, ["/app.wasm", "a b"]);
        assert_eq!(
            b.env,
            [
                ("PATH".to_string(), "/bin".to_string()),
                ("EMPTY".to_string(), String::new()),
                ("EQ".to_string(), "x=y".to_string())
            ]
        );
        assert_eq!(b.root, Some(dir.path().join("rootfs")));
    }

    #[test]
    fn a_missing_spec_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let e = read(dir.path()).unwrap_err();
        assert!(format!("{e:#}").contains("config.json"), "{e:#}");
    }
}
