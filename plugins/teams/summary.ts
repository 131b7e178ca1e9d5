// The shape every platform's event is read into (`platforms.ts` fills it, `card.ts` draws it),
// the outcome vocabulary routes filter on, and small readers of untyped JSON.

import type { Json } from './hookgate_sdk/index.js';

/** What an event means for the people watching the channel. */
export const OUTCOMES = ['succeeded', 'failed', 'started', 'needs_approval', 'drift', 'info'] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** One event, platform-neutral. */
export interface Summary {
  /** `Spacelift`, `Pulumi`, `HCP Packer`, `HCP Terraform`, `Nullstone`... */
  platform: string;
  /** The stack, workspace, app or image it is about. */
  subject: string;
  /** What happened, in a few words (`finished`, `update failed`). */
  status: string;
  outcome: Outcome;
  /** Producer-written free text (a commit message, an error), shown as plain text. */
  description?: string | undefined;
  /** Title and value pairs, in order; empty values are left out. */
  facts: Array<{ title: string; value: string }>;
  /** The run, update or activity page, when the payload has one. */
  link?: { title: string; url: string };
  /** Identifiers worth a small line at the bottom (account, ids). */
  context: string[];
}

export function summary(platform: string, subject: string, status: string, outcome: Outcome): Summary {
  return { platform, subject, status, outcome, facts: [], context: [] };
}

/** Adds a fact when there is a value. */
export function fact(s: Summary, title: string, value: string | undefined): void {
  if (value !== undefined && value !== '') s.facts.push({ title, value });
}

/** The longest link kept: a longer one could not fit the message's budget with the rest. */
const MAX_LINK = 2048;

/** Sets the link when `url` is an absolute https URL of at most `MAX_LINK` characters. */
export function link(s: Summary, title: string, url: string | undefined): void {
  if (url !== undefined && url.length <= MAX_LINK && /^https:\/\/[^\s]+$/i.test(url)) s.link = { title, url };
}

export type JsonObject = { [key: string]: Json };

export function isObject(v: Json | undefined): v is JsonObject {
  return v !== null && v !== undefined && typeof v === 'object' && !Array.isArray(v);
}

/** The value at `path` under `v`, or undefined. */
export function at(v: Json | undefined, ...path: string[]): Json | undefined {
  let cur = v;
  for (const key of path) {
    if (!isObject(cur)) return undefined;
    cur = cur[key];
  }
  return cur;
}

/** A non-empty string at `path`, or undefined. */
export function str(v: Json | undefined, ...path: string[]): string | undefined {
  const x = at(v, ...path);
  return typeof x === 'string' && x !== '' ? x : undefined;
}

/** A string, number or boolean at `path`, as text; or undefined. */
export function text(v: Json | undefined, ...path: string[]): string | undefined {
  const x = at(v, ...path);
  if (typeof x === 'number' || typeof x === 'boolean') return String(x);
  return typeof x === 'string' && x !== '' ? x : undefined;
}

/** A number at `path`, or undefined. */
export function num(v: Json | undefined, ...path: string[]): number | undefined {
  const x = at(v, ...path);
  return typeof x === 'number' ? x : undefined;
}

/** `deploy-failed` → `deploy failed`. */
export function humanize(s: string): string {
  return s.replace(/[-_]+/g, ' ').trim();
}

/** The first 7 characters of a commit hash. */
export function shortSha(hash: string): string {
  return hash.slice(0, 7);
}

/** The outcome of a generic status word (`succeeded`, `failed`, `running`, ...). */
export function fromStatus(status: string): Outcome {
  switch (status.toLowerCase().replace(/_/g, '-')) {
    case 'succeeded': case 'success': case 'completed': case 'complete': case 'finished':
    case 'ok': case 'applied':
      return 'succeeded';
    case 'failed': case 'failure': case 'error': case 'errored':
      return 'failed';
    case 'running': case 'in-progress': case 'queued': case 'accepted': case 'pending':
    case 'started': case 'not-started': case 'planning': case 'applying':
      return 'started';
    case 'needs-approval': case 'awaiting-approval': case 'pending-approval':
      return 'needs_approval';
    default:
      return 'info';
  }
}
