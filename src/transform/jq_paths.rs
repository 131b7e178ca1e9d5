//! jq's `delpaths`: deleting keys keeps the order of the others. jaq deletes a key by swapping
//! the last one into its place (constant time), so `del(.b)` on `{"a","b","c","d"}` leaves
//! `a, d, c`, and a target receives the keys in an order jq would not give. Paths are sorted and
//! deleted last first, as jq does, so deleting several array elements deletes the ones named.
//! Pure; no I/O.

use jaq_json::{Rc, Val};

type Error = jaq_core::Error<Val>;

/// `input | delpaths(paths)`.
pub(crate) fn delpaths(input: Val, paths: &Val) -> Result<Val, Error> {
    let Val::Arr(paths) = paths else {
        return Err(Error::str("Paths must be specified as an array"));
    };
    let mut paths: Vec<&Val> = paths.iter().collect();
    paths.sort();
    let mut value = input;
    for path in paths.into_iter().rev() {
        let Val::Arr(path) = path else {
            return Err(Error::str("Path must be specified as an array"));
        };
        value = match path.split_first() {
            None => Val::Null,
            Some((first, rest)) => delpath(value, first, rest)?,
        };
    }
    Ok(value)
}

fn delpath(value: Val, key: &Val, rest: &[Val]) -> Result<Val, Error> {
    match (value, key) {
        (Val::Null, _) => Ok(Val::Null),
        (Val::Obj(mut map), Val::TStr(_)) => {
            let entries = Rc::make_mut(&mut map);
            match rest.split_first() {
                None => {
                    entries.shift_remove(key);
                }
                Some((next, rest)) => {
                    if let Some(child) = entries.get_mut(key) {
                        *child = delpath(std::mem::take(child), next, rest)?;
                    }
                }
            }
            Ok(Val::Obj(map))
        }
        (Val::Arr(mut items), Val::Num(_)) => {
            let len = items.len() as isize;
            let Some(i) = whole(key) else {
                return Ok(Val::Arr(items));
            };
            let i = if i < 0 { i + len } else { i };
            if !(0..len).contains(&i) {
                return Ok(Val::Arr(items));
            }
            let list = Rc::make_mut(&mut items);
            match rest.split_first() {
                None => {
                    list.remove(i as usize);
                }
                Some((next, rest)) => {
                    let child = &mut list[i as usize];
                    *child = delpath(std::mem::take(child), next, rest)?;
                }
            }
            Ok(Val::Arr(items))
        }
        (Val::Arr(mut items), Val::Obj(slice)) if rest.is_empty() => {
            let len = items.len() as isize;
            let bound = |k: &str, default: isize| -> isize {
                let at = match slice.get(&Val::utf8_str(k.to_string())) {
                    Some(n @ Val::Num(_)) => whole(n).unwrap_or(default),
                    _ => default,
                };
                (if at < 0 { at + len } else { at }).clamp(0, len)
            };
            let (start, end) = (bound("start", 0), bound("end", len));
            if start < end {
                Rc::make_mut(&mut items).drain(start as usize..end as usize);
            }
            Ok(Val::Arr(items))
        }
        (value, key) => Err(Error::str(format!(
            "Cannot delete field at {} index of {}",
            super::jq_text::kind(key),
            super::jq_text::kind(&value)
        ))),
    }
}

/// A number as an index: fractions are cut down, as jq does.
fn whole(n: &Val) -> Option<isize> {
    use jaq_std::ValT;
    n.as_isize()
        .or_else(|| n.as_f64().map(|f| f.floor() as isize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(input: &str, paths: &str) -> String {
        let parse = |s: &str| jaq_json::read::parse_single(s.as_bytes()).expect("json");
        delpaths(parse(input), &parse(paths))
            .expect("deletes")
            .to_string()
    }

    #[test]
    fn keys_keep_their_order() {
        assert_eq!(
            run(r#"{"a":1,"b":2,"c":3,"d":4}"#, r#"[["b"]]"#),
            r#"{"a":1,"c":3,"d":4}"#
        );
        assert_eq!(
            run(
                r#"{"a":{"x":1,"y":2,"z":3}}"#,
                r#"[["a","x"],["missing","q"]]"#
            ),
            r#"{"a":{"y":2,"z":3}}"#
        );
    }

    #[test]
    fn array_elements_named_are_deleted() {
        assert_eq!(run("[1,2,3,4]", "[[1],[2]]"), "[1,4]");
        assert_eq!(run("[1,2,3]", "[[-1]]"), "[1,2]");
        assert_eq!(run("[1,2,3,4]", r#"[[{"start":0,"end":2}]]"#), "[3,4]");
        assert_eq!(run("[1,2]", "[[]]"), "null");
    }
}
