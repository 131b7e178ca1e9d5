//! What of an event's envelope its source's routes can read, so the envelope holds only that.
//!
//! Parsing a body into jq values is most of what routing an event costs in the gateway. When
//! every route of a source reads fixed paths (a projection, `transform::projection`; a filter
//! that is a predicate, `transform::predicate`) or nothing (a body passed through), and its
//! event-type rule reads known fields or paths, the envelope is built with only those paths'
//! values ([`super::envelope::Envelope::build_pruned`]). Anything that may read more (any other
//! jq, a plugin) needs the whole.
//!
//! A [`Tree`] must never leave out what a reader reads: where unsure, it asks for the whole.

use super::envelope::EventTypeRule;
use super::rules::Route;

/// Envelope paths to keep: a node that is `whole` keeps its value entire, else only its children.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tree {
    pub(crate) whole: bool,
    pub(crate) children: Vec<(String, Tree)>,
    /// Each child's key as the envelope holds it, made once: shared, not copied, into each
    /// event's envelope.
    pub(crate) keys: Vec<jaq_json::Val>,
}

impl Tree {
    /// Everything.
    pub(crate) fn all() -> Self {
        Self {
            whole: true,
            children: Vec::new(),
            keys: Vec::new(),
        }
    }

    /// Keeps the value at `path` entire (the empty path: everything).
    pub(crate) fn add(&mut self, path: &[impl AsRef<str>]) {
        if self.whole {
            return;
        }
        let Some((first, rest)) = path.split_first() else {
            *self = Self::all();
            return;
        };
        let key = first.as_ref();
        let at = match self.children.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                self.children.push((key.to_string(), Self::default()));
                self.keys
                    .push(jaq_json::Val::utf8_str(key.as_bytes().to_vec()));
                self.children.len() - 1
            }
        };
        self.children[at].1.add(rest);
    }

    /// The subtree under `key`, if anything under it is kept.
    pub(crate) fn child(&self, key: &str) -> Option<&Tree> {
        self.children.iter().find(|(k, _)| k == key).map(|(_, t)| t)
    }
}

/// What the routes of `source` (with event-type rule `rule`) can read of its envelopes.
pub(crate) fn of_source<'a>(
    source: &str,
    rule: &EventTypeRule,
    routes: impl IntoIterator<Item = &'a Route>,
) -> Tree {
    let mut tree = Tree::default();
    let body = |tree: &mut Tree, fields: &[&str]| {
        for f in fields {
            tree.add(&["body", f]);
        }
    };
    match rule {
        EventTypeRule::None | EventTypeRule::Header(_) => {}
        EventTypeRule::BodyFields(fields) => {
            for f in fields {
                tree.add(&["body", f.as_str()]);
            }
        }
        EventTypeRule::Spacelift => body(&mut tree, &["event_type", "error"]),
        EventTypeRule::Hcp => body(&mut tree, &["event_source", "event_action"]),
        EventTypeRule::Tfe => body(
            &mut tree,
            &["trigger", "notifications", "change_request_url"],
        ),
        // The kind is a header; the filter names come from these fields of the body.
        EventTypeRule::Pulumi => body(
            &mut tree,
            &["action", "kind", "result", "status", "driftDetected"],
        ),
        EventTypeRule::Native(p) => p.paths().iter().for_each(|path| tree.add(path)),
        EventTypeRule::Jq(_) => return Tree::all(),
    }
    for route in routes.into_iter().filter(|r| r.source == source) {
        if route.wasm.is_some() {
            return Tree::all();
        }
        if let Some(filter) = &route.filter {
            match filter.reads() {
                Some(paths) => paths.iter().for_each(|p| tree.add(p)),
                None => return Tree::all(),
            }
        }
        let Some(transform) = &route.transform else {
            continue;
        };
        match transform.reads() {
            Some(paths) => paths.iter().for_each(|p| tree.add(p)),
            None => return Tree::all(),
        }
    }
    tree
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_kept_whole_covers_the_paths_under_it() {
        let mut t = Tree::default();
        t.add(&["body", "stack", "id"]);
        t.add(&["body", "state"]);
        t.add(&["body", "stack"]);
        t.add(&["body", "stack", "labels"]);
        let body = t.child("body").expect("body");
        assert!(!body.whole);
        assert!(body.child("stack").expect("stack").whole);
        assert!(body.child("stack").expect("stack").children.is_empty());
        assert!(body.child("state").expect("state").whole);
        assert!(t.child("headers").is_none());
        t.add(&[] as &[&str]);
        assert_eq!(t, Tree::all());
    }
}
