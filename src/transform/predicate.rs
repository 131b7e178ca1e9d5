//! Route filters, and the commonest of them evaluated without jq's interpreter: predicates that
//! compare paths with literals (`==`, `!=`, `<`, `<=`, `>`, `>=`), join the comparisons with
//! `and` and `or` and negate with `| not`, such as
//! `.body.state == "FINISHED" and (.body.pull_request.draft | not)`. Like projections
//! ([`super::projection`]) their work is bounded by the program's and the event's size, so they
//! need no evaluator child: a route whose filter is a predicate and whose transform is a
//! projection (or none) is routed in the gateway.
//!
//! A predicate must mean exactly what jq means: paths are jaq's own indexing, comparisons are
//! jaq's equality and order of values, `and`/`or` look at the left side first and at the right
//! only when it decides (jq's truthiness: all but `false` and `null`), and at most one side of a
//! comparison reads a path, so an error is the same whichever side jq looks at first. Literals
//! are strings without escapes, integers of at most 15 digits, `true`, `false` and `null`.
//! Anything else stays a jq program, run in an evaluator child.

use super::jq::{JqError, JqProgram, passes};
use super::projection::{Parser, is_ident_start, lookup};
use jaq_core::ValT;
use jaq_json::Val;

/// Deeper parentheses stay jq programs: the evaluation recurses a few frames per level (and
/// only per level: chains of `and`, `or` and `| not` are evaluated in loops), so this bounds its
/// stack whatever the program's length.
const MAX_DEPTH: usize = 32;

/// A route's `filter`: a predicate when it is one, else a jq program run in an evaluator child.
#[derive(Debug, Clone)]
pub(crate) enum Filter {
    Native(JqProgram, Predicate),
    Jq(JqProgram),
}

impl Filter {
    pub(crate) fn new(program: JqProgram) -> Self {
        match Predicate::recognise(&program) {
            Some(p) => Self::Native(program, p),
            None => Self::Jq(program),
        }
    }

    /// Whether the event passes: the filter's first output is `true`.
    pub(crate) fn passes(&self, envelope: &Val) -> Result<bool, JqError> {
        match self {
            Self::Native(_, p) => Ok(matches!(p.eval(envelope)?, Val::Bool(true))),
            Self::Jq(program) => Ok(passes(&program.run(envelope.clone())?)),
        }
    }

    /// The program as the config wrote it.
    pub(crate) fn code(&self) -> &str {
        match self {
            Self::Native(program, _) | Self::Jq(program) => program.code(),
        }
    }

    /// Whether it must run in a contained evaluator child (see [`super::Transform::contained`]).
    pub(crate) fn contained(&self) -> bool {
        matches!(self, Self::Jq(_))
    }

    /// The envelope paths it reads, when it reads only those.
    pub(crate) fn reads(&self) -> Option<&[Vec<String>]> {
        match self {
            Self::Native(_, p) => Some(&p.paths),
            Self::Jq(_) => None,
        }
    }
}

/// jq's comparison operators: jaq's equality and its order of values (null, false, true, numbers,
/// strings, arrays, objects), as jq orders them.
#[derive(Debug, Clone, Copy)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl Op {
    fn holds(self, a: &Val, b: &Val) -> bool {
        match self {
            Self::Eq => a == b,
            Self::Ne => a != b,
            Self::Lt => a < b,
            Self::Le => a <= b,
            Self::Gt => a > b,
            Self::Ge => a >= b,
        }
    }

    /// The operator next in `p`'s code, taken.
    fn take(p: &mut Parser) -> Option<Self> {
        let (op, len) = match (p.peek()?, p.code.get(p.at + 1).copied()) {
            (b'=', Some(b'=')) => (Self::Eq, 2),
            (b'!', Some(b'=')) => (Self::Ne, 2),
            (b'<', Some(b'=')) => (Self::Le, 2),
            (b'>', Some(b'=')) => (Self::Ge, 2),
            (b'<', _) => (Self::Lt, 1),
            (b'>', _) => (Self::Gt, 1),
            _ => return None,
        };
        p.at += len;
        Some(op)
    }
}

#[derive(Debug, Clone)]
enum Expr {
    Path(Vec<Val>),
    Literal(Val),
    /// `a op b`.
    Compare(Box<Expr>, Op, Box<Expr>),
    /// `a and b and ...`: a list rather than nested pairs, so that a long chain costs no stack.
    And(Vec<Expr>),
    /// `a or b or ...`
    Or(Vec<Expr>),
    /// `a | not`, negated this many times.
    Not(Box<Expr>, usize),
}

impl Expr {
    /// Whether it looks up a path (and so may fail).
    fn reads(&self) -> bool {
        match self {
            Self::Path(_) => true,
            Self::Literal(_) => false,
            Self::Compare(a, _, b) => a.reads() || b.reads(),
            Self::And(terms) | Self::Or(terms) => terms.iter().any(Self::reads),
            Self::Not(a, _) => a.reads(),
        }
    }
}

/// A jq filter recognised as a predicate; see the module docs.
#[derive(Debug, Clone)]
pub struct Predicate {
    expr: Expr,
    /// Every path `expr` looks up.
    paths: Vec<Vec<String>>,
}

impl Predicate {
    /// `program` (which jaq compiled, so it is valid jq) as a predicate, if it is one.
    pub(crate) fn recognise(program: &JqProgram) -> Option<Self> {
        let mut p = Parser::new(program.code());
        let expr = negations(&mut p, 0)?;
        p.skip_space();
        if p.at != p.code.len() {
            return None;
        }
        Some(Self {
            expr,
            paths: p.paths,
        })
    }

    /// Every path it looks up.
    pub(crate) fn paths(&self) -> &[Vec<String>] {
        &self.paths
    }

    /// The predicate's one output, as jq computes it.
    pub(crate) fn eval(&self, input: &Val) -> Result<Val, JqError> {
        eval(&self.expr, input)
    }
}

fn eval(expr: &Expr, input: &Val) -> Result<Val, JqError> {
    Ok(match expr {
        Expr::Path(keys) => lookup(keys, input)?,
        Expr::Literal(v) => v.clone(),
        Expr::Compare(a, op, b) => Val::Bool(op.holds(&eval(a, input)?, &eval(b, input)?)),
        // `(a and b) and c` is false as soon as one term is: the rest are not evaluated.
        Expr::And(terms) => Val::Bool(!reaches(terms, input, false)?),
        Expr::Or(terms) => Val::Bool(reaches(terms, input, true)?),
        Expr::Not(a, times) => Val::Bool(eval(a, input)?.as_bool() != (times % 2 == 1)),
    })
}

/// Whether one of `terms` has the truth `truth`, evaluated left to right up to the first that
/// has it, as jq's `and`/`or` evaluate their right side only when the left does not decide.
fn reaches(terms: &[Expr], input: &Val, truth: bool) -> Result<bool, JqError> {
    for term in terms {
        if eval(term, input)?.as_bool() == truth {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `a`, `a | not`, `a | not | not` ...: a pipe binds loosest, so `a` is a whole disjunction.
fn negations(p: &mut Parser, depth: usize) -> Option<Expr> {
    let e = disjunction(p, depth)?;
    let mut times = 0;
    loop {
        p.skip_space();
        if p.peek() != Some(b'|') || p.code.get(p.at + 1) == Some(&b'=') {
            break;
        }
        p.at += 1;
        if !word(p, "not") {
            return None;
        }
        times += 1;
    }
    Some(match times {
        0 => e,
        _ => Expr::Not(Box::new(e), times),
    })
}

/// `a or b or ...`
fn disjunction(p: &mut Parser, depth: usize) -> Option<Expr> {
    joined(p, depth, "or", conjunction, Expr::Or)
}

/// `a and b and ...`
fn conjunction(p: &mut Parser, depth: usize) -> Option<Expr> {
    joined(p, depth, "and", comparison, Expr::And)
}

/// Terms `next` parses, joined by the keyword `join`: one term alone, or `make` of them all.
fn joined(
    p: &mut Parser,
    depth: usize,
    join: &str,
    next: fn(&mut Parser, usize) -> Option<Expr>,
    make: fn(Vec<Expr>) -> Expr,
) -> Option<Expr> {
    let mut terms = vec![next(p, depth)?];
    while word(p, join) {
        terms.push(next(p, depth)?);
    }
    Some(match terms.len() {
        1 => terms.pop()?,
        _ => make(terms),
    })
}

/// An operand, or two compared (`==`, `!=`, `<`, `<=`, `>`, `>=`; not two that read paths).
fn comparison(p: &mut Parser, depth: usize) -> Option<Expr> {
    let left = operand(p, depth)?;
    p.skip_space();
    let Some(op) = Op::take(p) else {
        return Some(left);
    };
    let right = operand(p, depth)?;
    if left.reads() && right.reads() {
        return None;
    }
    Some(Expr::Compare(Box::new(left), op, Box::new(right)))
}

/// A path, a literal, or a predicate in parentheses.
fn operand(p: &mut Parser, depth: usize) -> Option<Expr> {
    p.skip_space();
    match p.peek()? {
        b'.' => p.path_keys().map(Expr::Path),
        b'(' if depth < MAX_DEPTH => {
            p.at += 1;
            let inner = negations(p, depth + 1)?;
            p.skip_space();
            p.eat(b')')?;
            Some(inner)
        }
        b'"' => Some(Expr::Literal(Val::utf8_str(p.string()?.into_bytes()))),
        _ => literal(p).map(Expr::Literal),
    }
}

/// `true`, `false`, `null` or an integer of at most 15 digits (exact as a float too).
fn literal(p: &mut Parser) -> Option<Val> {
    for (w, v) in [
        ("true", Val::Bool(true)),
        ("false", Val::Bool(false)),
        ("null", Val::Null),
    ] {
        if word(p, w) {
            return Some(v);
        }
    }
    let start = p.at;
    p.eat(b'-');
    let digits = p.at;
    while matches!(p.peek(), Some(b) if b.is_ascii_digit()) {
        p.at += 1;
    }
    let n = p.at - digits;
    if n == 0 || n > 15 {
        return None;
    }
    // `-0` and `007` are left to jq, as are `1.5`, `1e3` and `1x`.
    let zero_led = p.code[digits] == b'0' && (n > 1 || start != digits);
    let followed = matches!(p.peek(), Some(b) if is_ident_start(b) || b == b'.');
    if zero_led || followed {
        return None;
    }
    let text = std::str::from_utf8(&p.code[start..p.at]).ok()?;
    Some(Val::from(text.parse::<isize>().ok()?))
}

/// Takes the keyword `w` if it comes next, as a whole word.
fn word(p: &mut Parser, w: &str) -> bool {
    p.skip_space();
    let end = p.at + w.len();
    let whole = p.code.get(p.at..end) == Some(w.as_bytes())
        && !matches!(p.code.get(end), Some(&b) if is_ident_start(b) || b.is_ascii_digit());
    if whole {
        p.at = end;
    }
    whole
}

#[cfg(test)]
mod tests {
    use super::*;

    fn recognised(code: &str) -> bool {
        JqProgram::compile(code)
            .ok()
            .and_then(|p| Predicate::recognise(&p))
            .is_some()
    }

    #[test]
    fn comparisons_of_paths_with_literals_are_predicates_and_anything_else_is_not() {
        for code in [
            ".body.state == \"FINISHED\"",
            " .body.state==\"FINISHED\" and .body.stack.id != \"sandbox\" ",
            "\"FINISHED\" == .body.state",
            ".a == 1 or .a == -2 and (.b == null or .c != true)",
            ".body.draft",
            ".a == false",
            "(((.a)))",
            "(.a == 1) == true",
            ".a == 123456789012345",
            ".a < 1 and .b >= \"x\" or .c<=null or .d>false",
            ".headers[\"x-github-event\"] == \"push\"",
            ".a == 1 | not",
            ".a | not",
            ".a and (.b | not | not) or .c|not",
        ] {
            assert!(recognised(code), "{code}");
        }
        for code in [
            ".a == .b",
            "(.a == 1) == (.b == 2)",
            ".a == 1.5",
            ".a == 1e3",
            ".a == 0123",
            ".a == -0",
            ".a == 1234567890123456",
            ".a == \"x\\n\"",
            ".a == \"\\(.b)\"",
            ".a < .b",
            ".a < 1.5",
            ".a >= [1]",
            "not",
            ".a | not and .b",
            ".a | nott",
            ".a | not | .b",
            ".a |= 1",
            ".a == [1]",
            ".a == {}",
            ".a[0] == 1",
            ".a? == 1",
            ".a == 1 # comment",
            ".a == truex",
            ".a == 1 andx",
            ".and == 1",
            "(.a == 1",
            ".a == 1, .b == 2",
        ] {
            assert!(!recognised(code), "{code}");
        }
        let deep = format!("{}.a{}", "(".repeat(40), ")".repeat(40));
        assert!(!recognised(&deep));
        // Chains as long as the nesting check lets through: they are evaluated in loops.
        assert!(recognised(&vec![".a == 1"; 250].join(" and ")));
        assert!(recognised(&vec![".a == 1"; 250].join(" or ")));
        assert!(recognised(&format!(".a{}", " | not".repeat(500))));
    }

    /// The deepest predicate the bounds let through: at each of [`MAX_DEPTH`] levels of
    /// parentheses, the level below starts an `and` chain, which starts an `or` chain, which is
    /// negated (as many links as the nesting check then allows). Recognised, evaluated and
    /// dropped on a thread with the 2 MiB stack of a runtime worker, in a debug build too,
    /// where frames are largest.
    #[test]
    fn the_deepest_predicate_fits_a_runtime_threads_stack() {
        let mut code = ".a".to_string();
        for _ in 0..MAX_DEPTH {
            // 15 levels each by the nesting check's count, 481 in all (of 512).
            code = format!(
                "({code}{}{}{})",
                " and .a".repeat(4),
                " or .a == 2".repeat(4),
                " | not".repeat(2)
            );
        }
        let program = JqProgram::compile(&code).expect("compiles");
        let answers = std::thread::Builder::new()
            .stack_size(2 << 20)
            .spawn(move || {
                let predicate = Predicate::recognise(&program).expect("a predicate");
                let answers: Vec<String> = ["{\"a\": true}", "{\"a\": false}"]
                    .into_iter()
                    .map(|input| {
                        let v = jaq_json::read::parse_single(input.as_bytes()).expect("json");
                        predicate
                            .eval(&v)
                            .map(|v| v.to_string())
                            .expect("evaluates")
                    })
                    .collect();
                drop(predicate);
                answers
            })
            .expect("thread")
            .join()
            .expect("no stack overflow");
        // Each level is `.a` (its `and`s of `.a`, its `or`s false, its `not`s even in number);
        // with `.a` true every `and` is evaluated, with `.a` false every `or`.
        assert_eq!(answers, ["true", "false"]);
    }

    #[test]
    fn a_predicate_answers_exactly_what_jq_answers() {
        let codes = [
            ".body.state == \"FINISHED\" and .body.stack.id != \"sandbox\"",
            ".body.n == 1 or .body.n == -2",
            ".body.flag",
            ".body.flag and .body.s.x == \"y\"",
            ".body.missing or .body.s.x == \"y\"",
            "null == .body.missing and (.body.flag or false)",
            ".body.n != 12345678901234",
            ".body.n < 2 and .body.n >= -2",
            ".body.s > 1 or .body.flag <= true",
            ".body.state < \"QUEUED\" or .body.missing > null",
            ".body.state == \"FINISHED\" and (.body.flag | not)",
            ".body.s.x == \"y\" | not",
            ".body.flag | not | not | not",
            ".body.missing or .body.flag or .body.s.x == \"y\"",
            ".body.flag and .body.n == 1 and .body.s.x == \"y\"",
            ".body[\"s\"][\"x\"] == \"y\" or .[\"body\"].flag",
            ".",
        ];
        let inputs = [
            r#"{"body": {"state": "FINISHED", "stack": {"id": "prod"}, "n": 1.0, "flag": 0}}"#,
            r#"{"body": {"state": "FINISHED", "stack": {"id": "sandbox"}, "n": -2, "flag": false}}"#,
            r#"{"body": {"state": "QUEUED", "n": 12345678901234.0, "flag": true, "s": "text"}}"#,
            r#"{"body": {"n": "1", "flag": null, "s": {"x": "y"}}}"#,
            r#"{"body": {"stack": "s", "state": "FINISHED", "flag": [], "s": 3}}"#,
            r#"{"body": {"n": 1e400, "flag": true, "s": [1]}}"#,
            r#"{"body": null}"#,
            r#"{"body": "x"}"#,
            r#"null"#,
            r#"true"#,
        ];
        for code in codes {
            let program = JqProgram::compile(code).expect("compiles");
            let native = Filter::new(program.clone());
            assert!(matches!(native, Filter::Native(..)), "{code}");
            let jq = Filter::Jq(program.clone());
            let predicate = Predicate::recognise(&program).expect("a predicate");
            for input in inputs {
                let v = jaq_json::read::parse_single(input.as_bytes()).expect("json");
                let show =
                    |r: Result<Val, JqError>| r.map(|v| v.to_string()).map_err(|e| e.to_string());
                let outputs = program.run(v.clone()).map(|out| {
                    assert_eq!(out.len(), 1, "{code} on {input}");
                    out[0].clone()
                });
                assert_eq!(show(predicate.eval(&v)), show(outputs), "{code} on {input}");
                assert_eq!(
                    native.passes(&v).map_err(|e| e.to_string()),
                    jq.passes(&v).map_err(|e| e.to_string()),
                    "{code} on {input}"
                );
            }
        }
    }
}
