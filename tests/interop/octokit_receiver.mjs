// A receiver written for GitHub, as GitHub's docs show it: @octokit/webhooks' Node middleware on a
// plain HTTP server. hookgate's interop tests point a github-signed target at it.
//
//   node octokit_receiver.mjs SECRET
//     prints `listening PORT`, then one JSON line {"id", "name", "payload"} per webhook it accepted;
//     requests it refuses are answered by the middleware (400 for missing headers, 401 for a bad
//     signature) and printed as {"refused": status}.
import { createServer } from "node:http";
import { Webhooks, createNodeMiddleware } from "@octokit/webhooks";

const webhooks = new Webhooks({ secret: process.argv[2] });
webhooks.onAny(({ id, name, payload }) => {
  console.log(JSON.stringify({ id, name, payload }));
});
const middleware = createNodeMiddleware(webhooks, { path: "/github" });
const server = createServer(async (req, res) => {
  res.on("finish", () => {
    if (res.statusCode >= 400) console.log(JSON.stringify({ refused: res.statusCode }));
  });
  if (!(await middleware(req, res))) {
    res.statusCode = 404;
    res.end();
  }
});
server.listen(0, "127.0.0.1", () => console.log(`listening ${server.address().port}`));
