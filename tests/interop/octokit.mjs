// GitHub's own signature library (@octokit/webhooks-methods), driven by hookgate's interop tests.
//
//   node octokit.mjs sign SECRET              < body  -> prints the X-Hub-Signature-256 value
//   node octokit.mjs verify SECRET SIGNATURE  < body  -> exit 0 when the library accepts it
import { sign, verify } from "@octokit/webhooks-methods";

const [command, secret, signature] = process.argv.slice(2);
const chunks = [];
for await (const chunk of process.stdin) chunks.push(chunk);
const body = Buffer.concat(chunks).toString("utf8");

if (command === "sign") {
  console.log(await sign(secret, body));
} else if (command === "verify") {
  process.exit((await verify(secret, body, signature)) ? 0 : 1);
} else {
  console.error(`unknown command ${command}`);
  process.exit(2);
}
