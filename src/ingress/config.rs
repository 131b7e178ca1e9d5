//! The ingress stage's settings: sources (`[sources.NAME]`) as the file writes them ([`raw`]),
//! and validated into presets, verifiers, event-type rules and body formats. Validation reports
//! problems with their keys through the shared [`Validator`]; it never starts anything, and it
//! never imports `config`, which assembles what this returns.

use crate::ingress::drift::Mode;
use crate::ingress::verify::Verifier;
use crate::route::envelope::{BodyFormat, EventTypeRule};
use crate::signature::{GITLAB_TOKEN_HEADER, HmacHeader, Secret};
use crate::validate::Validator;

/// `[sources.NAME]` as written: serde types that mirror the TOML, and nothing more. Every struct
/// denies unknown keys so a typo is an error, not a silently ignored setting.
pub(crate) mod raw {
    use serde::Deserialize;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Source {
        pub(crate) kind: String,
        pub(crate) secret: Option<OneOrMany>,
        pub(crate) verify: Option<Verify>,
        pub(crate) event_type: Option<String>,
        /// `json` (default) or `raw`.
        pub(crate) format: Option<String>,
        /// `warn` or `reject`: check events against the event catalog's schemas.
        pub(crate) validate: Option<String>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(crate) struct Verify {
        pub(crate) header: String,
        pub(crate) algorithm: Option<String>,
        pub(crate) prefix: Option<String>,
        pub(crate) encoding: Option<String>,
        pub(crate) secret: OneOrMany,
    }

    /// A string or a list of strings (secret rotation).
    #[derive(Debug, Deserialize, Clone)]
    #[serde(untagged)]
    pub(crate) enum OneOrMany {
        One(String),
        Many(Vec<String>),
    }

    impl OneOrMany {
        pub(crate) fn into_vec(self) -> Vec<String> {
            match self {
                Self::One(s) => vec![s],
                Self::Many(v) => v,
            }
        }
    }
}

/// A producer that posts to `/hooks/{name}`.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) name: String,
    pub(crate) kind: SourceKind,
    pub(crate) verifier: Option<Verifier>,
    pub(crate) event_type: EventTypeRule,
    pub(crate) format: BodyFormat,
    /// Check events against the event catalog before storing them.
    pub(crate) validate: Option<Mode>,
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
    Tfe,
    Gitlab,
}

impl SourceKind {
    /// The `kind` as the config writes it, and the preset's name in the event catalog.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Generic => "generic",
            Self::Github => "github",
            Self::Spacelift => "spacelift",
            Self::Pulumi => "pulumi",
            Self::Hcp => "hcp",
            Self::Nullstone => "nullstone",
            Self::StandardWebhooks => "standard-webhooks",
            Self::Tfe => "tfe",
            Self::Gitlab => "gitlab",
        }
    }
}

impl SourceKind {
    pub(crate) const ALL: [SourceKind; 9] = [
        Self::Generic,
        Self::Github,
        Self::Spacelift,
        Self::Pulumi,
        Self::Hcp,
        Self::Nullstone,
        Self::StandardWebhooks,
        Self::Tfe,
        Self::Gitlab,
    ];

    /// The kind the config calls `name`.
    pub(crate) fn from_name(name: &str) -> Option<SourceKind> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// How the preset names an event's type when the source sets no `event_type` of its own.
    pub(crate) fn event_type_rule(self) -> EventTypeRule {
        match self {
            Self::Github => EventTypeRule::Header("x-github-event".into()),
            Self::Pulumi => EventTypeRule::Pulumi,
            Self::Spacelift => EventTypeRule::Spacelift,
            Self::Hcp => EventTypeRule::Hcp,
            Self::Tfe => EventTypeRule::Tfe,
            Self::Gitlab => EventTypeRule::Header("x-gitlab-event".into()),
            Self::StandardWebhooks => EventTypeRule::BodyFields(vec!["type".into()]),
            Self::Nullstone => {
                EventTypeRule::BodyFields(vec!["eventAction".into(), "event".into()])
            }
            Self::Generic => EventTypeRule::None,
        }
    }

    /// The header a preset's shared token arrives in: a credential, never stored.
    pub(crate) fn token_header(self) -> Option<&'static str> {
        match self {
            Self::Nullstone => Some(NULLSTONE_TOKEN_HEADER),
            Self::Gitlab => Some(GITLAB_TOKEN_HEADER),
            _ => None,
        }
    }

    /// The query parameter a preset's shared token may arrive in: never stored either.
    pub(crate) fn token_query(self) -> Option<&'static str> {
        match self {
            Self::Nullstone => Some(NULLSTONE_TOKEN_QUERY),
            _ => None,
        }
    }
}

impl Source {
    /// The catalog's description of this source's events, where it applies: a preset the catalog
    /// has, naming events by its own rule (a custom `event_type` could name anything) in JSON.
    pub(crate) fn catalog_preset(&self) -> Option<&'static crate::catalog::Preset> {
        let custom = matches!(
            self.event_type,
            EventTypeRule::Jq(_) | EventTypeRule::Native(_)
        );
        if custom || self.format != BodyFormat::Json {
            return None;
        }
        crate::catalog::preset(self.kind.name())
    }

    /// The event type of this preset's handshake (ping, verification): answered 2xx and stored,
    /// but routed only to routes whose `events` name it.
    pub(crate) fn control_event_type(&self) -> Option<&'static str> {
        match self.kind {
            SourceKind::Github | SourceKind::Pulumi => Some("ping"),
            SourceKind::Hcp => Some("hashicorp.webhook.verification.test"),
            SourceKind::Tfe => Some("verification"),
            _ => None,
        }
    }
}

/// Nullstone does not sign: a source with a secret expects it as this header…
pub(crate) const NULLSTONE_TOKEN_HEADER: &str = "X-Hookgate-Token";
/// …or as this query parameter (for webhook URLs that cannot carry headers).
pub(crate) const NULLSTONE_TOKEN_QUERY: &str = "token";

/// `[sources.NAME]`, validated; `None` when it cannot be used (the problems are in `v`).
pub(crate) fn source(v: &mut Validator, name: &str, s: raw::Source) -> Option<Source> {
    let key = format!("sources.{name}");
    let kind = match s.kind.as_str() {
        "generic" => SourceKind::Generic,
        "github" => SourceKind::Github,
        "spacelift" => SourceKind::Spacelift,
        "pulumi" => SourceKind::Pulumi,
        "hcp" => SourceKind::Hcp,
        "nullstone" => SourceKind::Nullstone,
        "standard-webhooks" => SourceKind::StandardWebhooks,
        "tfe" => SourceKind::Tfe,
        "gitlab" => SourceKind::Gitlab,
        other => {
            v.problem(format!("{key}.kind"), format!("unknown kind `{other}` (expected spacelift, pulumi, hcp, tfe, nullstone, github, gitlab, standard-webhooks or generic)"));
            return None;
        }
    };
    let validate = validate(v, &key, &s, kind);
    let secrets = secrets(v, &format!("{key}.secret"), s.secret);
    let preset = |h: HmacHeader, secrets: Vec<Secret>| {
        (!secrets.is_empty()).then_some(Verifier::Hmac { header: h, secrets })
    };
    let mut verifier = match kind {
        SourceKind::Github => preset(HmacHeader::github(), secrets.clone()),
        SourceKind::Spacelift => preset(HmacHeader::spacelift(), secrets.clone()),
        SourceKind::Pulumi => preset(HmacHeader::pulumi(), secrets.clone()),
        SourceKind::Hcp => preset(HmacHeader::hcp(), secrets.clone()),
        SourceKind::Tfe => preset(HmacHeader::tfe(), secrets.clone()),
        SourceKind::Gitlab => (!secrets.is_empty()).then(|| Verifier::Token {
            header: GITLAB_TOKEN_HEADER.into(),
            query: None,
            secrets: secrets.clone(),
        }),
        SourceKind::StandardWebhooks => {
            for s in &secrets {
                if let Err(why) = crate::signature::check_standard_webhooks_secret(s.expose()) {
                    v.problem(format!("{key}.secret"), why);
                }
            }
            (!secrets.is_empty()).then(|| Verifier::standard_webhooks(&secrets))
        }
        SourceKind::Nullstone => (!secrets.is_empty()).then(|| Verifier::Token {
            header: NULLSTONE_TOKEN_HEADER.into(),
            query: Some(NULLSTONE_TOKEN_QUERY.into()),
            secrets: secrets.clone(),
        }),
        SourceKind::Generic => None,
    };
    if matches!(kind, SourceKind::Github | SourceKind::StandardWebhooks) && secrets.is_empty() {
        v.problem(
            format!("{key}.secret"),
            format!("required for kind `{}`", s.kind),
        );
    }
    if kind == SourceKind::Generic && !secrets.is_empty() {
        v.problem(
            format!("{key}.secret"),
            "a generic source takes its secret in `verify`",
        );
    }
    if let Some(spec) = s.verify {
        if kind != SourceKind::Generic {
            v.problem(
                format!("{key}.verify"),
                "only generic sources take `verify`; presets verify by their own scheme",
            );
        }
        verifier = verify_spec(v, &format!("{key}.verify"), spec);
    }
    let event_type = match (s.event_type, kind) {
        (Some(code), _) => v
            .jq(&format!("{key}.event_type"), &code)
            .map(EventTypeRule::of_program)
            .unwrap_or_default(),
        (None, kind) => kind.event_type_rule(),
    };
    let format = match s.format.as_deref() {
        None | Some("json") => BodyFormat::Json,
        Some("raw") => BodyFormat::Raw,
        Some(other) => {
            v.problem(
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
        validate,
    })
}

/// `validate`: only where the catalog describes the preset, and the preset names the events
/// (a custom `event_type` could name anything, and runs jq, which ingress never does).
fn validate(v: &mut Validator, key: &str, s: &raw::Source, kind: SourceKind) -> Option<Mode> {
    let mode = match s.validate.as_deref()? {
        "warn" => Mode::Warn,
        "reject" => Mode::Reject,
        other => {
            v.problem(
                format!("{key}.validate"),
                format!("expected `warn` or `reject`, found `{other}`"),
            );
            return None;
        }
    };
    let why = if crate::catalog::preset(kind.name()).is_none() {
        Some(format!(
            "the event catalog has no `{}` preset to validate against",
            kind.name()
        ))
    } else if s.event_type.is_some() {
        Some(
            "cannot be used with `event_type`: the catalog knows the preset's own event types"
                .into(),
        )
    } else if s.format.as_deref() == Some("raw") {
        Some("cannot be used with `format = \"raw\"`: the catalog's schemas describe JSON".into())
    } else {
        // Schemas compile when the first event of their type arrives (compiling all of GitHub's
        // up front costs ~40 MB in every process that loads the config); the catalog's unit
        // tests compile every one, so none can fail there.
        None
    };
    match why {
        Some(why) => {
            v.problem(format!("{key}.validate"), why);
            None
        }
        None => Some(mode),
    }
}

/// A generic source's `verify` table.
fn verify_spec(v: &mut Validator, key: &str, spec: raw::Verify) -> Option<Verifier> {
    let algorithm = v.algorithm(
        &format!("{key}.algorithm"),
        spec.algorithm.as_deref().unwrap_or("sha256"),
    )?;
    let encoding = v.encoding(
        &format!("{key}.encoding"),
        spec.encoding.as_deref().unwrap_or("hex"),
    )?;
    let secrets = secrets(v, &format!("{key}.secret"), Some(spec.secret));
    if secrets.is_empty() {
        v.problem(format!("{key}.secret"), "at least one secret is required");
    }
    let header = HmacHeader::new(
        &spec.header,
        algorithm,
        spec.prefix.as_deref().unwrap_or(""),
        encoding,
    );
    Some(Verifier::Hmac { header, secrets })
}

/// A source's secrets: one, or a list while rotating; none of them empty.
fn secrets(v: &mut Validator, key: &str, s: Option<raw::OneOrMany>) -> Vec<Secret> {
    let list = s.map(raw::OneOrMany::into_vec).unwrap_or_default();
    if list.iter().any(String::is_empty) {
        v.problem(key, "secret is empty");
    }
    list.into_iter()
        .filter(|s| !s.is_empty())
        .map(Secret::new)
        .collect()
}
