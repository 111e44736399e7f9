//! `worldfit inspect` of an image (a layout or registry reference): each
//! entry's platform and target world.

use super::output::{print, print_json, table};
use anyhow::{Context, Result};
use serde::Serialize;
use worldfit::host::standard_worlds;
use worldfit::oci::image::{Declared, Entry, entries};
use worldfit::oci::source::Source;
use worldfit::platform::Platform;

/// `inspect --json` of an image.
#[derive(Serialize)]
struct Report {
    source: String,
    digest: String,
    media_type: String,
    entries: Vec<EntryJson>,
}

/// One entry of `inspect --json` of an image.
#[derive(Serialize)]
struct EntryJson {
    digest: String,
    media_type: String,
    wasm: bool,
    platform: Option<Platform>,
    target: Option<String>,
    declared: Declared,
    #[serde(skip_serializing_if = "Option::is_none")]
    unjudged: Option<String>,
}

impl From<Entry> for EntryJson {
    fn from(e: Entry) -> Self {
        EntryJson {
            digest: e.descriptor.digest,
            media_type: e.descriptor.media_type,
            wasm: e.wasm,
            platform: e.platform,
            target: e.target,
            declared: e.declared,
            unjudged: e.unjudged,
        }
    }
}

/// Drives a future: on the registry runtime when there is one, else inline
/// (a layout never waits).
fn run<F: std::future::Future>(f: F) -> Result<F::Output> {
    #[cfg(feature = "registry")]
    {
        super::remote::block_on(f)
    }
    #[cfg(not(feature = "registry"))]
    {
        let mut f = std::pin::pin!(f);
        let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
        match f.as_mut().poll(&mut cx) {
            std::task::Poll::Ready(v) => Ok(v),
            std::task::Poll::Pending => anyhow::bail!("a layout read did not complete"),
        }
    }
}

/// Lists the entries of the image `source` names.
pub fn inspect(source: &Source, json: bool) -> Result<u8> {
    let known = standard_worlds();
    let (root, list) = run(async {
        let (root, bytes) = source.root().await?;
        let list = entries(source, &root, &bytes, &known).await?;
        anyhow::Ok((root, list))
    })?
    .with_context(|| format!("failed to read `{}`", source.name()))?;
    let report = Report {
        source: source.name(),
        digest: root.digest,
        media_type: root.media_type,
        entries: list.into_iter().map(EntryJson::from).collect(),
    };
    if json {
        print_json(&report)?;
        return Ok(0);
    }
    let mut rows = vec![vec![
        "PLATFORM".to_string(),
        "TARGET".into(),
        "FROM".into(),
        "DIGEST".into(),
    ]];
    for e in &report.entries {
        let platform = worldfit::select::platform_name(e.platform.as_ref());
        let target = match (&e.target, e.wasm, &e.unjudged) {
            (Some(t), _, _) => t.clone(),
            (None, true, Some(_)) => "(not judged)".into(),
            (None, true, None) => "(none)".into(),
            (None, false, _) => "(not wasm)".into(),
        };
        let from = serde_json::to_value(e.declared)?
            .as_str()
            .unwrap_or_default()
            .to_string();
        rows.push(vec![platform, target, from, e.digest.clone()]);
    }
    let mut text = format!("{} {}\n", report.source, report.digest);
    text.push_str(&table(&rows, "  "));
    for e in &report.entries {
        if let (true, Some(why)) = (e.wasm, &e.unjudged) {
            text.push_str(&format!("\n{} not judged: {why}\n", e.digest));
        }
    }
    text.push_str(
        "\nos.features of each entry: worldfit inspect SOURCE --json | jq '.entries[].platform'\n",
    );
    print(&text)?;
    Ok(0)
}
