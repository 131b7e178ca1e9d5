// The component's entry point (`componentize-js ... hookgate_sdk/component.js`): the
// `transformer` world's export, calling `transform` from the project's `app.js`. A thrown string
// is the world's `err(why)`.

import { log as hostLog } from 'hookgate:plugin/host@0.1.0';
import { transform as user } from '../app.js';
import { Reject, run, setHostLog } from './index.js';

setHostLog(hostLog);

export function transform(event, config) {
  try {
    return run(user, event, config).map((m) => ({
      body: String(m.body),
      headers: m.headers.map(([k, v]) => [String(k), String(v)]),
      target: m.target === undefined || m.target === null ? undefined : String(m.target),
    }));
  } catch (e) {
    throw e instanceof Reject ? e.message : String(e?.message ?? e);
  }
}
