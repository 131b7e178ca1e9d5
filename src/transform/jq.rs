//! jq programs, compiled once with jaq and run against envelopes.
//!
//! The function set is jaq's core, std and json libraries minus `env` (a mapping must never read
//! the gateway's environment: secrets live there) and with no `$ENV`; `halt` and `halt_error`
//! become ordinary errors instead of exiting the process. This module never does I/O.
//!
//! Compiling is guarded: jaq recurses once per level of nesting with no limit of its own, and a
//! stack overflow aborts the process, so a program is first checked by [`super::nesting`] and
//! then parsed and compiled on a thread of its own with a known, generous stack
//! ([`COMPILE_STACK`]) — the same in `check`, at start, on reload and in `try`, whatever thread
//! the caller runs on (tokio's blocking threads have 2 MiB).

use jaq_core::load::{Arena, File, Loader};
use jaq_core::{Ctx, Vars, data::JustLut};
use jaq_json::Val;
use std::sync::Arc;

type Data = JustLut<Val>;

/// The most values one program may yield for one event; past it the run fails instead of
/// fanning one event out into an unbounded number of deliveries.
pub(crate) const MAX_OUTPUTS: usize = 1000;

/// A compiled jq program. Cheap to clone; `Send + Sync`.
#[derive(Clone)]
pub struct JqProgram {
    code: Arc<str>,
    filter: Arc<jaq_core::Filter<Data>>,
}

impl std::fmt::Debug for JqProgram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("JqProgram").field(&self.code).finish()
    }
}

/// The stack of the thread that parses and compiles one program: four times what the worst
/// program within [`super::nesting::MAX_NESTING`] needs in a debug build (measured by
/// `compile_stack_is_enough` below; 2 MiB is not enough).
pub(crate) const COMPILE_STACK: usize = 32 * 1024 * 1024;

/// Why a program does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CompileError {
    /// Too long or nested too deeply to be parsed safely.
    #[error(transparent)]
    Shape(#[from] super::nesting::ShapeError),
    /// A syntax error or an undefined name, as jaq describes it (with byte offsets).
    #[error("{0}")]
    Invalid(String),
}

/// A runtime failure of a program, with jq's own message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JqError {
    #[error("jq error: {0}")]
    Runtime(String),
    #[error("jq program halted with exit code {0}")]
    Halted(i32),
    #[error("jq program yielded more than {MAX_OUTPUTS} values")]
    TooManyOutputs,
}

impl JqProgram {
    /// The program as written.
    pub(crate) fn code(&self) -> &str {
        &self.code
    }

    /// Parses and compiles `code`; the error names what is wrong and where (byte offset).
    pub fn compile(code: &str) -> Result<Self, CompileError> {
        super::nesting::check(code)?;
        let owned = code.to_string();
        let spawned = std::thread::Builder::new()
            .name("jq-compile".into())
            .stack_size(COMPILE_STACK)
            .spawn(move || Self::compile_here(&owned));
        match spawned {
            Ok(thread) => thread
                .join()
                .unwrap_or_else(|_| Err(CompileError::Invalid("the jq compiler panicked".into()))),
            // Not compiled on the caller's stack instead: a program near the nesting limit
            // needs more than a tokio blocking thread's 2 MiB.
            Err(e) => Err(CompileError::Invalid(format!(
                "cannot start a thread to compile it: {e}"
            ))),
        }
    }

    /// Parses and compiles on the calling thread, which needs a stack of [`COMPILE_STACK`];
    /// `code` has passed the nesting check. Interpolated strings are compiled as jq's (see
    /// [`super::jq_interp`]); errors are reported on the code as written.
    fn compile_here(code: &str) -> Result<Self, CompileError> {
        if let Some(rewritten) = super::jq_interp::with_jq_interpolation(code)
            && let Ok(filter) = Self::compile_code(&rewritten)
        {
            return Ok(Self {
                code: code.into(),
                filter: Arc::new(filter),
            });
        }
        // No interpolation, or one where jaq takes no format (`."\(.k)"`): as written.
        let filter = Self::compile_code(code)?;
        Ok(Self {
            code: code.into(),
            filter: Arc::new(filter),
        })
    }

    fn compile_code(code: &str) -> Result<jaq_core::Filter<Data>, CompileError> {
        let defs = jaq_core::defs()
            .chain(jaq_std::defs())
            .chain(jaq_json::defs())
            .chain(prelude());
        let funs = jaq_core::funs::<Data>()
            .chain(jaq_std::funs())
            .chain(jaq_json::funs())
            .chain(natives())
            .filter(|(name, _, _)| !FORBIDDEN.contains(name));
        let loader = Loader::new(defs);
        let arena = Arena::default();
        let modules = loader
            .load(&arena, File { code, path: () })
            .map_err(|errs| CompileError::Invalid(describe_load_errors(code, &errs)))?;
        let filter = jaq_core::Compiler::default()
            .with_funs(funs)
            .compile(modules)
            .map_err(|errs| {
                let parts: Vec<String> = errs
                    .into_iter()
                    .flat_map(|(_, undefined)| undefined)
                    .map(|(name, kind)| match offset_in(code, name) {
                        Some(at) => format!("undefined {} `{name}` at offset {at}", kind.as_str()),
                        None => format!("undefined {} `{name}`", kind.as_str()),
                    })
                    .collect();
                CompileError::Invalid(parts.join("; "))
            })?;
        Ok(filter)
    }

    /// Runs the program on `input` and collects every output.
    pub fn run(&self, input: Val) -> Result<Vec<Val>, JqError> {
        let ctx = Ctx::<Data>::new(&self.filter.lut, Vars::new([]));
        let mut outputs = Vec::new();
        for item in self.filter.id.run((ctx, input)) {
            match item {
                Ok(v) => outputs.push(v),
                Err(exn) => return Err(describe_exn(exn)),
            }
            if outputs.len() > MAX_OUTPUTS {
                return Err(JqError::TooManyOutputs);
            }
        }
        Ok(outputs)
    }
}

/// hookgate's definitions over jaq's (`jq_prelude.jq`): where jaq and jq 1.8 part ways in what
/// users see, jq's behaviour.
fn prelude() -> impl Iterator<Item = jaq_core::load::parse::Def<&'static str>> {
    // A test below compiles it: a syntax error in it fails the suite, not a user's program.
    jaq_core::load::parse(include_str!("jq_prelude.jq"), |p| p.defs())
        .unwrap_or_default()
        .into_iter()
}

/// Native filters the prelude calls.
fn natives<D: for<'a> jaq_core::DataT<V<'a> = Val>>()
-> impl Iterator<Item = jaq_core::native::Fun<D>> {
    use jaq_core::native::{Filter, bome, run, v};
    let filters: [Filter<jaq_core::RunPtr<D>>; 3] = [
        ("_hg_tojson", v(0), |cv| {
            bome(
                super::jq_text::to_text(&cv.1)
                    .map(Val::from)
                    .map_err(jaq_core::Error::str),
            )
        }),
        ("_match_impl", v(3), |mut cv| {
            let test = cv.0.pop_var();
            let flags = cv.0.pop_var();
            let re = cv.0.pop_var();
            let test = matches!(test, Val::Bool(true));
            bome(super::jq_regex::match_impl(&cv.1, &re, &flags, test))
        }),
        ("_hg_delpaths", v(1), |mut cv| {
            let paths = cv.0.pop_var();
            bome(super::jq_paths::delpaths(cv.1, &paths))
        }),
    ];
    filters.into_iter().map(|f| run::<D>(f))
}

/// Functions a mapping may not call.
const FORBIDDEN: &[&str] = &["env", "input", "inputs"];

fn describe_exn(exn: jaq_core::Exn<Val>) -> JqError {
    match exn.get_err() {
        Ok(err) => JqError::Runtime(err.to_string()),
        Err(exn) => match exn.get_halt() {
            Ok(code) => JqError::Halted(code),
            Err(_) => JqError::Runtime("unexpected control flow (break outside its label)".into()),
        },
    }
}

fn describe_load_errors<P>(code: &str, errs: &jaq_core::load::Errors<&str, P>) -> String {
    use jaq_core::load::Error;
    let offset = |s: &str| (s.as_ptr() as usize).saturating_sub(code.as_ptr() as usize);
    let mut parts = Vec::new();
    for (_, err) in errs {
        match err {
            Error::Io(items) => parts.extend(items.iter().map(|(m, e)| format!("{m}: {e}"))),
            Error::Lex(items) => parts.extend(items.iter().map(|(expect, at)| {
                format!(
                    "lex error at offset {}: {}",
                    offset(at),
                    lex_expected(code, expect)
                )
            })),
            Error::Parse(items) => parts.extend(items.iter().map(|(expect, at)| {
                let found = at.chars().take(20).collect::<String>();
                let found = if found.is_empty() {
                    "end of program".to_string()
                } else {
                    format!("`{found}`")
                };
                format!(
                    "parse error at offset {}: expected {}, found {found}",
                    offset(at),
                    expect.as_str()
                )
            })),
        }
    }
    parts.join("; ")
}

/// Where `part` (a slice of `code`, as jaq's errors hold them) starts in `code`; `None` for a
/// name from the standard library's definitions.
fn offset_in(code: &str, part: &str) -> Option<usize> {
    let (start, at) = (code.as_ptr() as usize, part.as_ptr() as usize);
    (start..=start + code.len())
        .contains(&at)
        .then(|| at - start)
}

/// What the lexer wanted, in words: an unclosed delimiter names where it opened.
fn lex_expected(code: &str, expect: &jaq_core::load::lex::Expect<&str>) -> String {
    use jaq_core::load::lex::Expect;
    let closing = |open: &str| match open {
        "(" => "a closing parenthesis",
        "[" => "a closing bracket",
        "{" => "a closing brace",
        "\"" => "a closing quote",
        _ => "a closing delimiter",
    };
    match expect {
        Expect::Delim(open) => match offset_in(code, open) {
            Some(at) => format!("expected {} for the `{open}` at offset {at}", closing(open)),
            None => format!("expected {}", closing(open)),
        },
        other => format!("expected {}", other.as_str()),
    }
}

/// Serialises a value as compact JSON, as `jq -c` prints it; an object key that is not a string
/// (which jaq lets a program build) is an error, as it is in jq.
pub fn to_json(v: &Val) -> Result<Vec<u8>, JqError> {
    super::jq_text::to_text(v)
        .map(String::into_bytes)
        .map_err(|e| JqError::Runtime(e.to_string()))
}

/// Whether a filter's outputs let an event pass: the first value must be `true`.
pub(crate) fn passes(outputs: &[Val]) -> bool {
    matches!(outputs.first(), Some(Val::Bool(true)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(code: &str, input: &str) -> Result<Vec<String>, JqError> {
        let p = JqProgram::compile(code).expect("compiles");
        let input = jaq_json::read::parse_single(input.as_bytes()).expect("json");
        p.run(input)
            .map(|vs| vs.iter().map(|v| v.to_string()).collect())
    }

    #[test]
    fn the_prelude_parses_whole() {
        let written = include_str!("jq_prelude.jq")
            .lines()
            .filter(|l| l.starts_with("def "))
            .count();
        assert!(written > 10);
        assert_eq!(prelude().count(), written);
    }

    #[test]
    fn slack_helpers_escape_and_keep_to_slack_limits() {
        let out = run(r#""<!channel> & co" | slack_escape"#, "null").expect("runs");
        assert_eq!(out, [r#""&lt;!channel&gt; &amp; co""#]);
        let out = run(
            r#"("é" * 10) + "&" | slack_escape | slack_truncate(12)"#,
            "null",
        )
        .expect("runs");
        assert_eq!(out, [r#""éééééééééé…""#]);
        let long = r#"{text: ("x" * 50000), blocks: ([range(60)] | map(
            {type: "section", text: {type: "mrkdwn", text: ("y" * 4000)},
             fields: [range(12) | {type: "mrkdwn", text: ("z" * 2500)}]})
          + [{type: "header", text: {type: "plain_text", text: ("h" * 200)}}])}
          | slack_limits
          | [(.text | length), (.blocks | length), (.blocks[0].text.text | length),
             (.blocks[0].fields | length), (.blocks[0].fields[0].text | length)]"#;
        assert_eq!(
            run(long, "null").expect("runs"),
            ["[40000,50,3000,10,2000]"]
        );
    }

    #[test]
    fn runs_and_keeps_key_order() {
        assert_eq!(
            run("{b: .x, a: 1}", r#"{"x": "y"}"#).unwrap(),
            vec![r#"{"b":"y","a":1}"#]
        );
    }

    #[test]
    fn several_outputs() {
        assert_eq!(run(".[]", "[1,2,3]").unwrap(), vec!["1", "2", "3"]);
    }

    #[test]
    fn runtime_error_carries_jq_message() {
        let err = run(".a + 1", r#"{"a": "s"}"#).unwrap_err();
        assert!(
            matches!(err, JqError::Runtime(ref m) if m.contains("cannot")),
            "{err}"
        );
    }

    #[test]
    fn env_is_not_available() {
        let err = JqProgram::compile("env").unwrap_err().to_string();
        assert!(err.contains("undefined filter `env`"), "{err}");
        assert!(JqProgram::compile("$ENV").is_err());
    }

    #[test]
    fn halt_is_an_error_not_an_exit() {
        assert_eq!(run("halt", "1").unwrap_err(), JqError::Halted(0));
        assert!(run(r#""boom" | halt_error"#, "1").is_err());
    }

    #[test]
    fn syntax_error_is_described() {
        let err = JqProgram::compile(".a | {").unwrap_err().to_string();
        assert!(err.contains("offset"), "{err}");
    }

    #[test]
    fn deep_nesting_is_refused_before_jaq_sees_it() {
        let code = format!("{}true{}", "(".repeat(800), ")".repeat(800));
        let err = JqProgram::compile(&code).unwrap_err();
        assert!(matches!(err, CompileError::Shape(_)), "{err}");
        assert!(err.to_string().contains("nests more than"), "{err}");
    }

    /// Programs just inside the nesting limit, of every shape the scan counts, compile on a
    /// quarter of [`COMPILE_STACK`]: the real thread has four times what the worst one needs.
    #[test]
    fn compile_stack_is_enough() {
        let n = super::super::nesting::MAX_NESTING - 2;
        let shapes = [
            format!("{}true{}", "(".repeat(n), ")".repeat(n)),
            format!("{}1{}", "[".repeat(n), "]".repeat(n)),
            format!("{}1{}", "{a:".repeat(n), "}".repeat(n)),
            format!("{}1", "try ".repeat(n)),
            format!("{}1", "- ".repeat(n)),
            format!("{}1{}", "if true then ".repeat(n), " end".repeat(n)),
            format!("{}.", ". as $x | ".repeat(n / 2)),
            format!("1{}", " + 1".repeat(n)),
            format!("1{}", " | 1".repeat(n)),
            format!("{}.", "def f: ".repeat(n)),
            format!("{}1{}", "\"\\(".repeat(n / 2), ")\"".repeat(n / 2)),
        ];
        for code in shapes {
            assert_eq!(
                super::super::nesting::check(&code),
                Ok(()),
                "{}",
                &code[..30]
            );
            let thread = std::thread::Builder::new()
                .stack_size(COMPILE_STACK / 4)
                .spawn(move || JqProgram::compile_here(&code).map(drop))
                .expect("thread");
            // Compiling may fail (`def f:` without a body is not jq); it must not overflow.
            let _ = thread.join().expect("no overflow");
        }
    }

    #[test]
    fn fan_out_is_bounded() {
        assert_eq!(
            run("range(5000)", "null").unwrap_err(),
            JqError::TooManyOutputs
        );
    }

    #[test]
    fn filter_passes_only_on_true() {
        let t = |code: &str| {
            let p = JqProgram::compile(code).unwrap();
            passes(&p.run(Val::Null).unwrap())
        };
        assert!(t("true"));
        assert!(!t("false"));
        assert!(!t("1"));
        assert!(!t("empty"));
    }
}
