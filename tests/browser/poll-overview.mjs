// A user keeping the console's overview open while the gateway works: signs in, then loads the
// overview once a second until stopped (SIGTERM), and prints how many loads it made and their
// median time. Run by the load benchmark (`cargo bench --bench load -- --console`), which passes
//   CONSOLE_URL  the admin listener    TOKEN  the admin token
import { chromium } from "playwright-core";

const base = process.env.CONSOLE_URL;
const token = process.env.TOKEN;
if (!base || !token) throw new Error("CONSOLE_URL and TOKEN must be set");

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-background-networking"],
});
const page = await (await browser.newContext({ viewport: { width: 1280, height: 900 } })).newPage();
await page.goto(base + "/login");
await page.fill("#token", token);
await Promise.all([page.waitForURL(base + "/"), page.click("button[type=submit]")]);

const times = [];
let stopping = false;
process.on("SIGTERM", () => { stopping = true; });
console.log("polling");
while (!stopping) {
  const started = Date.now();
  const answer = await page.goto(base + "/");
  if (!answer || answer.status() !== 200) throw new Error(`overview answered ${answer?.status()}`);
  times.push(Date.now() - started);
  await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - started))));
}
await browser.close();
times.sort((a, b) => a - b);
console.log(`overview loads: ${times.length}, median ${times[Math.floor(times.length / 2)] ?? "-"} ms`);
