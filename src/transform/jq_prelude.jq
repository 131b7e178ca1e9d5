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
def todate: strftime("%Y-%m-%dT%H:%M:%SZ");
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
