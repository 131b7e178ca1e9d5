// The types of `index.js`, for plugins written in TypeScript (`app.ts`) and for editors checking
// `app.js`. Hand-written to match `index.js` export for export; `../sdk.test.js` holds the two
// equal (every runtime export is declared, every declared value exists), and every TypeScript
// plugin the suite builds type-checks against it.

/** A JSON value, as `JSON.parse` gives it. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** The fields an `Event` is made from (the envelope's, in camelCase); all optional. */
export interface EventFields {
  id?: string;
  source?: string;
  eventType?: string | null;
  receivedAt?: string;
  headers?: Record<string, string>;
  queryParams?: Record<string, string>;
  body?: Json;
}

/** Refuses the event: the delivery fails with this message as its reason. */
export class Reject extends Error {
  constructor(message: string);
}

/** One received webhook, as every route sees it. */
export class Event {
  constructor(fields?: EventFields);
  id: string;
  /** The name of the source (as configured) that received it. */
  source: string;
  /** The type the source's preset gave it, or null. */
  eventType: string | null;
  /** When hookgate received it (RFC 3339). */
  receivedAt: string;
  /** Request headers, lower-case names. Credentials are never included. */
  headers: Record<string, string>;
  queryParams: Record<string, string>;
  /** The producer's body: its JSON, or a string for `format = "raw"` sources. */
  body: Json;
  /** Decodes the host's envelope (JSON text); a bad one is a `Reject`. */
  static fromJson(text: string): Event;
  /** The value at `path` in the body (`event.at('stack', 'id')`), or undefined. */
  at(...path: Array<string | number>): Json | undefined;
}

/** One request the gateway sends: to every target of the route, or to `target` only. */
export class Message {
  constructor(body: string, headers?: Array<[string, string]>, target?: string);
  body: string;
  headers: Array<[string, string]>;
  target: string | undefined;
  /** A JSON body (sent as application/json). */
  static json(value: unknown): Message;
  /** Any text, with its content type (default `text/plain`). */
  static raw(text: string, contentType?: string): Message;
  /** Adds a header to this message; returns it, to chain. */
  header(name: string, value: string): this;
  /** Sends this message to the route's target `name` only; returns it, to chain. */
  toTarget(name: string): this;
}

/** Lines in the gateway's log, under the plugin's name (stderr under `node --test`). */
export const log: {
  trace(message: unknown): void;
  debug(message: unknown): void;
  info(message: unknown): void;
  warn(message: unknown): void;
  error(message: unknown): void;
};

/** A plugin's function: the event and the route's `wasm.config`, to the messages to send. */
export type Transform<Config = Record<string, unknown>> = (event: Event, config: Config) => Message[];

/** Called by the component's entry point with the host's `log` import. */
export function setHostLog(fn: ((level: string, message: string) => void) | null): void;

/** Decodes the host's arguments and calls `transform`; any error becomes a `Reject`. */
export function run<Config>(transform: Transform<Config>, event: string, config: string): Message[];
