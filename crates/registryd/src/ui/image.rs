//! One manifest: what it is, how to pull it, its layers and config (entrypoint, cmd, env,
//! ports, labels, history) or, for an index, each platform's manifest; its annotations, its
//! referrers (signatures, SBOMs, attestations) by artifact type, and the manifest itself.

use std::collections::BTreeMap;

use maud::{html, Markup};

use super::error::PageError;
use super::image_doc::{annotation_text, is_image_config, Descriptor, ImageConfig, ManifestDoc};
use super::layout::{self, copy_button};
use super::tags::summarize;
use super::viewer::Viewer;
use crate::names::{Digest, Reference, RepoName};

/// Largest config read to show.
const MAX_CONFIG: u64 = 1024 * 1024;

/// `GET /ui/r/NAME/-/REFERENCE`.
///
/// # Errors
/// `NotFound` when there is no such manifest or the repository may not be pulled.
pub async fn page(
    viewer: &Viewer,
    name: &RepoName,
    reference: &Reference,
    host: &str,
) -> Result<Markup, PageError> {
    let unknown = || {
        PageError::NotFound(format!(
            "There is no {name}:{reference}, or you may not pull it."
        ))
    };
    let can_delete = viewer.repo_access(name, unknown).await?;
    let reg = viewer.registry();
    let m = reg
        .get_manifest(name, reference, true)
        .await
        .map_err(|_| unknown())?;
    let body = m.body.clone().unwrap_or_default();
    let doc = ManifestDoc::parse(&body);
    let pushed = reg.manifest_pushed_at(name, &m.digest).await?.unwrap_or(0);
    let summary = summarize(reg, name, m.digest.as_str(), &m.media_type).await;
    let pretty = serde_json::from_slice::<serde_json::Value>(&body)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| String::from_utf8_lossy(&body).into_owned());
    let referrers = reg.referrers(name, &m.digest, None).await?;
    let referrers: Vec<Descriptor> =
        serde_json::from_value(referrers["manifests"].clone()).unwrap_or_default();
    let details = if layout::is_index(&m.media_type) {
        platforms(viewer, name, &doc).await
    } else {
        image(viewer, name, &doc).await?
    };
    let title = format!("{name}:{reference}");
    let page = html! {
        dl.facts {
            dt { "Digest" } dd { code #digest { (m.digest) } }
            dt { "Kind" } dd { (layout::kind(&m.media_type)) @if layout::kind(&m.media_type) != m.media_type { " " small { code { (m.media_type) } } } }
            @if let Some(t) = doc.artifact_type.as_deref().or(doc.config.as_ref().map(|c| c.media_type.as_str()).filter(|t| !is_image_config(t))) {
                dt { "Artifact type" } dd { code { (t) } }
            }
            @if let Some(size) = summary.size { dt { "Total size" } dd #total-size { (layout::size(size)) } }
            dt { "Manifest size" } dd { (layout::size(m.size)) }
            @if pushed > 0 { dt { "Pushed" } dd { (layout::when(pushed)) } }
            @if let Some(s) = &doc.subject {
                dt { "Refers to" } dd { a href={ "/ui/r/" (name) "/-/" (s.digest) } { code { (s.digest) } } }
            }
        }
        section aria-labelledby="pull" {
            h2 #pull { "Pull" }
            ul.commands {
                @if let Reference::Tag(tag) = reference {
                    @let cmd = format!("docker pull {host}/{name}:{tag}");
                    li { code { (cmd) } " " (copy_button("Copy", &cmd)) }
                }
                @let cmd = format!("docker pull {host}/{name}@{}", m.digest);
                li { code { (cmd) } " " (copy_button("Copy", &cmd)) }
            }
            @if can_delete {
                p.actions {
                    @if let Reference::Tag(tag) = reference {
                        a.danger href={ "/ui/r/" (name) "/-/" (tag) "/delete" } { "Delete tag…" } " "
                    }
                    a.danger href={ "/ui/r/" (name) "/-/" (m.digest) "/delete" } { "Delete manifest…" }
                }
            }
        }
        (details)
        @if !doc.annotations.is_empty() {
            section aria-labelledby="annotations" {
                h2 #annotations { "Annotations" }
                (key_values("annotations-table", doc.annotations.iter().map(|(k, v)| (k.clone(), annotation_text(v)))))
            }
        }
        (referrers_section(name, &referrers))
        section aria-labelledby="manifest" {
            h2 #manifest { "Manifest" }
            details open {
                summary { "JSON (" (layout::size(m.size)) ")" }
                pre.json { code { (pretty) } }
            }
        }
    };
    Ok(layout::page(viewer, &title, &page))
}

/// An index's platforms, each with its size and a link to its manifest.
async fn platforms(viewer: &Viewer, name: &RepoName, doc: &ManifestDoc) -> Markup {
    let mut sizes = Vec::with_capacity(doc.manifests.len());
    for child in &doc.manifests {
        sizes.push(
            summarize(viewer.registry(), name, &child.digest, &child.media_type)
                .await
                .size,
        );
    }
    html! {
        section aria-labelledby="platforms" {
            h2 #platforms { "Platforms" }
            div.scroll { table #platforms-table {
                thead { tr { th scope="col" { "Platform" } th scope="col" { "Manifest" } th.num scope="col" { "Size" } } }
                tbody { @for (child, size) in doc.manifests.iter().zip(&sizes) { tr {
                    td { @match &child.platform { Some(p) if p.os == "unknown" => { "attestation" }, Some(p) => { (p.label()) }, None => { "—" } } }
                    td { a href={ "/ui/r/" (name) "/-/" (child.digest) } title=(child.digest) { code { (layout::short_digest(&child.digest)) } } }
                    td.num { @if let Some(s) = size { (layout::size(*s)) } }
                } } }
            } }
        }
    }
}

/// An image's layers and config.
async fn image(viewer: &Viewer, name: &RepoName, doc: &ManifestDoc) -> Result<Markup, PageError> {
    let config = match &doc.config {
        Some(c) if is_image_config(&c.media_type) => {
            let digest = Digest::parse(&c.digest)
                .map_err(|e| PageError::Internal(format!("config digest: {e:?}")))?;
            viewer
                .registry()
                .small_blob(name, &digest, MAX_CONFIG)
                .await
                .ok()
                .flatten()
                .and_then(|b| serde_json::from_slice::<ImageConfig>(&b).ok())
        }
        _ => None,
    };
    Ok(html! {
        section aria-labelledby="layers" {
            h2 #layers { "Layers" }
            div.scroll { table #layers-table {
                thead { tr { th.num scope="col" { "#" } th scope="col" { "Digest" } th scope="col" { "Media type" } th.num scope="col" { "Size" } } }
                tbody { @for (i, layer) in doc.layers.iter().enumerate() { tr {
                    td.num { (i + 1) }
                    td title=(layer.digest) { code { (layout::short_digest(&layer.digest)) } }
                    td { code { (layer.media_type) } }
                    td.num { (layout::size(layer.size)) }
                } } }
            } }
        }
        @if let Some(cfg) = config { (config_section(&cfg)) }
    })
}

fn config_section(cfg: &ImageConfig) -> Markup {
    let run = &cfg.config;
    let words = |v: &Option<Vec<String>>| {
        v.as_ref()
            .map(|v| serde_json::to_string(v).unwrap_or_default())
    };
    html! {
        section aria-labelledby="config" {
            h2 #config { "Config" }
            dl.facts #config-facts {
                @if let (Some(os), Some(arch)) = (&cfg.os, &cfg.architecture) { dt { "Platform" } dd { (os) "/" (arch) } }
                @if let Some(c) = &cfg.created { dt { "Created" } dd { (c) } }
                @if let Some(e) = words(&run.entrypoint) { dt { "Entrypoint" } dd { code #entrypoint { (e) } } }
                @if let Some(c) = words(&run.cmd) { dt { "Cmd" } dd { code #cmd { (c) } } }
                @if let Some(w) = run.working_dir.as_ref().filter(|w| !w.is_empty()) { dt { "Working dir" } dd { code { (w) } } }
                @if let Some(u) = run.user.as_ref().filter(|u| !u.is_empty()) { dt { "User" } dd { code { (u) } } }
                @if let Some(ports) = run.exposed_ports.as_ref().filter(|p| !p.is_empty()) {
                    dt { "Exposed ports" } dd #ports { @for (i, p) in ports.keys().enumerate() { @if i > 0 { ", " } code { (p) } } }
                }
            }
            @if let Some(env) = run.env.as_ref().filter(|e| !e.is_empty()) {
                h3 { "Environment" }
                ul.env #env { @for e in env { li { code { (e) } } } }
            }
            @if let Some(labels) = run.labels.as_ref().filter(|l| !l.is_empty()) {
                h3 { "Labels" }
                (key_values("labels", labels.iter().map(|(k, v)| (k.clone(), v.clone()))))
            }
            @if !cfg.history.is_empty() {
                h3 { "History" }
                div.scroll { table #history {
                    thead { tr { th scope="col" { "Created" } th scope="col" { "Step" } th scope="col" { "Layer" } } }
                    tbody { @for h in &cfg.history { tr {
                        td { (h.created.as_deref().unwrap_or("")) }
                        td { code.wrap { (h.created_by.as_deref().or(h.comment.as_deref()).unwrap_or("")) } }
                        td { @if h.empty_layer { "—" } @else { "yes" } }
                    } } }
                } }
            }
        }
    }
}

/// A two-column table of names and values.
fn key_values(id: &str, rows: impl Iterator<Item = (String, String)>) -> Markup {
    html! {
        div.scroll { table id=(id) {
            thead { tr { th scope="col" { "Name" } th scope="col" { "Value" } } }
            tbody { @for (k, v) in rows { tr { td { code { (k) } } td { code.wrap { (v) } } } } }
        } }
    }
}

/// Referrers grouped by artifact type.
fn referrers_section(name: &RepoName, referrers: &[Descriptor]) -> Markup {
    let mut by_type: BTreeMap<&str, Vec<&Descriptor>> = BTreeMap::new();
    for r in referrers {
        by_type
            .entry(r.artifact_type.as_deref().unwrap_or("(none)"))
            .or_default()
            .push(r);
    }
    html! {
        section aria-labelledby="referrers" {
            h2 #referrers { "Referrers" }
            @if by_type.is_empty() { p.empty { "No signatures, SBOMs or attestations refer to this manifest." } }
            @for (kind, list) in &by_type {
                h3 { code { (kind) } }
                ul.referrers { @for r in list { li {
                    a href={ "/ui/r/" (name) "/-/" (r.digest) } { code { (layout::short_digest(&r.digest)) } }
                    " · " (layout::size(r.size))
                    @for (k, v) in &r.annotations { " · " code { (k) "=" (annotation_text(v)) } }
                } } }
            }
        }
    }
}
