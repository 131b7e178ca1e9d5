// teams: a hookgate plugin that turns Spacelift, Pulumi Cloud, HCP (Packer), HCP Terraform and
// Nullstone webhooks into Microsoft Teams messages holding an Adaptive Card.
//
// event → `platforms.ts` (detect the platform, read its payload into a `Summary`) → `card.ts`
// (the Teams message). Pings and verifications send nothing; `outcomes` filters.

import { type Event, Message, Reject, log } from './hookgate_sdk/index.js';
import { render } from './card.js';
import { PLATFORMS, type Platform, summarize } from './platforms.js';
import { OUTCOMES, type Outcome } from './summary.js';

/** The route's `wasm.config`; every key optional, unknown keys refused. */
export interface Config {
  /** Put before every card's title, e.g. `[prod] `. */
  title_prefix?: string;
  /** Only events with these outcomes are sent; the rest are filtered. */
  outcomes?: Outcome[];
  /** Skips detection: `spacelift`, `pulumi`, `hcp`, `tfe` or `nullstone`. */
  platform?: Platform;
}

export function transform(event: Event, config: Config): Message[] {
  const cfg = checkConfig(config);
  let summary;
  try {
    summary = summarize(event, cfg.platform);
  } catch (e) {
    throw new Reject(e instanceof Error ? e.message : String(e));
  }
  if (summary === undefined) {
    log.debug('a ping or verification: nothing to send');
    return [];
  }
  if (cfg.outcomes !== undefined && !cfg.outcomes.includes(summary.outcome)) {
    log.debug(`outcome ${summary.outcome} is not in \`outcomes\`: filtered`);
    return [];
  }
  return [Message.json(render(summary, cfg.title_prefix))];
}

/** The config, checked: a typo must not turn a filter off silently. */
function checkConfig(config: unknown): Config {
  const bad = (why: string): never => {
    throw new Reject(`invalid plugin config: ${why}`);
  };
  if (config === null || typeof config !== 'object' || Array.isArray(config)) return bad('not an object');
  const c = config as Record<string, unknown>;
  for (const key of Object.keys(c)) {
    if (!['title_prefix', 'outcomes', 'platform'].includes(key)) bad(`unknown key \`${key}\``);
  }
  if (c['title_prefix'] !== undefined && typeof c['title_prefix'] !== 'string') bad('`title_prefix` is not a string');
  const outcomes = c['outcomes'];
  if (outcomes !== undefined && !(Array.isArray(outcomes) && outcomes.every((o) => (OUTCOMES as readonly unknown[]).includes(o)))) {
    bad(`\`outcomes\` takes a list of ${OUTCOMES.join(', ')}`);
  }
  const platform = c['platform'];
  if (platform !== undefined && !(PLATFORMS as readonly unknown[]).includes(platform)) {
    bad(`\`platform\` is one of ${PLATFORMS.join(', ')}`);
  }
  return c as Config;
}
