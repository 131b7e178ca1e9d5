// Svix's own JavaScript library (the `svix` package's Webhook), driven by hookgate's interop tests.
//
//   node svix.mjs sign SECRET MSG_ID UNIX_TS  < body                            -> prints svix-signature
//   node svix.mjs verify SECRET               < {"headers": {...}, "body": "..."} -> exit 0 when accepted
import { Webhook } from "svix";

const [command, secret, msgId, ts] = process.argv.slice(2);
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const input = Buffer.concat(chunks).toString("utf8");
const hook = new Webhook(secret);

if (command === "sign") {
  console.log(hook.sign(msgId, new Date(Number(ts) * 1000), input));
} else if (command === "verify") {
  const request = JSON.parse(input);
  try {
    hook.verify(request.body, request.headers);
  } catch (error) {
    console.error(`rejected: ${error.message}`);
    process.exit(1);
  }
} else {
  console.error(`unknown command ${command}`);
  process.exit(2);
}
