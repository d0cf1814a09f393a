//! The frame every page shares (head, header with the account and logout, main) and the small
//! formatters pages use: sizes, times, digests, media types, query strings. Markup comes from
//! maud, which escapes every value it is given; nothing here writes unescaped text.

use maud::{html, Markup, DOCTYPE};
use time::format_description::well_known::Rfc3339;
use time::OffsetDateTime;

use super::viewer::{Viewer, Who};

/// A whole page: `title` in the tab and as the heading, `body` under it.
pub fn page(viewer: &Viewer, title: &str, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
        (head(title))
        body {
            a.skip href="#main" { "Skip to content" }
            header.top {
                a.brand href="/ui/" { "Berth" }
                nav aria-label="Account" {
                    @match &viewer.who {
                        Who::User(s) => {
                            span.who { "Signed in as " strong { (s.user) } }
                            form.inline method="post" action="/ui/logout" {
                                input type="hidden" name="csrf" value=(s.csrf);
                                button type="submit" { "Log out" }
                            }
                        }
                        Who::Anonymous => { a href="/ui/login" { "Log in" } }
                        Who::Everyone => { span.badge title="This registry has no logins: anyone may push, pull and delete" { "open registry" } }
                    }
                }
            }
            main #main {
                h1 { (title) }
                (body)
            }
        }
        }
    }
}

/// A page without an account header: errors and the login page.
pub fn bare(title: &str, message: &str) -> Markup {
    bare_with(
        title,
        &html! { p { (message) } p { a href="/ui/" { "Back to the repositories" } } },
    )
}

/// [`bare`] with any body.
pub fn bare_with(title: &str, body: &Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                header.top { a.brand href="/ui/" { "Berth" } }
                main #main { h1 { (title) } (body) }
            }
        }
    }
}

fn head(title: &str) -> Markup {
    html! {
        head {
        meta charset="utf-8";
        meta name="viewport" content="width=device-width, initial-scale=1";
        meta name="color-scheme" content="light dark";
        title { (title) " · Berth" }
        link rel="stylesheet" href="/ui/static/style.css";
        script src="/ui/static/app.js" defer {}
        }
    }
}

/// A button that copies `text` (with plain JavaScript; the text is also shown to select).
pub fn copy_button(label: &str, text: &str) -> Markup {
    html! {
        button.copy type="button" data-copy=(text) data-label=(label) title=(text) { (label) }
    }
}

/// `1.5 MiB`.
#[must_use]
pub fn size(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// Unix milliseconds as `2026-12-01 03:04:05 UTC`; empty for 0 (unknown).
#[must_use]
pub fn when(ms: i64) -> String {
    if ms <= 0 {
        return String::new();
    }
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .map(|s| {
            let s = s.split('.').next().unwrap_or(&s).trim_end_matches('Z');
            format!("{} UTC", s.replacen('T', " ", 1))
        })
        .unwrap_or_default()
}

/// `sha256:0123456789ab` (the first 12 hex digits).
#[must_use]
pub fn short_digest(digest: &str) -> &str {
    let end = digest.find(':').map_or(0, |i| i + 1) + 12;
    digest.get(..end).unwrap_or(digest)
}

/// A manifest media type in words.
#[must_use]
pub fn kind(media_type: &str) -> &str {
    match media_type {
        "application/vnd.oci.image.index.v1+json" => "OCI index",
        "application/vnd.docker.distribution.manifest.list.v2+json" => "Docker manifest list",
        "application/vnd.oci.image.manifest.v1+json" => "OCI image",
        "application/vnd.docker.distribution.manifest.v2+json" => "Docker image",
        other => other,
    }
}

/// Whether a media type is an index (multi-platform).
#[must_use]
pub fn is_index(media_type: &str) -> bool {
    matches!(
        media_type,
        "application/vnd.oci.image.index.v1+json"
            | "application/vnd.docker.distribution.manifest.list.v2+json"
    )
}

/// A query-string value, percent-encoded (everything but unreserved characters).
#[must_use]
pub fn query_value(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_sizes_times_and_digests() {
        assert_eq!(size(512), "512 B");
        assert_eq!(size(1536), "1.5 KiB");
        assert_eq!(size(3 * 1024 * 1024 * 1024), "3.0 GiB");
        assert_eq!(when(0), "");
        assert_eq!(when(1_764_558_245_123), "2025-12-01 03:04:05 UTC");
        assert_eq!(
            short_digest(&format!("sha256:{}", "a".repeat(64))),
            "sha256:aaaaaaaaaaaa"
        );
        assert_eq!(short_digest("x"), "x");
        assert_eq!(query_value("a/b c&<"), "a%2Fb%20c%26%3C");
    }

    #[test]
    fn values_are_escaped() {
        let m = bare("<b>", "<script>alert(1)</script>").into_string();
        assert!(!m.contains("<script>alert"), "{m}");
        assert!(m.contains("&lt;script&gt;"));
    }
}
