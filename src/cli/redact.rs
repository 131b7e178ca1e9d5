//! What `try` must not print: the credentials an operator configured for a target. A dry run's
//! output lands in terminals, tickets and CI logs, so target URLs are shown with their password,
//! token-like query parameters and webhook-path secrets masked, and configured header values
//! as `***`. Signatures `try` computes are MACs of this one body, not secrets, and stay visible.

/// What replaces a secret.
pub(crate) const MASK: &str = "***";

/// Query parameter names (lower case) whose values are credentials however they are spelled
/// around: `access_token`, `api_key`, `client_secret`, `x-signature`…
const SECRET_PARTS: &[&str] = &[
    "token",
    "key",
    "secret",
    "signature",
    "password",
    "passwd",
    "auth",
    "credential",
    "session",
];

/// Short names that are credentials only as a whole word (`sig=`, `code=`), not inside others.
const SECRET_NAMES: &[&str] = &["sig", "code", "pass", "pwd", "hmac", "jwt"];

/// `url` with its secrets masked: a password (or a lone user name, often a token), token-like
/// query parameters, and the secret segments of Slack and Discord webhook paths.
pub(crate) fn url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        // Validated at load, so this is not expected; printing nothing of it is the safe side.
        return "<unparsable URL>".into();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some(MASK));
    } else if !u.username().is_empty() {
        let _ = u.set_username(MASK);
    }
    if u.query().is_some() {
        let pairs: Vec<(String, String)> = u
            .query_pairs()
            .map(|(k, v)| {
                let v = if is_secret_param(&k) {
                    MASK.to_string()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect();
        u.query_pairs_mut().clear().extend_pairs(pairs);
    }
    if let Some(path) = webhook_path(&u) {
        u.set_path(&path);
    }
    u.to_string()
}

fn is_secret_param(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    SECRET_PARTS.iter().any(|p| name.contains(p))
        || name
            .split(|c: char| !c.is_ascii_alphanumeric())
            .any(|word| SECRET_NAMES.contains(&word))
}

/// The path of a chat webhook URL with its secret masked, where the path itself is the
/// credential: Slack's `/services/T…/B…/<secret>`, Discord's `/api/webhooks/<id>/<token>`. The
/// workspace, channel and webhook ids stay, so the operator can still tell targets apart.
fn webhook_path(u: &url::Url) -> Option<String> {
    let host = u.host_str()?.to_ascii_lowercase();
    let segments: Vec<&str> = u.path_segments()?.collect();
    let keep = match (host.as_str(), segments.as_slice()) {
        ("hooks.slack.com", ["services", ..]) => 3,
        ("discord.com" | "discordapp.com", ["api", "webhooks", ..]) => 3,
        _ => return None,
    };
    let masked: Vec<&str> = segments
        .iter()
        .enumerate()
        .map(|(i, s)| if i < keep || s.is_empty() { *s } else { MASK })
        .collect();
    Some(format!("/{}", masked.join("/")))
}

/// A request header as `try` prints it: the value of a header the target's config sets (an API
/// key, a bearer token) is masked; everything else (computed signatures included) is shown.
pub(crate) fn header(configured: &[(String, String)], name: &str, value: &str) -> String {
    let secret = configured
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case(name) && v == value);
    if secret || name.eq_ignore_ascii_case("authorization") || name.eq_ignore_ascii_case("cookie") {
        MASK.to_string()
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::{header, url};

    #[test]
    fn credentials_in_urls_are_masked_and_the_rest_kept() {
        assert_eq!(
            url("https://user:hunter2@example.com/in?a=1"),
            "https://user:***@example.com/in?a=1"
        );
        assert_eq!(
            url("https://ghp_abc@example.com/"),
            "https://***@example.com/"
        );
        assert_eq!(
            url(
                "https://x.test/p?token=t1&access_token=t2&api_key=k&sig=s&code=c&X-Signature=z&page=2&codec=h264"
            ),
            "https://x.test/p?token=***&access_token=***&api_key=***&sig=***&code=***&X-Signature=***&page=2&codec=h264"
        );
        assert_eq!(
            url("https://hooks.slack.com/services/T000/B000/XXXXSECRET"),
            "https://hooks.slack.com/services/T000/B000/***"
        );
        assert_eq!(
            url("https://discord.com/api/webhooks/123/tok-en"),
            "https://discord.com/api/webhooks/123/***"
        );
        assert_eq!(
            url("http://127.0.0.1:9000/ingest"),
            "http://127.0.0.1:9000/ingest"
        );
    }

    #[test]
    fn configured_header_values_are_masked_and_signatures_kept() {
        let configured = vec![("X-Api-Key".to_string(), "k-123".to_string())];
        assert_eq!(header(&configured, "x-api-key", "k-123"), "***");
        assert_eq!(header(&configured, "Authorization", "Bearer t"), "***");
        assert_eq!(
            header(&configured, "X-Hub-Signature-256", "sha256=ab"),
            "sha256=ab"
        );
        // A mapping's own value for the header is the mapping's, not the config's secret.
        assert_eq!(header(&configured, "X-Api-Key", "from-jq"), "from-jq");
    }
}
