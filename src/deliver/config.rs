//! The delivery stage's settings: targets (`[targets.NAME]`) as the file writes them ([`raw`]),
//! and validated with every problem keyed: URL, headers, outbound signing (the one scheme →
//! signer table, also used by `hookgate sign`), timeout, retry, concurrency, breaker and rate
//! limit (their ranges in [`super::bounds`]). It never imports `config`, which assembles what
//! this returns.

use super::bounds;
use crate::deliver::breaker::{BreakerPolicy, Rate};
use crate::deliver::retry::RetryPolicy;
use crate::deliver::sign::Signer;
use crate::signature::{Algorithm, Encoding, HmacHeader, Secret};
use crate::validate::Validator;
use std::time::Duration;

/// `[targets.NAME]` as written: serde types that mirror the TOML, and nothing more. Every struct
/// denies unknown keys so a typo is an error, not a silently ignored setting.
pub(crate) mod raw {
    use serde::Deserialize;
    use std::collections::BTreeMap;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Target {
        pub(crate) url: String,
        #[serde(default)]
        pub(crate) headers: BTreeMap<String, String>,
        pub(crate) sign: Option<Sign>,
        pub(crate) timeout: Option<String>,
        pub(crate) retry: Option<Retry>,
        /// Most attempts in flight to this target at once.
        pub(crate) concurrency: Option<usize>,
        /// `{ failures, cool_down }`, or `"off"`.
        pub(crate) breaker: Option<toml::Value>,
        /// `"50/s"`, `"600/m"`, `"100/h"`.
        pub(crate) rate_limit: Option<String>,
        /// Most pending deliveries kept for this target; past it new ones are recorded dead.
        pub(crate) max_queue: Option<u64>,
        /// Port's REST API at `url`: entities of `port` routes written with these credentials.
        pub(crate) port: Option<Port>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Port {
        pub(crate) client_id: String,
        pub(crate) client_secret: String,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Breaker {
        pub(crate) failures: Option<u32>,
        pub(crate) cool_down: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Sign {
        pub(crate) scheme: String,
        pub(crate) secret: Option<String>,
        pub(crate) header: Option<String>,
        pub(crate) prefix: Option<String>,
        pub(crate) encoding: Option<String>,
        /// `port` scheme: sha1, sha256 or plain (the header carries the secret itself).
        pub(crate) algorithm: Option<String>,
        #[serde(default)]
        pub(crate) sha1: bool,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Retry {
        pub(crate) max_attempts: Option<u32>,
        pub(crate) initial: Option<String>,
        pub(crate) max: Option<String>,
    }
}

pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const DEFAULT_CONCURRENCY: usize = 64;
/// A target down for a day at ten events a second stays under it; a million bodies of a few KB
/// is a few GB of store.
pub(crate) const DEFAULT_MAX_QUEUE: u64 = 1_000_000;
/// Past a billion waiting deliveries the store, not this bound, is the limit.
const MAX_MAX_QUEUE: u64 = 1_000_000_000;

/// Where deliveries go.
#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub(crate) name: String,
    pub(crate) url: String,
    /// `url` as an attempt sends to it: normalised (IDNA, percent-encoding), without credentials.
    pub(crate) uri: hyper::Uri,
    /// `Basic …` from credentials written in `url` (`https://user:pass@host/`).
    pub(crate) basic_auth: Option<Secret>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) signer: Signer,
    pub(crate) timeout: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) concurrency: usize,
    /// `None`: the breaker is off.
    pub(crate) breaker: Option<BreakerPolicy>,
    pub(crate) rate_limit: Option<Rate>,
    /// Pending deliveries kept at most; past it new deliveries are recorded dead (route::shed).
    pub(crate) max_queue: u64,
    /// Port's REST API instead of a POST of the message (`deliver::port`).
    pub(crate) port: Option<super::port::PortApi>,
}

/// `[targets.NAME]`, validated; `None` when it cannot be used (the problems are in `v`).
pub(crate) fn target(v: &mut Validator, name: &str, t: raw::Target) -> Option<Target> {
    let key = format!("targets.{name}");
    let endpoint = match reqwest::Url::parse(&t.url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => endpoint(v, &key, u),
        Ok(_) => {
            v.problem(format!("{key}.url"), "must be an http or https URL");
            None
        }
        Err(e) => {
            v.problem(format!("{key}.url"), format!("not a URL: {e}"));
            None
        }
    };
    let (uri, basic_auth) = endpoint.unwrap_or_default();
    let mut headers = Vec::new();
    for (k, value) in t.headers {
        let ok = axum::http::HeaderName::try_from(k.as_str()).is_ok()
            && axum::http::HeaderValue::try_from(value.as_str()).is_ok();
        if ok {
            headers.push((k, value));
        } else {
            v.problem(format!("{key}.headers.{k}"), "not a valid HTTP header");
        }
    }
    let signer = match t.sign {
        None => Signer::None,
        Some(s) => signer(v, &format!("{key}.sign"), s)?,
    };
    let timeout = v.duration(
        &format!("{key}.timeout"),
        t.timeout.as_deref(),
        DEFAULT_TIMEOUT,
        bounds::MAX_TARGET_TIMEOUT,
    );
    let mut retry = RetryPolicy::default();
    if let Some(r) = t.retry {
        if let Some(n) = r.max_attempts {
            let key = format!("{key}.retry.max_attempts");
            retry.max_attempts = v.within(&key, n, 1, bounds::MAX_ATTEMPTS);
        }
        retry.initial = v.duration(
            &format!("{key}.retry.initial"),
            r.initial.as_deref(),
            retry.initial,
            bounds::MAX_RETRY_INITIAL,
        );
        retry.max = v.duration(
            &format!("{key}.retry.max"),
            r.max.as_deref(),
            retry.max,
            bounds::MAX_RETRY_MAX,
        );
        if retry.max < retry.initial {
            v.problem(
                format!("{key}.retry.max"),
                "must not be less than `initial`",
            );
        }
    }
    let concurrency = v.within(
        &format!("{key}.concurrency"),
        t.concurrency.unwrap_or(DEFAULT_CONCURRENCY),
        1,
        bounds::MAX_CONCURRENCY,
    );
    let breaker = bounds::breaker(v, &format!("{key}.breaker"), t.breaker);
    let rate_limit = t.rate_limit.and_then(|r| {
        let parsed = Rate::parse(&r)
            .map_err(|e| v.problem(format!("{key}.rate_limit"), e))
            .ok()?;
        bounds::rate(v, &format!("{key}.rate_limit"), parsed.per_second);
        Some(parsed)
    });
    let max_queue = v.within(
        &format!("{key}.max_queue"),
        t.max_queue.unwrap_or(DEFAULT_MAX_QUEUE),
        1,
        MAX_MAX_QUEUE,
    );
    let port = t.port.and_then(|p| {
        if p.client_id.is_empty() || p.client_secret.is_empty() {
            v.problem(
                format!("{key}.port"),
                "Port's API needs `client_id` and `client_secret`",
            );
            return None;
        }
        if !matches!(signer, Signer::None) {
            v.problem(
                format!("{key}.sign"),
                "Port's API authenticates with its access token: a `port` target signs nothing",
            );
        }
        Some(super::port::PortApi::new(
            p.client_id,
            Secret::new(p.client_secret),
        ))
    });
    Some(Target {
        name: name.to_string(),
        url: t.url,
        uri,
        basic_auth,
        headers,
        signer,
        timeout,
        retry,
        concurrency,
        breaker,
        rate_limit,
        max_queue,
        port,
    })
}

/// The URI an attempt posts to, and the `Authorization` that credentials in the URL stand for.
fn endpoint(
    v: &mut Validator,
    key: &str,
    mut url: reqwest::Url,
) -> Option<(hyper::Uri, Option<Secret>)> {
    let basic_auth = (!url.username().is_empty() || url.password().is_some()).then(|| {
        let decode = |s: &str| {
            percent_encoding::percent_decode_str(s)
                .decode_utf8_lossy()
                .into_owned()
        };
        let user = decode(url.username());
        let password = url.password().map(decode).unwrap_or_default();
        let encoded = base64::Engine::encode(
            &base64::engine::general_purpose::STANDARD,
            format!("{user}:{password}"),
        );
        Secret::new(format!("Basic {encoded}"))
    });
    // Cannot fail for an http(s) URL with a host; an error says so rather than panicking.
    let cleared = url.set_username("").is_ok() && url.set_password(None).is_ok();
    match hyper::Uri::try_from(url.as_str()) {
        Ok(uri) if cleared => Some((uri, basic_auth)),
        Ok(_) => {
            v.problem(
                format!("{key}.url"),
                "cannot take credentials apart from the URL",
            );
            None
        }
        Err(e) => {
            v.problem(format!("{key}.url"), format!("not a URL: {e}"));
            None
        }
    }
}

/// A `sign` table: its scheme's signer, from the one table targets and `hookgate sign` share.
fn signer(v: &mut Validator, key: &str, s: raw::Sign) -> Option<Signer> {
    let secret = match (s.scheme.as_str(), s.secret) {
        ("none", _) => None,
        (_, Some(secret)) if !secret.is_empty() => Some(Secret::new(secret)),
        _ => {
            v.problem(
                format!("{key}.secret"),
                format!("required for scheme `{}`", s.scheme),
            );
            return None;
        }
    };
    let secret = secret.unwrap_or_else(|| Secret::new(""));
    let signer = match s.scheme.as_str() {
        "none" => Signer::None,
        "github" => Signer::Github { secret },
        "hcp" => Signer::Hmac {
            header: HmacHeader::hcp(),
            secret,
        },
        "spacelift" => Signer::Spacelift {
            secret,
            sha1: s.sha1,
        },
        "pulumi" => Signer::Pulumi { secret },
        "tfe" => Signer::Hmac {
            header: HmacHeader::tfe(),
            secret,
        },
        "gitlab" => Signer::Gitlab { secret },
        "standard-webhooks" => {
            if let Err(why) = crate::signature::check_standard_webhooks_secret(secret.expose()) {
                v.problem(format!("{key}.secret"), why);
            }
            Signer::StandardWebhooks {
                key: crate::signature::KeyBytes::new(crate::signature::standard_webhooks_key(
                    secret.expose(),
                )),
            }
        }
        "hmac-sha256" | "hmac-sha512" => {
            let algorithm = if s.scheme == "hmac-sha256" {
                Algorithm::Sha256
            } else {
                Algorithm::Sha512
            };
            let encoding = v.encoding(
                &format!("{key}.encoding"),
                s.encoding.as_deref().unwrap_or("hex"),
            )?;
            let header = s.header.unwrap_or_else(|| "X-Hookgate-Signature".into());
            if axum::http::HeaderName::try_from(header.as_str()).is_err() {
                v.problem(format!("{key}.header"), "not a valid HTTP header name");
            }
            Signer::Hmac {
                header: HmacHeader::new(
                    &header,
                    algorithm,
                    s.prefix.as_deref().unwrap_or(""),
                    encoding,
                ),
                secret,
            }
        }
        "port" => {
            // Port's webhook `security` block: signatureHeaderName, signatureAlgorithm, signaturePrefix.
            let Some(header) = s.header.clone() else {
                v.problem(
                    format!("{key}.header"),
                    "required for scheme `port` (Port's signatureHeaderName)",
                );
                return None;
            };
            let prefix = s.prefix.clone().unwrap_or_default();
            match s.algorithm.as_deref().unwrap_or("sha256") {
                "plain" => Signer::Plain {
                    header,
                    prefix,
                    secret,
                },
                a @ ("sha1" | "sha256") => {
                    let algorithm = if a == "sha1" {
                        Algorithm::Sha1
                    } else {
                        Algorithm::Sha256
                    };
                    Signer::Hmac {
                        header: HmacHeader::new(&header, algorithm, &prefix, Encoding::Hex),
                        secret,
                    }
                }
                other => {
                    v.problem(
                        format!("{key}.algorithm"),
                        format!("expected sha1, sha256 or plain, found `{other}`"),
                    );
                    return None;
                }
            }
        }
        other => {
            v.problem(format!("{key}.scheme"), format!("unknown scheme `{other}` (expected github, gitlab, standard-webhooks, spacelift, pulumi, hcp, tfe, port, hmac-sha256, hmac-sha512 or none)"));
            return None;
        }
    };
    Some(signer)
}

/// The signer of `spec`, from the same scheme table targets use: `hookgate sign` shows what a
/// target signed with `spec` would send. Every problem is in the error, keyed under `sign`.
pub(crate) fn signer_of(spec: raw::Sign) -> Result<Signer, String> {
    let mut v = Validator::default();
    let signer = signer(&mut v, "sign", spec);
    match (signer, v.problems.is_empty()) {
        (Some(signer), true) => Ok(signer),
        _ => Err(v
            .problems
            .iter()
            .map(|(k, why)| format!("{k}: {why}"))
            .collect::<Vec<_>>()
            .join("; ")),
    }
}
