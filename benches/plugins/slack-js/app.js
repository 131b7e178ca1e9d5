// slack-notify's Spacelift message (benches/slack.jq) in JavaScript: the plugin benchmark's
// like-for-like comparison of a JavaScript plugin with the same message from Rust, Python and jq.

import { Message } from "./hookgate_sdk/index.js";

const OUTCOME = { FINISHED: "succeeded", FAILED: "failed", UNCONFIRMED: "needs_approval", PENDING_REVIEW: "needs_approval" };
const COLOUR = { succeeded: "#2eb886", failed: "#a30200", needs_approval: "#daa038", started: "#daa038" };
const EMOJI = { succeeded: ":white_check_mark:", failed: ":x:", needs_approval: ":raised_hand:", started: ":hourglass_flowing_sand:" };

const mrkdwn = (text) => ({ type: "mrkdwn", text });

export function transform(event, config) {
  const body = event.body;
  const run = body.run ?? {};
  const commit = run.commit ?? {};
  const delta = run.delta ?? {};
  const outcome = OUTCOME[body.state] ?? "started";
  const title = `Spacelift · ${body.stack.name} · run ${body.state.toLowerCase()}`;
  const head = `${EMOJI[outcome]} ${title}`;
  return [Message.json({
    text: head,
    blocks: [
      { type: "header", text: { type: "plain_text", text: head, emoji: true } },
      { type: "section", text: mrkdwn((commit.message ?? "").slice(0, 300)) },
    ],
    attachments: [{
      color: COLOUR[outcome],
      fallback: title,
      blocks: [
        { type: "section", fields: [
          mrkdwn(`*Triggered by*\n${run.triggeredBy ?? "unknown"}`),
          mrkdwn(`*Changes*\n+${delta.added ?? 0} added, ~${delta.changed ?? 0} changed, -${delta.deleted ?? 0} deleted`),
          mrkdwn(`*Commit*\n${(commit.hash ?? "").slice(0, 7)} on ${run.branch ?? "?"} by ${commit.authorName ?? "?"}`),
          mrkdwn(`*Run type*\n${run.type}`),
        ] },
        { type: "actions", elements: [{ type: "button", text: { type: "plain_text", text: "View run" }, url: run.url }] },
        { type: "context", elements: [mrkdwn(`account ${body.account} · run ${run.id}`)] },
      ],
    }],
  })];
}
