// Each platform's payloads read into a `Summary`: Spacelift, Pulumi Cloud, HCP (Packer),
// HCP Terraform and Nullstone, told apart by their headers and the shape of their bodies; an
// event from anything else gets a short generic card.

import type { Event, Json } from './hookgate_sdk/index.js';
import {
  type JsonObject, type Outcome, type Summary, at, fact, fromStatus, humanize, isObject, link, num,
  shortSha, str, summary, text,
} from './summary.js';

export const PLATFORMS = ['spacelift', 'pulumi', 'hcp', 'tfe', 'nullstone'] as const;
export type Platform = (typeof PLATFORMS)[number];

/** Event types that only check that a webhook works: nobody wants them in a channel. */
const CONTROL_EVENTS = new Set(['ping', 'verification', 'hashicorp.webhook.verification.test', 'hookgate.ping']);

/** The platform `event` came from, from its headers, then its body's shape. */
export function detect(event: Event): Platform | undefined {
  const h = event.headers;
  if (h['pulumi-webhook-kind'] !== undefined) return 'pulumi';
  if (h['x-hcp-webhook-signature'] !== undefined || event.eventType?.startsWith('hashicorp.')) return 'hcp';
  if (h['x-tfe-notification-signature'] !== undefined) return 'tfe';
  const b = event.body;
  if (!isObject(b)) return undefined;
  const has = (k: string): boolean => k in b;
  if (str(b, 'event_source') === 'spacelift' || (has('run') && has('stack') && has('state'))
    || (has('error') && has('severity') && has('account'))) return 'spacelift';
  if (has('organization') && (has('stackName') || has('projectName'))) return 'pulumi';
  if (str(b, 'event_source')?.startsWith('hashicorp.')) return 'hcp';
  if (has('notification_configuration_id') || str(b, 'trigger_scope') !== undefined) return 'tfe';
  if (has('eventAction') || (has('event') && has('blockId'))) return 'nullstone';
  return undefined;
}

/** The summary of `event`, or undefined for a ping or verification. */
export function summarize(event: Event, platform: Platform | undefined): Summary | undefined {
  const kind = event.eventType ?? undefined;
  if (kind !== undefined && CONTROL_EVENTS.has(kind)) return undefined;
  const body = event.body;
  if (!isObject(body)) {
    const what = Array.isArray(body) ? 'an array' : body === null ? 'null' : `a ${typeof body}`;
    throw new Error(`event body is ${what}, not a JSON object`);
  }
  switch (platform ?? detect(event)) {
    case 'spacelift': return spacelift(body);
    case 'pulumi': return pulumi(event.headers['pulumi-webhook-kind'] ?? kind, body);
    case 'hcp': return hcp(body);
    case 'tfe': return tfe(body);
    case 'nullstone': return nullstone(body);
    case undefined: {
      const s = summary(event.source || 'hookgate', kind ?? 'event', 'received', 'info');
      if (event.id) s.context.push(`event ${event.id}`);
      return s;
    }
  }
}

// Spacelift: run-state webhooks and internal errors.

function spacelift(b: JsonObject): Summary {
  if (isObject(b['run'])) return spaceliftRun(b);
  if (b['error'] !== undefined) {
    const s = summary('Spacelift', str(b, 'title') ?? 'Spacelift error', 'internal error', 'failed');
    s.description = str(b, 'body');
    fact(s, 'Error', text(b, 'error'));
    fact(s, 'Severity', text(b, 'severity'));
    account(s, str(b, 'account'));
    return s;
  }
  const s = summary('Spacelift', 'event', 'received', 'info');
  account(s, str(b, 'account'));
  return s;
}

function spaceliftRun(b: JsonObject): Summary {
  const state = str(b, 'state') ?? 'UNKNOWN';
  const drift = at(b, 'run', 'driftDetection') === true;
  const changes = ['added', 'changed', 'deleted'].map((k) => num(b, 'run', 'delta', k) ?? 0);
  let outcome = spaceliftOutcome(state);
  if (drift && outcome === 'succeeded' && changes.some((n) => n > 0)) outcome = 'drift';
  const status = outcome === 'drift' ? 'drift detected' : `${drift ? 'drift detection run' : 'run'} ${humanize(state).toLowerCase()}`;
  const s = summary('Spacelift', str(b, 'stack', 'name') ?? str(b, 'stack', 'id') ?? 'unknown stack', status, outcome);
  s.description = str(b, 'run', 'commit', 'message');
  fact(s, 'Stack', str(b, 'stack', 'name') ?? str(b, 'stack', 'id'));
  fact(s, 'State', state);
  const who = str(b, 'run', 'triggeredBy');
  fact(s, 'Triggered by', who?.startsWith('api::') ? `API key ${who.slice(5)}` : who);
  if (at(b, 'run', 'delta') !== undefined) {
    const [added, changed, deleted] = changes;
    fact(s, 'Changes', `+${added} added, ~${changed} changed, -${deleted} deleted`);
  }
  fact(s, 'Commit', commitLine(str(b, 'run', 'commit', 'hash'), str(b, 'run', 'branch'),
    str(b, 'run', 'commit', 'authorName') ?? str(b, 'run', 'commit', 'authorLogin')));
  fact(s, 'Run type', str(b, 'run', 'type'));
  link(s, 'View run', str(b, 'run', 'url'));
  if (s.link === undefined) link(s, 'View stack', str(b, 'stack', 'url'));
  account(s, str(b, 'account'));
  if (str(b, 'run', 'id')) s.context.push(`run ${str(b, 'run', 'id')}`);
  return s;
}

function spaceliftOutcome(state: string): Outcome {
  switch (state) {
    case 'FINISHED': return 'succeeded';
    case 'FAILED': return 'failed';
    case 'UNCONFIRMED': case 'PENDING_REVIEW': return 'needs_approval';
    case 'QUEUED': case 'READY': case 'PENDING': case 'PREPARING': case 'PREPARING_APPLY':
    case 'PREPARING_REPLAN': case 'INITIALIZING': case 'PLANNING': case 'CONFIRMED':
    case 'APPLYING': case 'PERFORMING': case 'DESTROYING': case 'REPLAN_REQUESTED':
      return 'started';
    // CANCELED, DISCARDED, STOPPED, SKIPPED...: someone chose this; not a failure.
    default: return 'info';
  }
}

/** `3f9c2a7 on main by Avery Quill`, with whatever parts are known. */
function commitLine(hash: string | undefined, branch: string | undefined, author: string | undefined): string | undefined {
  if (hash === undefined) return undefined;
  return [shortSha(hash), branch && `on ${branch}`, author && `by ${author}`].filter(Boolean).join(' ');
}

function account(s: Summary, name: string | undefined): void {
  if (name !== undefined) s.context.push(`account ${name}`);
}

// Pulumi Cloud: the kind is the Pulumi-Webhook-Kind header, else read from the body's fields.

function pulumi(kindHeader: string | undefined, b: JsonObject): Summary | undefined {
  const kind = kindHeader ?? pulumiKind(b);
  if (kind === 'ping') return undefined;
  const org = str(b, 'organization', 'githubLogin') ?? str(b, 'organization', 'name');
  const subject = [org, str(b, 'projectName'), str(b, 'stackName')].filter(Boolean).join('/') || 'unknown stack';
  let status: string;
  let outcome: Outcome = 'info';
  if (kind === 'stack_update' || kind === 'stack_preview') {
    const preview = kind === 'stack_preview' || b['isPreview'] === true;
    const op = `${str(b, 'kind') ?? 'update'}${preview ? ' preview' : ''}`;
    const result = str(b, 'result') ?? 'unknown';
    status = `${op} ${result}`;
    outcome = fromStatus(result);
  } else if (kind === 'deployment') {
    const st = str(b, 'status') ?? 'unknown';
    status = `deployment ${humanize(st)}`;
    outcome = fromStatus(st);
  } else if (kind === 'drift_detection') {
    const st = str(b, 'status') ?? 'unknown';
    if (b['driftDetected'] === true) [status, outcome] = ['drift detected', 'drift'];
    else if (b['driftDetected'] === false && fromStatus(st) === 'succeeded') [status, outcome] = ['no drift', 'succeeded'];
    else [status, outcome] = [`drift detection ${humanize(st)}`, fromStatus(st)];
  } else if (kind === 'drift_remediation') {
    const st = str(b, 'status') ?? 'unknown';
    [status, outcome] = [`drift remediation ${humanize(st)}`, fromStatus(st)];
  } else if (kind.startsWith('policy_violation')) {
    const level = kind.replace(/^policy_violation_?/, '');
    status = level ? `${level} policy violation` : 'policy violation';
    outcome = level === 'advisory' ? 'info' : 'failed';
  } else if (kind === 'stack') {
    status = `stack ${str(b, 'action') ?? 'changed'}`;
  } else {
    status = humanize(str(b, 'action') ? `${kind} ${str(b, 'action')}` : kind);
  }
  const s = summary('Pulumi', subject, status, outcome);
  fact(s, 'Stack', subject === 'unknown stack' ? undefined : subject);
  const name = str(b, 'user', 'name');
  const login = str(b, 'user', 'githubLogin');
  fact(s, 'User', name && login && name !== login ? `${name} (${login})` : name ?? login);
  fact(s, 'Operation', kind === 'deployment' ? str(b, 'operation') : undefined);
  fact(s, 'Deployment', text(b, 'version') && kind === 'deployment' ? `#${text(b, 'version')}` : undefined);
  fact(s, 'Resource changes', resourceChanges(at(b, 'resourceChanges')));
  const label = kind === 'deployment' ? 'View deployment'
    : kind.startsWith('drift') ? 'View drift run' : kind === 'stack_preview' ? 'View preview' : 'View update';
  link(s, label, str(b, 'updateUrl') ?? str(b, 'deploymentUrl') ?? str(b, 'referenceUrl'));
  if (str(b, 'organization', 'name')) s.context.push(`organization ${str(b, 'organization', 'name')}`);
  s.context.push(`kind ${kind}`);
  return s;
}

function pulumiKind(b: JsonObject): string {
  const has = (k: string): boolean => k in b;
  if (has('deploymentUrl')) return 'deployment';
  if (has('driftDetected')) return 'drift_detection';
  if (has('referenceUrl')) return 'drift_remediation';
  if (b['isPreview'] === true) return 'stack_preview';
  if (has('updateUrl')) return 'stack_update';
  if (has('action')) return 'stack';
  if (has('message') && !has('stackName')) return 'ping';
  return 'unknown';
}

/** `create 2, update 3` (unchanged resources left out). */
function resourceChanges(v: Json | undefined): string | undefined {
  if (!isObject(v)) return undefined;
  const parts = Object.entries(v)
    .filter(([op, n]) => op !== 'same' && typeof n === 'number' && n > 0)
    .map(([op, n]) => `${op} ${String(n)}`);
  return parts.length > 0 ? parts.join(', ') : undefined;
}

// HCP: Packer version (and older iteration) events; other HCP services plainly. No web URL.

function hcp(b: JsonObject): Summary | undefined {
  const source = str(b, 'event_source') ?? '';
  const action = str(b, 'event_action') ?? '';
  if (source === 'hashicorp.webhook.verification') return undefined;
  const description = str(b, 'event_description') ?? action;
  let s: Summary;
  if (source.startsWith('hashicorp.packer.')) {
    const version = at(b, 'event_payload', 'version') ?? at(b, 'event_payload', 'iteration');
    const bucket = str(b, 'event_payload', 'bucket', 'name') ?? str(b, 'event_payload', 'bucket', 'slug') ?? 'unknown bucket';
    const name = str(version, 'name') ?? text(version, 'version');
    const status = (str(version, 'status') ?? '').toUpperCase();
    const outcome: Outcome = status.includes('FAIL') || status.includes('CANCEL') ? 'failed'
      : action === 'complete' ? 'succeeded' : action === 'create' ? 'started' : 'info';
    s = summary('HCP Packer', name ? `${bucket} ${name}` : bucket, description.toLowerCase(), outcome);
    fact(s, 'Bucket', bucket);
    fact(s, 'Version status', text(version, 'status'));
    fact(s, 'Fingerprint', text(version, 'fingerprint'));
    fact(s, 'Artifacts', artifacts(at(b, 'event_payload', 'builds')));
    fact(s, 'Revocation', text(version, 'revocation_message'));
  } else {
    s = summary('HCP', str(b, 'resource_name') ?? str(b, 'resource_id') ?? source, description, 'info');
  }
  const user = at(b, 'event_payload', 'actor', 'user');
  const [name, email] = [str(user, 'name'), str(user, 'email')];
  fact(s, 'Actor', name && email ? `${name} <${email}>` : name ?? email ?? str(b, 'event_payload', 'actor', 'principal_id'));
  if (str(b, 'event_payload', 'project_id')) s.context.push(`project ${str(b, 'event_payload', 'project_id')}`);
  if (str(b, 'event_id')) s.context.push(`event ${str(b, 'event_id')}`);
  return s;
}

/** `aws ami-0c4f2a9e7b1d3f5a6 (us-west-2)`, one per artifact. */
function artifacts(builds: Json | undefined): string | undefined {
  if (!Array.isArray(builds)) return undefined;
  const lines = builds.flatMap((build) => {
    const list = at(build, 'artifacts');
    return Array.isArray(list)
      ? list.map((a) => {
        const region = str(a, 'region');
        return `${str(build, 'platform') ?? '?'} ${str(a, 'external_identifier') ?? '?'}${region ? ` (${region})` : ''}`;
      })
      : [];
  });
  return lines.length > 0 ? lines.join(', ') : undefined;
}

// HCP Terraform (and Terraform Enterprise) notifications: runs (payload version 1), and
// workspace health and other scopes (version 2).

function tfe(b: JsonObject): Summary | undefined {
  const first = Array.isArray(b['notifications']) ? b['notifications'][0] : undefined;
  const changeRequest = str(b, 'change_request_subject') !== undefined;
  const trigger = str(first, 'trigger') ?? str(b, 'trigger') ?? (changeRequest ? 'change_request:created' : 'unknown');
  if (trigger === 'verification') return undefined;
  const workspace = str(b, 'workspace_name') ?? str(b, 'details', 'workspace_name') ?? 'unknown workspace';
  const message = str(first, 'message') ?? str(b, 'message') ?? humanize(trigger.replace(':', ' '));
  const runStatus = str(first, 'run_status') ?? str(b, 'details', 'run_status');
  const createError = str(b, 'details', 'run_create_error_message');
  const s = summary('HCP Terraform', workspace, message.toLowerCase(), tfeOutcome(trigger, runStatus, createError));
  s.description = str(b, 'run_message') ?? str(b, 'change_request_message') ?? createError;
  fact(s, 'Workspace', workspace === 'unknown workspace' ? undefined : workspace);
  fact(s, 'Change request', str(b, 'change_request_subject'));
  fact(s, 'Run status', runStatus);
  fact(s, 'Created by', str(b, 'run_created_by') ?? str(b, 'change_request_created_by'));
  fact(s, 'Resources drifted', text(b, 'details', 'new_assessment_result', 'resources_drifted'));
  fact(s, 'Checks failed', text(b, 'details', 'new_assessment_result', 'checks_failed'));
  link(s, changeRequest ? 'View change request' : 'View run', str(b, 'run_url') ?? str(b, 'change_request_url'));
  const org = str(b, 'organization_name') ?? str(b, 'details', 'organization_name');
  if (org) s.context.push(`organization ${org}`);
  if (str(b, 'run_id')) s.context.push(`run ${str(b, 'run_id')}`);
  s.context.push(`trigger ${trigger}`);
  return s;
}

function tfeOutcome(trigger: string, runStatus: string | undefined, createError: string | undefined): Outcome {
  if (trigger === 'run:needs_attention') return 'needs_approval';
  if (trigger === 'assessment:drifted') return 'drift';
  // `run:errored` also reports runs someone canceled or discarded: a choice, not a failure.
  if (runStatus !== undefined && /cancel|discard/.test(runStatus)) return 'info';
  if (/failed|failure|errored/.test(trigger) || createError !== undefined) return 'failed';
  if (runStatus === 'planned_and_finished' || runStatus === 'applied') return 'succeeded';
  return runStatus !== undefined ? fromStatus(runStatus) : 'info';
}

// Nullstone: current webhooks (`{eventAction, eventStatus, block, environment, ...}`) and the
// legacy per-block format (`{event, blockId, envName, ...}`, no URL).

function nullstone(b: JsonObject): Summary {
  if (b['eventAction'] === undefined) return nullstoneLegacy(b);
  const app = str(b, 'block', 'name') ?? 'unknown app';
  const env = str(b, 'environment', 'name');
  const status = humanize(str(b, 'action') ?? str(b, 'eventAction') ?? 'event');
  const st = str(b, 'eventStatus');
  // Approval requests carry no status: their action says it.
  const action = str(b, 'eventAction') ?? '';
  const outcome: Outcome = st ? fromStatus(st)
    : action.includes('needs-approval') ? 'needs_approval' : action.includes('fail') ? 'failed' : 'info';
  const s = summary('Nullstone', env ? `${app} in ${env}` : app, status, outcome);
  s.description = str(b, 'message');
  fact(s, 'App', app);
  fact(s, 'Environment', env);
  fact(s, 'Stack', str(b, 'stack', 'name'));
  fact(s, 'Version', text(b, 'appVersion'));
  fact(s, 'Commit', commitLine(str(b, 'initiator', 'commitInfo', 'commitSha'), str(b, 'initiator', 'commitInfo', 'branch'), undefined));
  const [source, event] = [str(b, 'initiator', 'trigger', 'source'), str(b, 'initiator', 'trigger', 'event')];
  fact(s, 'Triggered by', source && event ? `${source} (${event})` : source ?? event);
  const module = str(b, 'module');
  fact(s, 'Module', module && str(b, 'moduleVersion') ? `${module}@${str(b, 'moduleVersion')}` : module);
  link(s, 'View activity', str(b, 'targetUrl'));
  if (str(b, 'stack', 'orgName')) s.context.push(`org ${str(b, 'stack', 'orgName')}`);
  s.context.push(`event ${str(b, 'eventAction') ?? '?'}`);
  return s;
}

function nullstoneLegacy(b: JsonObject): Summary {
  const event = str(b, 'event') ?? 'event';
  const block = text(b, 'blockId') ?? '?';
  const env = str(b, 'envName');
  const outcome: Outcome = event.includes('fail') ? 'failed'
    : event.endsWith('deployed') || event.endsWith('launched') ? 'succeeded' : 'info';
  const s = summary('Nullstone', env ? `block ${block} in ${env}` : `block ${block}`, humanize(event), outcome);
  fact(s, 'Stack', text(b, 'stackId') && `#${text(b, 'stackId')}`);
  fact(s, 'Environment', env);
  fact(s, 'Environment type', text(b, 'envType'));
  if (str(b, 'orgName')) s.context.push(`org ${str(b, 'orgName')}`);
  return s;
}
