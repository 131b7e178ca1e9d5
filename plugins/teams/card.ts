// A `Summary` drawn as a Microsoft Teams message: the envelope Teams' incoming webhooks and
// Workflows ("post card in a chat or channel") take, holding one Adaptive Card 1.5 (the newest
// version Teams renders): a title coloured by outcome, the producer's text as plain text, a
// FactSet, a context line and a button to the run. Bounded to Teams' 28 KB message limit.

import type { Outcome, Summary } from './summary.js';

/** Teams refuses incoming-webhook messages over 28 KB; a margin stays for the request's framing. */
export const MAX_MESSAGE_BYTES = 28 * 1024;
const BUDGET = MAX_MESSAGE_BYTES - 1024;

/** Per-part limits in characters, so one long commit message cannot crowd out the facts. */
const LIMITS = { title: 200, description: 1500, factValue: 300, facts: 12, context: 400 };

const STYLE: Record<Outcome, { container: string; color: string; mark: string }> = {
  succeeded: { container: 'good', color: 'Good', mark: '✅' },
  failed: { container: 'attention', color: 'Attention', mark: '❌' },
  started: { container: 'accent', color: 'Accent', mark: '⏳' },
  needs_approval: { container: 'warning', color: 'Warning', mark: '✋' },
  drift: { container: 'warning', color: 'Warning', mark: '⚠️' },
  info: { container: 'emphasis', color: 'Default', mark: 'ℹ️' },
};

/** The card's title line: `✅ Spacelift · payments-prod · run finished`. */
export function headline(s: Summary, prefix = ''): string {
  return `${prefix}${STYLE[s.outcome].mark} ${s.platform} · ${s.subject} · ${s.status}`;
}

/** The Teams message for `s`, as a JSON value. */
export function render(s: Summary, prefix = ''): object {
  let parts = {
    title: clip(headline(s, prefix), LIMITS.title),
    description: s.description === undefined ? undefined : clip(s.description, LIMITS.description),
    facts: s.facts.slice(0, LIMITS.facts).map((f) => ({ title: f.title, value: clip(f.value, LIMITS.factValue) })),
    context: s.context.length > 0 ? clip(s.context.join(' · '), LIMITS.context) : undefined,
  };
  let message = envelope(s, parts);
  // Characters are not bytes: text of 4-byte characters or escaped controls can still pass the
  // budget. Give up the free text first, then facts from the end.
  while (bytes(message) > BUDGET && (parts.description !== undefined || parts.facts.length > 0)) {
    parts = parts.description !== undefined
      ? { ...parts, description: undefined }
      : { ...parts, facts: parts.facts.slice(0, -1) };
    message = envelope(s, parts);
  }
  if (bytes(message) > BUDGET) message = envelope(s, { ...parts, title: clip(parts.title, 40), context: undefined });
  return message;
}

interface Parts {
  title: string;
  description: string | undefined;
  facts: Array<{ title: string; value: string }>;
  context: string | undefined;
}

function envelope(s: Summary, p: Parts): object {
  const style = STYLE[s.outcome];
  const body: object[] = [
    {
      type: 'Container',
      style: style.container,
      bleed: true,
      items: [{ type: 'TextBlock', text: noLinks(p.title), style: 'heading', weight: 'Bolder', size: 'Medium', color: style.color, wrap: true }],
    },
  ];
  // A TextRun is never read as markdown, so a commit message cannot add links or formatting.
  if (p.description !== undefined) {
    body.push({ type: 'RichTextBlock', inlines: [{ type: 'TextRun', text: p.description }] });
  }
  if (p.facts.length > 0) {
    body.push({ type: 'FactSet', facts: p.facts.map((f) => ({ title: f.title, value: noLinks(f.value) })) });
  }
  if (p.context !== undefined) {
    body.push({ type: 'RichTextBlock', inlines: [{ type: 'TextRun', text: p.context, size: 'Small', isSubtle: true }] });
  }
  const card: Record<string, unknown> = {
    $schema: 'http://adaptivecards.io/schemas/adaptive-card.json',
    type: 'AdaptiveCard',
    version: '1.5',
    fallbackText: p.title,
    body,
  };
  if (s.link !== undefined) card['actions'] = [{ type: 'Action.OpenUrl', title: s.link.title, url: s.link.url }];
  return {
    type: 'message',
    attachments: [{ contentType: 'application/vnd.microsoft.card.adaptive', contentUrl: null, content: card }],
  };
}

/** At most `n` characters (code points, so no surrogate pair is split), `…` marking a cut. */
export function clip(text: string, n: number): string {
  const chars = Array.from(text);
  return chars.length <= n ? text : `${chars.slice(0, n - 1).join('')}…`;
}

/** Teams reads TextBlock and fact text as markdown: break `[text](url)` so producer text links nowhere. */
function noLinks(text: string): string {
  return text.replace(/\]\(/g, '] (');
}

/** The UTF-8 size of `value` as JSON. */
export function bytes(value: unknown): number {
  return new TextEncoder().encode(JSON.stringify(value)).length;
}
