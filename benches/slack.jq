# slack-notify's Spacelift message written in jq: the benchmarks' like-for-like comparison.
def outcome: if .body.state == "FINISHED" then "succeeded"
  elif .body.state == "FAILED" then "failed"
  elif (.body.state == "UNCONFIRMED" or .body.state == "PENDING_REVIEW") then "needs_approval"
  else "started" end;
def colour: {succeeded: "#2eb886", failed: "#a30200", needs_approval: "#daa038", started: "#daa038"}[outcome];
def emoji: {succeeded: ":white_check_mark:", failed: ":x:", needs_approval: ":raised_hand:", started: ":hourglass_flowing_sand:"}[outcome];
def title: "Spacelift · \(.body.stack.name) · run \(.body.state | ascii_downcase)";
(.body.run.delta // {}) as $d
| {
    text: "\(emoji) \(title)",
    blocks: [
      {type: "header", text: {type: "plain_text", text: "\(emoji) \(title)", emoji: true}},
      {type: "section", text: {type: "mrkdwn", text: (.body.run.commit.message // "" | .[0:300])}}
    ],
    attachments: [{
      color: colour,
      fallback: title,
      blocks: [
        {type: "section", fields: [
          {type: "mrkdwn", text: "*Triggered by*\n\(.body.run.triggeredBy // "unknown")"},
          {type: "mrkdwn", text: "*Changes*\n+\($d.added // 0) added, ~\($d.changed // 0) changed, -\($d.deleted // 0) deleted"},
          {type: "mrkdwn", text: "*Commit*\n\(.body.run.commit.hash // "" | .[0:7]) on \(.body.run.branch // "?") by \(.body.run.commit.authorName // "?")"},
          {type: "mrkdwn", text: "*Run type*\n\(.body.run.type)"}
        ]},
        {type: "actions", elements: [{type: "button", text: {type: "plain_text", text: "View run"}, url: .body.run.url}]},
        {type: "context", elements: [{type: "mrkdwn", text: "account \(.body.account) · run \(.body.run.id)"}]}
      ]
    }]
  }
