// The web console in a real browser (Debian's chromium, driven by playwright-core), as a user
// would meet it. Run by tests/it/e2e_browser.rs, which starts the gateway and a receiver and
// passes, in the environment:
//   CONSOLE_URL   the admin listener         HOOK_URL  the ingress's /hooks/plain
//   TOKEN         the admin token            SECRETS   JSON list of strings no page may show
//   CONFIG_FILE   the gateway's config file  BROKEN    a broken config to reload once, then put back
//   PLUGIN        a wasm component to upload  NOT_WASM  a file that is not one
//   SHOTS         optional: a folder for a screenshot of each page
// Prints one line per step; exits non-zero at the first failure.
import { chromium } from "playwright-core";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

const env = (k) => {
  const v = process.env[k];
  if (!v) throw new Error(`${k} is not set`);
  return v;
};
const base = env("CONSOLE_URL");
const secrets = JSON.parse(env("SECRETS"));
const shots = process.env.SHOTS;

const step = (what) => console.log(`step: ${what}`);
function check(ok, what) {
  if (!ok) throw new Error(`failed: ${what}`);
}

async function post(body) {
  const r = await fetch(env("HOOK_URL"), {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  check(r.status === 202, `event accepted (got ${r.status})`);
  return (await r.json()).id;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-background-networking"],
});
const problems = [];
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("console", (m) => {
    if (/Content Security Policy|Refused to/i.test(m.text())) problems.push(`CSP: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${e.message}`));
  const seen = [];
  const visit = async (path, name) => {
    await page.goto(base + path);
    await settle(name);
  };
  const settle = async (name) => {
    const html = await page.content();
    seen.push([page.url(), html]);
    if (shots && name) await page.screenshot({ path: join(shots, `${name}.png`), fullPage: true });
  };

  step("sign in");
  await visit("/", null);
  check(new URL(page.url()).pathname === "/login", "an anonymous visit lands on the sign-in page");
  await page.fill("#token", "not the token");
  await page.click("button[type=submit]");
  check((await page.content()).includes("not the admin token"), "a wrong token is refused");
  await page.fill("#token", env("TOKEN"));
  await settle("sign-in");
  await page.click("button[type=submit]");
  await page.waitForURL(base + "/");
  check(!page.url().includes(env("TOKEN")), "the token is not in the address");
  const cookies = await context.cookies();
  const session = cookies.find((c) => c.name === "hookgate_session");
  check(session && session.httpOnly && session.sameSite === "Strict", "an HttpOnly, SameSite=Strict session");
  check((await page.evaluate(() => document.cookie)) === "", "scripts cannot read the session");

  step("see an event arrive");
  const hostile = await post({
    kind: "hostile",
    html: "</pre><script>window.pwned = 1</script><img src=x onerror=\"window.pwned = 2\">",
    link: "javascript:window.pwned = 3",
  });
  const failing = await post({ kind: "will-fail-once" });
  await visit("/events", null);
  for (let i = 0; i < 50 && !(await page.content()).includes(failing); i++) {
    await page.waitForTimeout(200);
    await page.reload();
  }
  await settle("events");
  check((await page.content()).includes(failing), "the events list shows the new event");

  step("open an event whose body holds a script");
  await page.click(`a[href="/events/${hostile}"]`);
  await page.waitForURL(`${base}/events/${hostile}`);
  await settle("event");
  check((await page.evaluate(() => window.pwned)) === undefined, "no script of the body ran");
  check((await page.locator("pre.payload").innerText()).includes("<script>window.pwned = 1</script>"),
    "the body is shown as text");

  step("retry a failed delivery and watch it succeed");
  await visit("/deliveries?status=dead", null);
  for (let i = 0; i < 50 && (await page.locator("table.list tbody tr").count()) === 0; i++) {
    await page.waitForTimeout(200);
    await page.reload();
  }
  await settle("deliveries");
  await page.locator("table.list tbody tr a").first().click();
  await page.waitForURL(/\/deliveries\/[^?]+$/);
  await settle("delivery");
  check((await page.content()).includes("HTTP 500"), "the failed attempt is shown");
  const delivery = page.url();
  await page.click("form.inline button[type=submit]");
  await page.waitForURL(/notice=queued/);
  let succeeded = false;
  for (let i = 0; i < 50 && !succeeded; i++) {
    await page.goto(delivery);
    succeeded = (await page.locator("dd.succeeded").count()) === 1;
    if (!succeeded) await page.waitForTimeout(200);
  }
  check(succeeded, "the retried delivery succeeded");
  await settle(null);

  step("bulk retry asks for the count first");
  await visit("/deliveries", null);
  await page.click("form.bulk button");
  await settle(null);
  check(/deliveries match|No delivery matches/.test(await page.content()), "the count is shown before anything is queued");

  step("targets: disable, then enable after a ping");
  await visit("/targets", "targets");
  page.once("dialog", (d) => d.accept());
  await page.click('form[action="/targets/t/disable"] button');
  await page.waitForURL(/disabled=t/);
  await page.click('form[action="/targets/t/enable"] button');
  await page.waitForURL(/enabled=t/);
  await settle(null);
  check((await page.content()).includes("answered the ping"), "the ping's answer is shown");

  step("plugins: upload one, see a refused upload and a refused delete");
  await visit("/plugins", null);
  await page.fill("#plugin-name", "slack-notify");
  await page.setInputFiles("#plugin-file", env("PLUGIN"));
  await page.click("#upload button[type=submit]");
  await page.waitForURL(/uploaded=slack-notify/, { timeout: 60000 });
  await settle("plugins");
  check((await page.locator("table.list tbody tr").count()) === 1, "the uploaded plugin is listed");
  await page.fill("#plugin-name", "slack-notify");
  await page.setInputFiles("#plugin-file", env("PLUGIN"));
  await page.click("#compare");
  await page.waitForSelector("#diff:not([hidden])", { timeout: 60000 });
  const compared = await page.locator("#diff").innerText();
  check(/^plugin `slack-notify` on route\(s\) gh-to-slack: \d+ stored event\(s\) compared, 0 differ/.test(compared),
    `comparing the active version with itself shows no difference: ${compared}`);
  check((await page.locator("#upload-result").innerText()).includes("would change nothing"), "the comparison's verdict is shown");
  await page.fill("#plugin-name", "broken");
  await page.setInputFiles("#plugin-file", env("NOT_WASM"));
  await page.click("#upload button[type=submit]");
  await page.waitForSelector("#upload-result.error");
  const refused = await page.locator("#upload-result").innerText();
  check(refused.startsWith("Refused (400)"), `the refusal's reason is shown: ${refused}`);
  await page.click('form[action="/plugins/slack-notify/delete"] button');
  await settle(null);
  check((await page.content()).includes("is used by route(s) gh-to-slack"), "a plugin in use is not deleted, and the page says why");

  step("the playground: an event from the store, a jq route as you type, its error, its TOML");
  await visit(`/events/${hostile}`, null);
  await page.click('a[href^="/playground?event="]');
  await page.waitForURL(/\/playground\?event=/);
  check((await page.locator("#result").innerText()).includes("plain-to-t: delivered"),
    "the stored event through the configured routes");
  const resultHas = (text) => page.waitForFunction(
    (t) => (document.getElementById("result")?.textContent || "").includes(t), text, { timeout: 20000 });
  await page.selectOption('select[name="kind"]', "jq");
  await page.fill('textarea[name="code"]', "{text: .body.kind, channel: \"#ops\"}");
  await resultHas('"text": "hostile"');
  check((await page.locator("#result").innerText()).includes("playground: delivered"), "the candidate route delivers");
  check((await page.locator("#result").innerText()).toLowerCase().includes("x-signature"), "the signed request is shown");
  await page.fill('textarea[name="code"]', "{text: .body.kind");
  await resultHas("route.jq");
  check((await page.locator("#result").innerText()).includes("closing brace for the `{` at offset 0"),
    "the jq error says what and where");
  await page.fill('textarea[name="code"]', "{text: .body.kind}");
  await resultHas("[[routes]]");
  await page.click("#copy-toml");
  // The click handler awaits the clipboard: give it a moment before reading the button.
  await page.waitForFunction(() => /Copied|Selected/.test(document.getElementById("copy-toml")?.textContent || ""),
    null, { timeout: 5000 }).catch(() => {});
  check(/Copied|Selected/.test(await page.locator("#copy-toml").innerText()), "Copy as TOML answers");
  check((await page.evaluate(() => window.pwned)) === undefined, "the hostile body stayed inert in the playground");
  await settle("playground");

  step("reload a broken config and see the problems");
  const config = env("CONFIG_FILE");
  const good = readFileSync(config);
  writeFileSync(config, readFileSync(env("BROKEN")));
  try {
    await visit("/config", "config");
    await page.click('form[action="/config/reload"] button');
    await page.waitForSelector("pre.problems");
    await settle("config-refused");
    const text = await page.locator("pre.problems").innerText();
    check(text.includes("routes[0].filter") && text.includes("nowhere"), `every problem listed: ${text}`);
  } finally {
    writeFileSync(config, good);
  }

  step("the event catalog, and a sample opened in the playground");
  await visit("/catalog?preset=github", "catalog");
  await page.click("a:has-text('workflow_run')");
  await settle("catalog-event");
  check((await page.locator("h1").textContent()).includes("github: workflow_run"), "the event's page opens");
  check((await page.locator("pre.payload").count()) >= 2, "its sample and schema are shown");
  await page.click("text=Try in the playground");
  await settle(null);
  const tried = await page.content();
  check(tried.includes("workflow_run") && tried.includes("Event type"), "the playground runs the sample as a github event");

  step("the overview, at 1280 px and on a phone");
  await visit("/", "overview");
  check((await page.locator("figure.chart svg").count()) === 1, "the activity chart is drawn");
  await page.setViewportSize({ width: 390, height: 844 });
  for (const path of ["/", "/events", `/events/${hostile}`, "/deliveries", "/playground", "/targets", "/plugins", "/config", "/catalog?preset=github", "/catalog/github/workflow_run"]) {
    await page.goto(base + path);
    const wide = await page.evaluate(() => document.documentElement.scrollWidth);
    check(wide <= 392, `${path} fits a phone (${wide} px wide)`);
  }
  await visit("/", "overview-phone");
  await page.setViewportSize({ width: 1280, height: 900 });

  step("no page shows a secret");
  for (const [url, html] of seen) {
    for (const s of secrets) check(!html.includes(s), `${url} shows a secret`);
  }

  step("sign out");
  await visit("/", null);
  await page.click("form.signout button");
  await page.waitForURL(base + "/login");
  await page.goto(base + "/events");
  check(new URL(page.url()).pathname === "/login", "signed out, the pages need signing in again");

  check(problems.length === 0, `no script errors or CSP reports: ${problems.join("; ")}`);
  console.log(`ok: ${seen.length} pages checked`);
} finally {
  await browser.close();
}
