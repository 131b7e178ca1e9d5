// hookgate's JavaScript SDK: a plugin is one function in `app.js`,
//
//     export function transform(event, config) { return [Message.json({...})]; }
//
// and this module does the rest: it decodes the event envelope and the route's config, checks
// and encodes your messages, turns a thrown error into a failed delivery with its message as the
// reason (`throw new Reject("why")`, or any other error), and sends `log.info(...)` lines to the
// gateway's log. `component.js` is the component's entry point, which `hookgate plugin build`
// hands to componentize-js; this file imports nothing of the host, so `node --test` runs your
// plugin on your machine (log lines then go to stderr).

/** Refuses the event: the delivery fails with this message as its reason. */
export class Reject extends Error {
  constructor(message) {
    super(message);
    this.name = 'Reject';
  }
}

/** One received webhook, as every route sees it. */
export class Event {
  constructor(fields = {}) {
    this.id = fields.id ?? '';
    /** The name of the source (as configured) that received it. */
    this.source = fields.source ?? '';
    /** The type the source's preset gave it, or null. */
    this.eventType = fields.eventType ?? null;
    /** When hookgate received it (RFC 3339). */
    this.receivedAt = fields.receivedAt ?? '';
    /** Request headers, lower-case names. Credentials are never included. */
    this.headers = fields.headers ?? {};
    this.queryParams = fields.queryParams ?? {};
    /** The producer's body: its JSON, or a string for `format = "raw"` sources. */
    this.body = fields.body ?? null;
  }

  static fromJson(text) {
    let v;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new Reject(`invalid event envelope: ${e.message}`);
    }
    if (v === null || typeof v !== 'object' || Array.isArray(v)) {
      throw new Reject('invalid event envelope: not an object');
    }
    return new Event({
      id: v.id,
      source: v.source,
      eventType: v.event_type,
      receivedAt: v.received_at,
      headers: v.headers,
      queryParams: v.queryParams,
      body: v.body,
    });
  }

  /** The value at `path` in the body (`event.at('stack', 'id')`), or undefined. */
  at(...path) {
    let v = this.body;
    for (const key of path) {
      if (v === null || typeof v !== 'object' || !(key in v)) return undefined;
      v = v[key];
    }
    return v ?? undefined;
  }
}

/** One request the gateway sends: to every target of the route, or to `target` only. */
export class Message {
  constructor(body, headers = [], target = undefined) {
    this.body = body;
    this.headers = headers;
    this.target = target;
  }

  /** A JSON body (sent as application/json). */
  static json(value) {
    return new Message(JSON.stringify(value));
  }

  /** Any text, with its content type. */
  static raw(text, contentType = 'text/plain') {
    return new Message(String(text), [['content-type', contentType]]);
  }

  header(name, value) {
    this.headers.push([String(name), String(value)]);
    return this;
  }

  toTarget(name) {
    this.target = String(name);
    return this;
  }
}

let hostLog = null;

/** Called by the component's entry point with the host's `log` import. */
export function setHostLog(fn) {
  hostLog = fn;
}

function write(level, message) {
  if (hostLog) hostLog(level, String(message));
  else console.error(`[plugin ${level}] ${message}`);
}

/** Lines in the gateway's log, under the plugin's name. */
export const log = {
  trace: (m) => write('trace', m),
  debug: (m) => write('debug', m),
  info: (m) => write('info', m),
  warn: (m) => write('warn', m),
  error: (m) => write('error', m),
};

/** Decodes the host's arguments and calls `transform`; any error becomes a `Reject`. */
export function run(transform, event, config) {
  const ev = Event.fromJson(event);
  let cfg = {};
  const text = String(config ?? '').trim();
  if (text !== '' && text !== 'null') {
    try {
      cfg = JSON.parse(text);
    } catch (e) {
      throw new Reject(`invalid plugin config: ${e.message}`);
    }
  }
  let out;
  try {
    out = transform(ev, cfg);
  } catch (e) {
    if (e instanceof Reject) throw e;
    throw new Reject(`${e?.name ?? 'Error'}: ${e?.message ?? e}`);
  }
  if (!Array.isArray(out) || !out.every((m) => m instanceof Message)) {
    throw new Reject('transform must return an array of Message');
  }
  return out;
}
