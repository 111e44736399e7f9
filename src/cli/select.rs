//! `worldfit select SOURCE`: which entry of an image index should this host
//! pull? The choice, confirmed, and a verdict with reasons for every entry.

use super::HostOpts;
use super::check::SandboxOpts;
use super::output::{print, print_json, shell_word};
use anyhow::{Context, Result, bail};
use clap::Args;
use serde::Serialize;
use worldfit::Host;
use worldfit::oci::artifact::Descriptor;
use worldfit::oci::source::Source;
use worldfit::oci::source::{LayoutImage, Origin};
use worldfit::platform::Platform;
use worldfit::select::{EntryReport, SelectOptions, select_from_root};

/// Pick the entry of an image index (a layout, a registry, containerd) that a host runs, and say why about every entry
#[derive(Args)]
#[command(
    after_help = "SOURCE is an OCI layout (DIR, DIR:TAG, DIR@sha256:..., oci:DIR:TAG; a local \
directory wins), a registry reference (HOST[:PORT]/REPO[:TAG|@DIGEST], docker://...) or, in builds \
with the containerd feature, an image in containerd (containerd://[NAMESPACE/]IMAGE).\n\n\
Entries are ranked by their platform features (yes before maybe), then the newest WASI the host \
runs (wasip3, wasip2, wasip1; --prefer changes it), then the more specific build (more os.features, all met), then index order. Unless --no-confirm, the top \
candidate's layer is fetched and checked (types, then instantiation for the built-in host); if it \
fails, the next is tried. Only the index, and the manifests, configs and layers the decision needs, \
are fetched; every blob is verified, and a blob that fails verification is an error.\n\n\
Examples:\n  worldfit select ./oci:1.0\n  worldfit select ghcr.io/me/app:1.0 --json\n  \
worldfit select localhost:5000/app:1.0 --plain-http --wit host-wit/ --world my-host\n\n\
Exit status:\n  0  an entry was selected\n  1  no entry runs on this host (every entry says why)\n  \
2  error: the source or the host could not be read"
)]
pub struct Opts {
    /// The image: an OCI layout, a registry reference or containerd://IMAGE.
    #[arg(value_name = "SOURCE")]
    source: String,
    #[command(flatten)]
    host: HostOpts,
    /// The WASI level to prefer over newer ones the host also runs.
    #[arg(long, value_parser = ["p1", "p2", "p3"])]
    prefer: Option<String>,
    /// Decide by features alone and confirm nothing (entries without
    /// os.features are still judged from their config or layer).
    #[arg(long)]
    no_confirm: bool,
    #[command(flatten)]
    registry: super::remote::RegistryFlags,
    #[command(flatten)]
    sandbox: SandboxOpts,
    #[command(flatten)]
    limits: super::limits::LimitFlags,
    /// Print machine-readable JSON (documented in docs/JSON.md).
    #[arg(long)]
    json: bool,
}

/// `select --json`.
#[derive(Serialize)]
struct Report {
    source: String,
    digest: String,
    host: String,
    selected: Option<Chosen>,
    entries: Vec<EntryReport>,
}

#[derive(Serialize)]
struct Chosen {
    digest: String,
    platform: Option<Platform>,
    /// How far it was confirmed: `features`, `types` or `instantiated`.
    checked: &'static str,
}

impl Opts {
    pub fn run(self) -> Result<u8> {
        self.sandbox.validate()?;
        // Build the embedded wasmtime's engines and linkers now, while the
        // cores are idle, rather than beside the layer's fetch.
        #[cfg(feature = "wasmtime")]
        if self.host.is_builtin() && !self.no_confirm {
            std::thread::spawn(|| worldfit::confirm::Embedded::get().map(drop));
        }
        let source = self
            .registry
            .source(&self.source)?
            .with_limits(self.limits.limits());
        let options = SelectOptions {
            prefer: self.prefer.as_ref().map(|p| format!("wasi{p}")),
            no_confirm: self.no_confirm,
            #[cfg(feature = "wasmtime")]
            confirm: self.sandbox.confirm_options()?,
        };
        let selection = {
            #[cfg(feature = "wasmtime")]
            let _progress = super::progress::Progress::start(
                format!("selecting from `{}`", source.name()),
                !self.json,
            );
            super::remote::block_on(async {
                let (host, root) = host_and_root(self.host, &source).await?;
                match root {
                    Ok(root) => select_from_root(&source, root, &host, &options).await,
                    Err(e) => Err(e),
                }
                .with_context(|| format!("cannot select from `{}`", source.name()))
            })??
        };
        #[cfg(feature = "wasmtime")]
        if let Some(note) = selection
            .confirmation
            .as_ref()
            .and_then(|c| c.cache_note.as_ref())
        {
            eprintln!("warning: compile cache: {note}");
        }
        if selection.entries.is_empty() {
            bail!("`{}` lists no manifests", selection.source);
        }
        let code = if selection.selected.is_some() { 0 } else { 1 };
        if self.json {
            let chosen = selection.selected().map(|e| Chosen {
                digest: e.digest.clone(),
                platform: e.platform.clone(),
                checked: e.checked,
            });
            print_json(&Report {
                source: selection.source,
                digest: selection.digest,
                host: selection.host,
                selected: chosen,
                entries: selection.entries,
            })?;
            return Ok(code);
        }
        let mut text = selection.explain();
        text.push_str(&match (selection.selected(), &source.origin) {
            (Some(e), Origin::Layout(LayoutImage { layout, .. })) => format!(
                "\nits manifest: {}\n",
                layout
                    .dir()
                    .join("blobs/sha256")
                    .join(e.digest.trim_start_matches("sha256:"))
                    .display()
            ),
            // `worldfit pull` reads registries; containerd already holds it.
            #[cfg(feature = "containerd")]
            (Some(e), Origin::Containerd(c)) => format!(
                "\nread its manifest: ctr --address {} --namespace {} content get {}\n",
                shell_word(&c.address().display().to_string()),
                shell_word(c.namespace()),
                e.digest
            ),
            (Some(e), _) => format!(
                "\npull it: worldfit pull {}@{} --layout DIR\n",
                registry_repo(&selection.source),
                e.digest
            ),
            (None, _) => format!(
                "\nsee what each entry needs: worldfit inspect {} --json\n",
                shell_word(&selection.source)
            ),
        });
        print(&text)?;
        Ok(code)
    }
}

/// Builds the host on a blocking thread while the source's root is read, so
/// parsing the built-in WIT (about 10 ms) overlaps with connecting and
/// reading the index. A host that can't be built is reported first, as if
/// the two had run in turn.
async fn host_and_root(
    host: HostOpts,
    source: &Source,
) -> Result<(Host, Result<(Descriptor, Vec<u8>)>)> {
    let mut building = tokio::task::spawn_blocking(move || host.host());
    let reading = source.root();
    tokio::pin!(reading);
    let mut root = None;
    let host = loop {
        tokio::select! {
            built = &mut building => break built??,
            read = &mut reading, if root.is_none() => root = Some(read),
        }
    };
    let root = match root {
        Some(root) => root,
        None => reading.await,
    };
    Ok((host, root))
}

/// `HOST/REPO` of a registry source name, or the layout directory.
fn registry_repo(name: &str) -> &str {
    let last_slash = name.rfind('/').map(|i| i + 1).unwrap_or(0);
    match name[last_slash..].find([':', '@']) {
        Some(i) => &name[..last_slash + i],
        None => name,
    }
}
