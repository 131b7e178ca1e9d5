// `npm test` (tsc, then node --test): the plugin on every fixture of every platform (copies of
// the event catalog's samples, with the headers each platform sends), each card validated
// against the official Adaptive Card 1.5 schema (vendored in schema/) and Teams' own limits.

import assert from 'node:assert/strict';
import { readFileSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { test } from 'node:test';
import Ajv from 'ajv';
import addFormats from 'ajv-formats';
import { type Config, transform } from './app.js';
import { MAX_MESSAGE_BYTES, bytes, render } from './card.js';
import { Event, type Json, Reject } from './hookgate_sdk/index.js';
import { fact, summary } from './summary.js';

const require = createRequire(import.meta.url);
const here = (path: string): URL => new URL(path, import.meta.url);
const readJson = (path: string): Json => JSON.parse(readFileSync(here(path), 'utf8'));

const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addMetaSchema(require('ajv/dist/refs/json-schema-draft-06.json'));
addFormats(ajv);
// The file names itself with draft-04's `id`, which draft-06 spells `$id` (and ajv 8 refuses);
// renamed here, in memory, so the vendored file stays byte for byte Microsoft's.
const { id, ...schema } = readJson('./schema/adaptive-card-1.5.json') as Record<string, Json>;
const validCard = ajv.compile({ $id: String(id), ...schema });

interface Fixture { name: string; event: Event }

/** Every sample of `preset`, as the gateway would hand it over: its event type and headers. */
function fixtures(preset: string): Fixture[] {
  const catalog = readJson(`./fixtures/${preset}/catalog.json`) as { events: Array<{ type: string; samples: string[] }> };
  const headers = readJson(`./fixtures/${preset}/headers.json`) as Record<string, Record<string, string>>;
  const typeOf = new Map(catalog.events.flatMap((e) => e.samples.map((s) => [s.replace('samples/', ''), e.type] as const)));
  return readdirSync(here(`./fixtures/${preset}/`))
    .filter((f) => f !== 'catalog.json' && f !== 'headers.json')
    .map((f) => ({
      name: `${preset}/${f}`,
      event: new Event({
        id: `evt-${f}`,
        source: preset,
        eventType: typeOf.get(f) ?? null,
        headers: Object.fromEntries(Object.entries(headers[f] ?? {}).map(([k, v]) => [k.toLowerCase(), v])),
        body: readJson(`./fixtures/${preset}/${f}`),
      }),
    }));
}

const PRESETS = ['spacelift', 'pulumi', 'hcp', 'tfe', 'nullstone'];
const all = PRESETS.flatMap(fixtures);
const byName = (name: string): Event => {
  const f = all.find((x) => x.name === name);
  assert.ok(f, `no fixture ${name}`);
  return f.event;
};

type Card = {
  version: string;
  body: Array<{ type: string; style?: string; items?: Array<{ text: string }>; facts?: Array<{ title: string; value: string }> }>;
  actions?: Array<{ type: string; title: string; url: string }>;
};

/** The one message's card, after checking the Teams envelope, the schema and Teams' limits. */
function card(event: Event, config: Config = {}): Card {
  const messages = transform(event, config);
  assert.equal(messages.length, 1);
  const text = messages[0]!.body;
  assert.ok(new TextEncoder().encode(text).length <= MAX_MESSAGE_BYTES, `over 28 KB: ${text.length}`);
  const message = JSON.parse(text);
  assert.equal(message.type, 'message');
  assert.equal(message.attachments.length, 1);
  const [attachment] = message.attachments;
  assert.equal(attachment.contentType, 'application/vnd.microsoft.card.adaptive');
  assert.equal(attachment.contentUrl, null);
  const content: Card & { $schema: string; type: string } = attachment.content;
  assert.ok(validCard(structuredClone(content)), JSON.stringify(validCard.errors, null, 2));
  assert.equal(content.$schema, 'http://adaptivecards.io/schemas/adaptive-card.json');
  assert.equal(content.type, 'AdaptiveCard');
  // Teams renders Adaptive Cards up to 1.5; a newer card shows only its fallback text.
  assert.equal(content.version, '1.5');
  // Incoming webhooks and Workflows cards cannot call back a bot: links only, and few of them.
  for (const action of content.actions ?? []) {
    assert.equal(action.type, 'Action.OpenUrl');
    assert.match(action.url, /^https:\/\//);
  }
  assert.ok((content.actions ?? []).length <= 6);
  return content;
}

const title = (c: Card): string => c.body[0]!.items![0]!.text;
const facts = (c: Card): Record<string, string> =>
  Object.fromEntries((c.body.find((b) => b.type === 'FactSet')?.facts ?? []).map((f) => [f.title, f.value]));

test('every fixture of every platform gives a valid Teams card, or nothing for a ping', () => {
  assert.ok(all.length >= 60, `${all.length} fixtures`);
  for (const preset of PRESETS) assert.ok(all.some((f) => f.name.startsWith(`${preset}/`)), preset);
  const silent = new Set(['pulumi/ping.json', 'hcp/verification.json', 'tfe/verification.json']);
  for (const { name, event } of all) {
    if (silent.has(name)) {
      assert.deepEqual(transform(event, {}), [], name);
      continue;
    }
    const c = card(event);
    assert.ok(title(c).length > 0, name);
    assert.equal(c.body[0]!.type, 'Container', name);
  }
});

// Each platform's run: title, outcome colour, facts and the button to the run.
const CASES: Array<[string, string, string, Record<string, string>, string | undefined]> = [
  ['spacelift/run_finished.json', 'good', 'Spacelift · payments-prod · run finished',
    { Stack: 'payments-prod', State: 'FINISHED', 'Triggered by': 'avery.quill@example.com', Commit: '3f9c2a7 on main by Avery Quill', Changes: '+1 added, ~2 changed, -0 deleted' },
    'https://acme-infra.app.spacelift.io/stack/payments-prod/run/01JXK4W2N8Q6ZC3T5V7B9D1F3H'],
  ['spacelift/run_unconfirmed.json', 'warning', 'Spacelift', { State: 'UNCONFIRMED' }, undefined],
  ['spacelift/internal_error.json', 'attention', 'Spacelift · Invalid Stack Slug Triggered · internal error', { Severity: 'ERROR' }, undefined],
  ['pulumi/stack_update.json', 'good', 'Pulumi · northwind-robotics/fleet-api/prod · update succeeded',
    { User: 'Avery Quill (aquill-dev)', 'Resource changes': 'create 2, update 3' },
    'https://app.pulumi.com/northwind-robotics/fleet-api/prod/updates/87'],
  ['pulumi/stack_update_failed_destroy.json', 'attention', 'Pulumi', {}, undefined],
  ['pulumi/drift_detection.json', 'warning', 'drift detected', {}, undefined],
  ['hcp/packer_version_completed.json', 'good', 'HCP Packer · ubuntu-jammy-base v7 · completed version',
    { Actor: 'Avery Quill <avery.quill@example.com>', 'Version status': 'ACTIVE' }, undefined],
  ['tfe/run_completed.json', 'good', 'HCP Terraform · billing-api-prod · run applied',
    { 'Created by': 'jdoe-ops', 'Run status': 'applied' },
    'https://app.terraform.io/app/acme-org/billing-api-prod/runs/run-AbCdEf123GhJk45m'],
  ['tfe/run_errored.json', 'attention', 'HCP Terraform · network-core · run errored', {}, undefined],
  ['tfe/run_needs_attention.json', 'warning', 'HCP Terraform', {}, undefined],
  ['tfe/assessment_drifted.json', 'warning', 'drift detected', { 'Resources drifted': '3' }, undefined],
  ['nullstone/deployed.json', 'good', 'Nullstone · checkout-web in prod · deployed',
    { App: 'checkout-web', Environment: 'prod', Version: '2025.06.12-3', Commit: '9e8d7c6 on main' },
    'https://app.nullstone.io/orgs/acme-labs/stacks/4821/envs/220318/blocks/120377/activity'],
  ['nullstone/deploy_failed.json', 'attention', 'Nullstone', {}, undefined],
  ['nullstone/block_needs_approval.json', 'warning', 'Nullstone', {}, undefined],
];

for (const [name, style, inTitle, expected, url] of CASES) {
  test(`${name}: ${style}, "${inTitle}"`, () => {
    const c = card(byName(name));
    assert.equal(c.body[0]!.style, style);
    assert.ok(title(c).includes(inTitle), title(c));
    const got = facts(c);
    for (const [k, v] of Object.entries(expected)) assert.equal(got[k], v, `${name}: ${k} in ${JSON.stringify(got)}`);
    if (url !== undefined) assert.deepEqual(c.actions?.map((a) => a.url), [url]);
  });
}

test('a payload without a URL gets no button', () => {
  assert.equal(card(byName('hcp/packer_version_completed.json')).actions, undefined);
  assert.equal(card(byName('nullstone/legacy_first_deployed.json')).actions, undefined);
});

test('the schema check can fail: a card it must refuse', () => {
  const c = card(byName('spacelift/run_finished.json')) as unknown as Record<string, unknown>;
  assert.equal(validCard({ ...c, body: [{ type: 'FactSet' }] }), false);
  assert.equal(validCard({ ...c, colour: 'red' }), false);
  assert.equal(validCard({ ...c, actions: [{ type: 'Action.OpenUrl', title: 'no url' }] }), false);
});

test('config: title_prefix, outcomes, and mistakes refused', () => {
  const event = byName('spacelift/run_finished.json');
  assert.ok(title(card(event, { title_prefix: '[prod] ' })).startsWith('[prod] '));
  assert.deepEqual(transform(event, { outcomes: ['failed'] }), []);
  assert.equal(transform(event, { outcomes: ['succeeded'] }).length, 1);
  const refused = (config: unknown, why: RegExp): void =>
    assert.throws(() => transform(event, config as Config), (e: unknown) => e instanceof Reject && why.test(e.message));
  refused({ title_prefx: 'x' }, /unknown key `title_prefx`/);
  refused({ outcomes: ['broken'] }, /outcomes/);
  refused({ platform: 'jenkins' }, /platform/);
});

test('a body that is not an object fails the delivery with why; an unknown platform gets a generic card', () => {
  const raw = new Event({ source: 'raw', body: 'text' });
  assert.throws(() => transform(raw, {}), (e: unknown) => e instanceof Reject && /not a JSON object/.test(e.message));
  const other = new Event({ id: 'e1', source: 'jenkins', eventType: 'build', body: { a: 1 } });
  assert.ok(title(card(other)).includes('jenkins · build · received'));
});

test('hostile text stays plain and within 28 KB', () => {
  const event = byName('spacelift/run_finished.json');
  const body = structuredClone(event.body) as { run: { commit: { message: string; authorName: string } }; stack: { name: string } };
  body.run.commit.message = `[click](https://evil.example) ${'😀'.repeat(20000)}`;
  body.run.commit.authorName = '\u0001'.repeat(5000);
  body.stack.name = '[x](https://evil.example)'.repeat(50);
  const c = card(new Event({ ...event, body: body as unknown as Json }));
  assert.ok(!title(c).includes(']('), title(c));
  for (const value of Object.values(facts(c))) assert.ok(!value.includes(']('), value);
});

test('past the byte budget a card gives up its free text first, and stays valid', () => {
  // A control character is 1 character and 6 bytes of JSON (\u0001): the character limits alone
  // would let this message reach about 35 KB.
  const controls = '\u0001'.repeat(400);
  const s = summary('Spacelift', controls, 'run finished', 'succeeded');
  s.description = controls.repeat(5);
  for (let i = 0; i < 12; i += 1) fact(s, `Fact ${i}`, controls);
  s.context.push(controls);
  const message = render(s) as { attachments: Array<{ content: Card }> };
  assert.ok(bytes(message) <= MAX_MESSAGE_BYTES, `${bytes(message)} bytes`);
  const content = message.attachments[0]!.content;
  assert.ok(validCard(structuredClone(content)), JSON.stringify(validCard.errors));
  assert.equal(content.body.filter((b) => b.type === 'RichTextBlock').length, 1, 'only the context line is left');
  assert.equal(Object.keys(facts(content)).length, 12);
});
