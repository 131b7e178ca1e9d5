//! The console's page shell and the small pieces every page uses: navigation, notices, times,
//! and hostile text shown inert and clipped.
//!
//! Everything goes through maud, which escapes every value it is given: no page may build HTML
//! from strings by hand (`PreEscaped` is used for nothing a producer or target wrote). Nothing
//! here may emit a `style` attribute or an inline script: the Content-Security-Policy forbids
//! both (see [`super::security_headers`]).

use super::session::SignedIn;
use axum::response::Html;
use maud::{DOCTYPE, Markup, html};

/// Text longer than this is clipped, with a link to the whole of it.
pub(super) const CLIP_BYTES: usize = 16 * 1024;

/// Which entry of the navigation a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Nav {
    Overview,
    Events,
    Deliveries,
    Playground,
    Catalog,
    Targets,
    Plugins,
    Config,
}

const NAV: [(Nav, &str, &str); 8] = [
    (Nav::Overview, "/", "Overview"),
    (Nav::Events, "/events", "Events"),
    (Nav::Deliveries, "/deliveries", "Deliveries"),
    (Nav::Playground, "/playground", "Playground"),
    (Nav::Catalog, "/catalog", "Catalog"),
    (Nav::Targets, "/targets", "Targets"),
    (Nav::Plugins, "/plugins", "Plugins"),
    (Nav::Config, "/config", "Config"),
];

/// A whole page for a signed-in user.
pub(super) fn page(title: &str, nav: Nav, session: &SignedIn, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head(title))
                body {
                    header.top {
                        a.brand href="/" { "hookgate" }
                        nav {
                            @for (entry, href, label) in NAV {
                                a href=(href) aria-current=[(entry == nav).then_some("page")] { (label) }
                            }
                        }
                        form.signout method="post" action="/logout" {
                            (csrf(session))
                            button type="submit" { "Sign out" }
                        }
                    }
                    main {
                        h1 { (title) }
                        (body)
                    }
                }
            }
        }
        .into_string(),
    )
}

/// The sign-in page (nobody is signed in, so no navigation).
pub(super) fn sign_in(problem: Option<&str>) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head("Sign in"))
                body.signin {
                    main {
                        h1 { "hookgate" }
                        form method="post" action="/login" {
                            label for="token" { "Admin token" }
                            input #token type="password" name="token" autocomplete="current-password" required autofocus;
                            @if let Some(p) = problem {
                                p.error role="alert" { (p) }
                            }
                            button type="submit" { "Sign in" }
                        }
                        p.hint { "The token is " code { "admin.token" } " in the gateway's config file." }
                    }
                }
            }
        }
        .into_string(),
    )
}

/// A page saying why the page asked for cannot be shown.
pub(super) fn error(status: axum::http::StatusCode, message: &str) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                (head("Error"))
                body {
                    main {
                        h1 { (status) }
                        p.notice.error role="alert" { (message) }
                        p { a href="/" { "Back to the overview" } }
                    }
                }
            }
        }
        .into_string(),
    )
}

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · hookgate" }
            link rel="stylesheet" href="/console/console.css";
            script src="/console/console.js" defer {}
        }
    }
}

/// The query of a detail page: `full` shows payloads unclipped, `notice` the outcome of the
/// action that led here.
#[derive(Debug, Default, serde::Deserialize)]
pub(super) struct Detail {
    #[serde(default)]
    pub(super) full: bool,
    pub(super) notice: Option<String>,
}

/// A filter's drop-down: "any" (empty) and `options`, with `chosen` selected.
pub(super) fn choice(label: &str, name: &str, options: &[String], chosen: Option<&str>) -> Markup {
    html! {
        label { (label) " " select name=(name) {
            option value="" { "any" }
            @for o in options {
                option value=(o) selected[chosen == Some(o.as_str())] { (o) }
            }
        } }
    }
}

/// The hidden field every state-changing form carries.
pub(super) fn csrf(session: &SignedIn) -> Markup {
    html! { input type="hidden" name="csrf" value=(session.csrf); }
}

/// A one-button form that posts to `action`.
pub(super) fn action_button(session: &SignedIn, action: &str, label: &str) -> Markup {
    html! {
        form.inline method="post" action=(action) {
            (csrf(session))
            button type="submit" { (label) }
        }
    }
}

/// A notice at the top of a page: what the last action did, or why it was refused.
pub(super) fn notice(ok: bool, text: &str) -> Markup {
    html! {
        @if ok { p.notice.ok role="status" { (text) } }
        @else { p.notice.error role="alert" { (text) } }
    }
}

/// Unix ms as RFC 3339, in a `<time>` the browser may show in local time.
pub(super) fn time(ms: i64) -> Markup {
    let text = crate::rfc3339(ms);
    html! { time datetime=(text) { (text) } }
}

/// Text someone else wrote (an event body, a response), shown as inert text: pretty-printed
/// when it is JSON, clipped at [`CLIP_BYTES`] unless `full`, with `more_href` leading to all of
/// it.
pub(super) fn payload(text: &str, full: bool, more_href: &str) -> Markup {
    let pretty = pretty_json(text);
    let shown = pretty.as_deref().unwrap_or(text);
    let (head, cut) = clip(shown, if full { usize::MAX } else { CLIP_BYTES });
    html! {
        pre.payload { (head) }
        @if cut > 0 {
            p.clipped {
                "… " (cut) " more bytes. "
                a href=(more_href) { "Show all" }
            }
        }
    }
}

/// `text` cut at a character boundary at most `max` bytes in, and how many bytes were cut.
pub(super) fn clip(text: &str, max: usize) -> (&str, usize) {
    if text.len() <= max {
        return (text, 0);
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    (&text[..end], text.len() - end)
}

/// JSON re-indented for reading; `None` when `text` is not JSON serde reads (too deep, say).
fn pretty_json(text: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    serde_json::to_string_pretty(&value).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_text_is_inert_and_clipped() {
        let evil =
            r#"{"x":"</pre><script>window.pwned=1</script><a href=\"javascript:alert(1)\">"}"#;
        let html = payload(evil, false, "?full=true").into_string();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("&lt;/pre&gt;&lt;script&gt;"), "{html}");
        assert!(!html.contains("href=\"javascript:"), "{html}");
        let huge = "é".repeat(CLIP_BYTES);
        let html = payload(&huge, false, "?full=true").into_string();
        assert!(
            html.contains(&format!("{} more bytes", CLIP_BYTES)),
            "{html}"
        );
        assert!(html.len() < CLIP_BYTES + 500);
        let whole = payload(&huge, true, "?full=true").into_string();
        assert!(!whole.contains("more bytes"));
    }

    #[test]
    fn clipping_keeps_characters_whole() {
        assert_eq!(clip("aé", 2), ("a", 2));
        assert_eq!(clip("abc", 3), ("abc", 0));
    }

    #[test]
    fn deep_json_is_shown_as_written() {
        let deep = format!("{}{}", "[".repeat(500), "]".repeat(500));
        let html = payload(&deep, false, "?full=true").into_string();
        assert!(html.contains(&deep));
    }
}
