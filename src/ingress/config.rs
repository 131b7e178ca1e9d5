//! The ingress stage's settings: sources (`[sources.NAME]`), their presets, verifiers, event-type
//! rules and body formats, validated from the file's raw form. Validation reports problems with
//! their keys through the shared [`Validator`]; it never starts anything.

use crate::config::raw;
use crate::config::validator::Validator;
use crate::ingress::verify::Verifier;
use crate::route::envelope::{BodyFormat, EventTypeRule};
use crate::signature::{HmacHeader, Secret};

/// A producer that posts to `/hooks/{name}`.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) name: String,
    pub(crate) kind: SourceKind,
    pub(crate) verifier: Option<Verifier>,
    pub(crate) event_type: EventTypeRule,
    pub(crate) format: BodyFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SourceKind {
    Generic,
    Github,
    Spacelift,
    Pulumi,
    Hcp,
    Nullstone,
    StandardWebhooks,
}

impl Source {
    /// The event type of this preset's handshake (ping, verification): answered 2xx and stored,
    /// but routed only to routes whose `events` name it.
    pub(crate) fn control_event_type(&self) -> Option<&'static str> {
        match self.kind {
            SourceKind::Github | SourceKind::Pulumi => Some("ping"),
            SourceKind::Hcp => Some("hashicorp.webhook.verification.test"),
            _ => None,
        }
    }
}

/// Nullstone does not sign: a source with a secret expects it as this header…
pub(crate) const NULLSTONE_TOKEN_HEADER: &str = "X-Hookgate-Token";
/// …or as this query parameter (for webhook URLs that cannot carry headers).
pub(crate) const NULLSTONE_TOKEN_QUERY: &str = "token";
impl Validator {
    pub(crate) fn source(&mut self, name: &str, s: raw::Source) -> Option<Source> {
        let key = format!("sources.{name}");
        let kind = match s.kind.as_str() {
            "generic" => SourceKind::Generic,
            "github" => SourceKind::Github,
            "spacelift" => SourceKind::Spacelift,
            "pulumi" => SourceKind::Pulumi,
            "hcp" => SourceKind::Hcp,
            "nullstone" => SourceKind::Nullstone,
            "standard-webhooks" => SourceKind::StandardWebhooks,
            other => {
                self.problem(format!("{key}.kind"), format!("unknown kind `{other}` (expected spacelift, pulumi, hcp, nullstone, github, standard-webhooks or generic)"));
                return None;
            }
        };
        let secrets = self.secrets(&format!("{key}.secret"), s.secret);
        let preset = |h: HmacHeader, secrets: Vec<Secret>| {
            (!secrets.is_empty()).then_some(Verifier::Hmac { header: h, secrets })
        };
        let mut verifier = match kind {
            SourceKind::Github => preset(HmacHeader::github(), secrets.clone()),
            SourceKind::Spacelift => preset(HmacHeader::spacelift(), secrets.clone()),
            SourceKind::Pulumi => preset(HmacHeader::pulumi(), secrets.clone()),
            SourceKind::Hcp => preset(HmacHeader::hcp(), secrets.clone()),
            SourceKind::StandardWebhooks => {
                (!secrets.is_empty()).then(|| Verifier::standard_webhooks(&secrets))
            }
            SourceKind::Nullstone => (!secrets.is_empty()).then(|| Verifier::Token {
                header: NULLSTONE_TOKEN_HEADER.into(),
                query: NULLSTONE_TOKEN_QUERY.into(),
                secrets: secrets.clone(),
            }),
            SourceKind::Generic => None,
        };
        if matches!(kind, SourceKind::Github | SourceKind::StandardWebhooks) && secrets.is_empty() {
            self.problem(
                format!("{key}.secret"),
                format!("required for kind `{}`", s.kind),
            );
        }
        if kind == SourceKind::Generic && !secrets.is_empty() {
            self.problem(
                format!("{key}.secret"),
                "a generic source takes its secret in `verify`",
            );
        }
        if let Some(v) = s.verify {
            if kind != SourceKind::Generic {
                self.problem(
                    format!("{key}.verify"),
                    "only generic sources take `verify`; presets verify by their own scheme",
                );
            }
            verifier = self.verify_spec(&format!("{key}.verify"), v);
        }
        let event_type = match (s.event_type, kind) {
            (Some(code), _) => self
                .jq(&format!("{key}.event_type"), &code)
                .map(EventTypeRule::Jq)
                .unwrap_or_default(),
            (None, SourceKind::Github) => EventTypeRule::Header("x-github-event".into()),
            (None, SourceKind::Pulumi) => EventTypeRule::Pulumi,
            (None, SourceKind::Spacelift) => EventTypeRule::Spacelift,
            (None, SourceKind::Hcp) => EventTypeRule::Hcp,
            (None, SourceKind::StandardWebhooks) => EventTypeRule::BodyFields(vec!["type".into()]),
            (None, SourceKind::Nullstone) => {
                EventTypeRule::BodyFields(vec!["eventAction".into(), "event".into()])
            }
            (None, _) => EventTypeRule::None,
        };
        let format = match s.format.as_deref() {
            None | Some("json") => BodyFormat::Json,
            Some("raw") => BodyFormat::Raw,
            Some(other) => {
                self.problem(
                    format!("{key}.format"),
                    format!("expected `json` or `raw`, found `{other}`"),
                );
                BodyFormat::Json
            }
        };
        Some(Source {
            name: name.to_string(),
            kind,
            verifier,
            event_type,
            format,
        })
    }

    pub(crate) fn verify_spec(&mut self, key: &str, v: raw::Verify) -> Option<Verifier> {
        let algorithm = self.algorithm(
            &format!("{key}.algorithm"),
            v.algorithm.as_deref().unwrap_or("sha256"),
        )?;
        let encoding = self.encoding(
            &format!("{key}.encoding"),
            v.encoding.as_deref().unwrap_or("hex"),
        )?;
        let secrets = self.secrets(&format!("{key}.secret"), Some(v.secret));
        if secrets.is_empty() {
            self.problem(format!("{key}.secret"), "at least one secret is required");
        }
        let header = HmacHeader::new(
            &v.header,
            algorithm,
            v.prefix.as_deref().unwrap_or(""),
            encoding,
        );
        Some(Verifier::Hmac { header, secrets })
    }
}
