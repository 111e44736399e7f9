//! `worldfit inspect FILE`: what a component or module needs, and its platform.

use super::output::{print, print_json, table};
use super::read_wasm;
use anyhow::Result;
use clap::Args;
use serde::Serialize;
use std::path::PathBuf;
use wit_parser::WorldItem;
use worldfit::component::{Component, CoreModule, ItemName, Wasm};
use worldfit::engine_features::FeatureUse;
use worldfit::host::standard_worlds;
use worldfit::platform::{Platform, containerd_string, os_of, platform, targets};
use worldfit::types::{render_function, render_type};

/// Show a component's imports, exports, target world(s) and OCI platform, or an image's entries
#[derive(Args)]
#[command(
    after_help = "SOURCE is a component or module file, an OCI layout (DIR, DIR:TAG, DIR@sha256:...) \
a registry reference (HOST[:PORT]/REPO[:TAG|@DIGEST]) or, with the containerd feature, \
containerd://[NAMESPACE/]IMAGE; for an image, each entry's platform and \
target world are shown, read from the index, else the wasm config, else the layer.\n\n\
Examples:\n  worldfit inspect app.wasm\n  worldfit inspect app.wasm --json | jq '.platform'\n  \
worldfit inspect ./oci:1.0\n  worldfit inspect ghcr.io/me/app:1.0\n\n\
Exit status:\n  0  the file or image was read\n  2  it could not be read (the error says why)"
)]
pub struct Opts {
    /// The component or core module file, OCI layout, or registry reference to inspect.
    #[arg(value_name = "SOURCE")]
    file: PathBuf,
    #[cfg(feature = "registry")]
    #[command(flatten)]
    registry: super::remote::RegistryFlags,
    #[command(flatten)]
    limits: super::limits::LimitFlags,
    /// Print machine-readable JSON (documented in docs/JSON.md).
    #[arg(long)]
    json: bool,
}

/// `inspect --json`.
#[derive(Serialize)]
struct Report {
    file: String,
    kind: &'static str,
    wasi: &'static str,
    targets: Vec<String>,
    platform: Platform,
    /// The engine features it needs, each with its first use.
    engine_features: Vec<FeatureUse>,
    imports: Vec<Item>,
    exports: Vec<Item>,
}

/// One import or export.
#[derive(Serialize)]
struct Item {
    name: String,
    kind: &'static str,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    ty: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    functions: Vec<Function>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    types: Vec<String>,
}

#[derive(Serialize)]
struct Function {
    name: String,
    #[serde(rename = "type")]
    ty: String,
}

fn component_items<'a>(
    c: &Component,
    items: impl Iterator<Item = (ItemName, &'a WorldItem)>,
) -> Vec<Item> {
    items
        .map(|(name, item)| match item {
            WorldItem::Interface { id, .. } => {
                let iface = &c.resolve.interfaces[*id];
                Item {
                    name: name.to_string(),
                    kind: "interface",
                    ty: None,
                    functions: iface
                        .functions
                        .iter()
                        .map(|(n, f)| Function {
                            name: n.clone(),
                            ty: render_function(&c.resolve, f),
                        })
                        .collect(),
                    types: iface.types.keys().cloned().collect(),
                }
            }
            WorldItem::Function(f) => Item {
                name: name.to_string(),
                kind: "function",
                ty: Some(render_function(&c.resolve, f)),
                functions: vec![],
                types: vec![],
            },
            WorldItem::Type { id, .. } => Item {
                name: name.to_string(),
                kind: "type",
                ty: Some(render_type(&c.resolve, wit_parser::Type::Id(*id))),
                functions: vec![],
                types: vec![],
            },
        })
        .collect()
}

fn module_items(m: &CoreModule) -> (Vec<Item>, Vec<Item>) {
    let mut imports: Vec<Item> = Vec::new();
    for i in &m.imports {
        let f = Function {
            name: i.name.clone(),
            ty: i
                .func
                .as_ref()
                .map(ToString::to_string)
                .or_else(|| i.other.clone())
                .unwrap_or_default(),
        };
        match imports.iter_mut().find(|it| it.name == i.module) {
            Some(it) => it.functions.push(f),
            None => imports.push(Item {
                name: i.module.clone(),
                kind: "module",
                ty: None,
                functions: vec![f],
                types: vec![],
            }),
        }
    }
    let exports = m
        .exports
        .iter()
        .map(|(n, s)| Item {
            name: n.clone(),
            kind: "function",
            ty: Some(s.to_string()),
            functions: vec![],
            types: vec![],
        })
        .collect();
    (imports, exports)
}

impl Opts {
    pub fn run(self) -> Result<u8> {
        if !self.file.is_file() {
            let text = self.file.to_string_lossy().into_owned();
            #[cfg(feature = "registry")]
            let source = self.registry.source(&text);
            #[cfg(not(feature = "registry"))]
            let source = worldfit::oci::source::Source::parse_layout(&text)?.ok_or_else(|| {
                anyhow::anyhow!("`{text}` is neither a file nor an OCI layout directory")
            });
            if self.file.exists() || source.is_ok() {
                let source = source?.with_limits(self.limits.limits());
                return super::image::inspect(&source, self.json);
            }
        }
        let (_, wasm) = read_wasm(&self.file)?;
        let known = standard_worlds();
        let platform = platform(&wasm, &known);
        let (kind, target_names, imports, exports) = match &wasm {
            Wasm::Component(c) => {
                let (worlds, _) = targets(c, &known);
                (
                    "component",
                    worlds.iter().map(ToString::to_string).collect(),
                    component_items(c, c.imports()),
                    component_items(c, c.exports()),
                )
            }
            Wasm::Module(m) => {
                let (i, e) = module_items(m);
                ("module", vec![], i, e)
            }
        };
        let report = Report {
            file: self.file.display().to_string(),
            kind,
            wasi: os_of(&wasm),
            targets: target_names,
            platform,
            engine_features: wasm.engine_features().to_vec(),
            imports,
            exports,
        };
        if self.json {
            print_json(&report)?;
            return Ok(0);
        }
        let p = &report.platform;
        let none = || "(none)".to_string();
        let mut rows = vec![
            vec!["kind".into(), format!("{} ({})", report.kind, report.wasi)],
            vec![
                "targets".into(),
                if report.targets.is_empty() {
                    none()
                } else {
                    report.targets.join(", ")
                },
            ],
            vec!["platform".into(), format!("{}/{}", p.os, p.architecture)],
        ];
        for (i, f) in p.os_features.iter().enumerate() {
            rows.push(vec![
                if i == 0 {
                    "os.features".into()
                } else {
                    String::new()
                },
                f.clone(),
            ]);
        }
        rows.push(vec![
            "containerd".into(),
            containerd_string(&p.os, &p.architecture, &p.os_features),
        ]);
        if report.engine_features.is_empty() {
            rows.push(vec!["engine".into(), none()]);
        }
        for (i, u) in report.engine_features.iter().enumerate() {
            rows.push(vec![
                if i == 0 {
                    "engine".into()
                } else {
                    String::new()
                },
                u.feature.to_string(),
                u.at.clone(),
            ]);
        }
        let mut list = |label: &str, items: &[Item]| {
            if items.is_empty() {
                rows.push(vec![label.into(), none()]);
            }
            for (i, it) in items.iter().enumerate() {
                let count = |n: usize, what: &str| match n {
                    0 => None,
                    1 => Some(format!("1 {what}")),
                    n => Some(format!("{n} {what}s")),
                };
                let what = match &it.ty {
                    Some(t) => t.clone(),
                    None => [
                        count(it.functions.len(), "function"),
                        count(it.types.len(), "type"),
                    ]
                    .into_iter()
                    .flatten()
                    .collect::<Vec<_>>()
                    .join(", "),
                };
                rows.push(vec![
                    if i == 0 { label.into() } else { String::new() },
                    it.name.clone(),
                    what,
                ]);
            }
        };
        list("imports", &report.imports);
        list("exports", &report.exports);
        let mut text = format!("{}\n", report.file);
        text.push_str(&table(&rows, "  "));
        text.push_str("\nfor an image index: worldfit inspect FILE --json | jq .platform\n");
        print(&text)?;
        Ok(0)
    }
}
