// `node --test` in plugins/sdk-js (scripts/test runs it): the SDK as a plugin sees it, and its
// hand-written type declarations (`index.d.ts`) held to what `index.js` exports.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { test } from 'node:test';
import * as sdk from './hookgate_sdk/index.js';

test('index.d.ts declares every export of index.js, and nothing index.js lacks', () => {
  const dts = readFileSync(new URL('./hookgate_sdk/index.d.ts', import.meta.url), 'utf8');
  const declared = [...dts.matchAll(/^export (?:class|const|function) (\w+)/gm)].map((m) => m[1]);
  assert.deepEqual(declared.sort(), Object.keys(sdk).sort());
});

test('run decodes the envelope and config, and a thrown error becomes a Reject', () => {
  const envelope = JSON.stringify({ id: 'e1', source: 's', event_type: 't', body: { a: { b: 1 } } });
  const out = sdk.run((event, config) => [sdk.Message.json({ b: event.at('a', 'b'), c: config.c })], envelope, '{"c":2}');
  assert.equal(out[0].body, '{"b":1,"c":2}');
  assert.throws(
    () => sdk.run(() => { throw new TypeError('boom'); }, envelope, ''),
    (e) => e instanceof sdk.Reject && e.message === 'TypeError: boom',
  );
  assert.throws(() => sdk.run(() => 'nope', envelope, ''), /array of Message/);
});
