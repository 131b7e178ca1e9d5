# hookgate's jq prelude: definitions that make jaq behave as jq 1.8 does where users see it,
# loaded after jaq's own (a later definition shadows an earlier one). Each is jq's own definition
# (jq 1.8.2's src/builtin.jq) or the smallest one that gives jq's result; tests/jq holds them to
# jq's output (tests/it/jq_reference.rs).

# Numbers as jq prints them (5, not 5.0; nan as null): _hg_tojson is src/transform/jq_text.rs.
def tojson: _hg_tojson;
def tostring: if type == "string" then . else _hg_tojson end;
def @json: tojson;
def @text: tostring;

# null joins as "", numbers and booleans as their JSON; anything else must be a string.
def join($x): reduce .[] as $i (null;
    (if . == null then "" else . + $x end) +
    ($i | if . == null then "" elif (type == "boolean" or type == "number") then tojson else . end)
  ) // "";

# Whole seconds in, whole seconds out, one format only (jq's todate and fromdate).
def todateiso8601: strftime("%Y-%m-%dT%H:%M:%SZ");
def todate: todateiso8601;
def fromdateiso8601:
  if type == "string" then
    . as $d
    | try (strptime("%Y-%m-%dT%H:%M:%SZ") | mktime)
      catch error("date \($d | tojson) does not match format \"%Y-%m-%dT%H:%M:%SZ\"")
  else error("strptime/1 requires string inputs and arguments") end;
def fromdate: fromdateiso8601;
def dateadd(u; n): . + n;

# Streaming forms of a value (jq's definitions).
def tostream: path(def r: (.[]? | r), .; r) as $p | getpath($p) | reduce path(.[]?) as $q ([$p, .]; [$p + $q]);
def leaf_paths: paths(scalars);

def IN(s): any(s == .; .);
def IN(src; s): any(src == s; .);

def limit($n; f):
  if $n > 0 then label $out | foreach f as $item (0; . + 1; $item, if . >= $n then break $out else empty end)
  elif $n == 0 then empty
  else error("limit doesn't support negative count") end;
def nth($n; f):
  if $n < 0 then error("nth doesn't support negative indices") else first(skip($n; f)) end;
def flatten($d):
  if $d < 0 then error("flatten depth must not be negative")
  elif $d > 0 then map(if type == "array" then flatten($d - 1) else [.] end) | add // []
  else . end;

# An entry's key is its first non-false `key`, `Key`, `name` or `Name`, and must be a string (jaq
# would build a key jq refuses); its value is `value`, else `Value`.
def from_entries: reduce .[] as $x ({};
  ($x | .key // .Key // .name // .Name) as $k
  | if ($k | type) == "string" then . + { ($k): ($x | if has("value") then .value else .Value end) }
    else error("Cannot use \($k | type) (\($k | tojson)) as object key") end);

def truncate_stream(stream): . as $n | null | stream | . as $input
  | if (.[0] | length) > $n then setpath([0]; .[0][$n:]) else empty end;

# jq's @csv and @tsv rows, and format/1.
def @csv:
  if type != "array" then error("\(type) (\(tojson)) cannot be csv-formatted, only an array can be")
  else map(
      if type == "string" then "\"" + gsub("\""; "\"\"") + "\""
      elif type == "null" then ""
      elif type == "number" or type == "boolean" then tojson
      else error("\(type) (\(tojson)) is not valid in a csv row") end
    ) | join(",") end;
def @tsv:
  if type != "array" then error("\(type) (\(tojson)) cannot be tsv-formatted, only an array can be")
  else map(
      if type == "string" then gsub("\\\\"; "\\\\") | gsub("\t"; "\\t") | gsub("\n"; "\\n") | gsub("\r"; "\\r")
      elif type == "null" then ""
      elif type == "number" or type == "boolean" then tojson
      else error("\(type) (\(tojson)) is not valid in a tsv row") end
    ) | join("\t") end;
def format($f):
  if $f == "json" then tojson elif $f == "text" then tostring
  elif $f == "csv" then @csv elif $f == "tsv" then @tsv
  elif $f == "html" then @html elif $f == "uri" then @uri elif $f == "sh" then @sh
  elif $f == "base64" then @base64 elif $f == "base64d" then @base64d
  else error("\($f) is not a valid format") end;

# Regular expressions on Oniguruma, as jq (src/transform/jq_regex.rs); jq 1.8's definitions, with
# splits and sub written without updating null (which jaq refuses) but to the same results.
def match(re; mode): _match_impl(re; mode; false) | .[];
def match($val): ($val | type) as $vt
  | if $vt == "string" then match($val; null)
    elif $vt == "array" and ($val | length) > 1 then match($val[0]; $val[1])
    elif $vt == "array" and ($val | length) > 0 then match($val[0]; null)
    else error($vt + " not a string or array") end;
def test(re; mode): _match_impl(re; mode; true);
def test($val): ($val | type) as $vt
  | if $vt == "string" then test($val; null)
    elif $vt == "array" and ($val | length) > 1 then test($val[0]; $val[1])
    elif $vt == "array" and ($val | length) > 0 then test($val[0]; null)
    else error($vt + " not a string or array") end;
def _captures: reduce (.captures | .[] | select(.name != null) | { (.name): .string }) as $pair ({}; . + $pair);
def capture(re; mods): match(re; mods) | _captures;
def capture($val): ($val | type) as $vt
  | if $vt == "string" then capture($val; null)
    elif $vt == "array" and ($val | length) > 1 then capture($val[0]; $val[1])
    elif $vt == "array" and ($val | length) > 0 then capture($val[0]; null)
    else error($vt + " not a string or array") end;
def scan($re; $flags):
  match($re; "g" + $flags)
  | if (.captures | length > 0) then [.captures | .[] | .string] else .string end;
def scan($re): scan($re; null);
def splits($re; $flags): . as $s
  | [0, (match($re; $flags + "g") | .offset, .offset + .length), ($s | length)]
  | range(0; length; 2) as $i | $s[.[$i]:.[$i + 1]];
def splits($re): splits($re; null);
def split($re; $flags): [splits($re; $flags)];
def sub($re; s; $flags): . as $in
  | (reduce match($re; $flags) as $edit ({result: [], previous: 0};
        $in[.previous:($edit | .offset)] as $gap
        | [$edit | _captures | s] as $inserts
        | .result as $r
        | .result = [range(0; [($r | length), ($inserts | length)] | max) as $ix
            | if $ix < ($inserts | length) then $r[$ix] + $gap + $inserts[$ix] else $r[$ix] end]
        | .previous = ($edit | .offset + .length))
      | .result[] + $in[.previous:])
    // $in;
def sub($re; s): sub($re; s; "");
def gsub($re; s; flags): sub($re; s; flags + "g");
def gsub($re; s): sub($re; s; "g");

# Deleting keeps the other keys in order (src/transform/jq_paths.rs); walk as jq 1.8 defines it.
def delpaths($paths): _hg_delpaths($paths);
def del(f): delpaths([path(f)]);
def walk(f): def w: if type == "object" then map_values(w) elif type == "array" then map(w) else . end | f; w;

# Slack (Block Kit) helpers, hookgate's own. `slack_escape` (and the format `@slack`): payload text made safe for mrkdwn
# (Slack's control characters &, < and > escaped, so `<!channel>` in a commit author stays text
# and notifies no one). `slack_truncate($n)`: at most $n characters, ending in "…" when cut (never
# inside an escape). `slack_limits`: a whole message cut to Slack's limits, so Slack never refuses
# it (header 150, section text 3000, fields 2000 and at most 10, at most 50 blocks, button URLs
# 3000, context texts 2000, the notification text 40000).
def slack_escape: tostring | gsub("&"; "&amp;") | gsub("<"; "&lt;") | gsub(">"; "&gt;");
# As a format: `@slack "*<\($url)|View>* by \($name)"` escapes the values, not the markup.
def @slack: slack_escape;
def slack_truncate($n):
  tostring | if length > $n then .[:$n - 1] | sub("&[a-z]{0,3}$"; "") | . + "…" else . end;
def slack_limits:
  def cut($n): if type == "string" then slack_truncate($n) else . end;
  def text_cut($n): if type == "object" and has("text") then .text |= cut($n) else . end;
  def block:
    if type != "object" then .
    elif .type == "header" then .text |= text_cut(150)
    elif .type == "section" then
      (if has("text") then .text |= text_cut(3000) else . end)
      | (if (.fields | type) == "array" then .fields |= (.[:10] | map(text_cut(2000))) else . end)
      | (if (.accessory | type) == "object" and (.accessory | has("url")) then .accessory.url |= cut(3000) else . end)
    elif .type == "context" and (.elements | type) == "array" then .elements |= map(text_cut(2000))
    elif .type == "actions" and (.elements | type) == "array" then
      .elements |= map(if type == "object" and has("url") then .url |= cut(3000) else . end)
    else . end;
  if type != "object" then .
  else
    (if has("text") then .text |= cut(40000) else . end)
    | (if (.blocks | type) == "array" then .blocks |= (.[:50] | map(block)) else . end)
  end;
