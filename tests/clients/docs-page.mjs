// The /docs page in headless Chromium: every operation of the served
// document is listed, a signed-in "Try it out" of GET /api/v1/auth/me
// answers 200, and the page asks no host but the server for anything.
//
//   node docs-page.mjs BASE_URL ACCESS_TOKEN SCREENSHOT_DIR
//
// Chromium: $CHROMIUM, default /usr/bin/chromium (Debian's package).
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";

const [base, token, shots] = process.argv.slice(2);
if (!base || !token || !shots) {
  console.error("usage: node docs-page.mjs BASE_URL ACCESS_TOKEN SCREENSHOT_DIR");
  process.exit(2);
}
const origin = new URL(base).origin;
mkdirSync(shots, { recursive: true });

const doc = await (await fetch(`${base}/api/v1/openapi.json`)).json();
const methods = ["get", "post", "put", "patch", "delete"];
const expected = Object.values(doc.paths).flatMap((item) =>
  Object.keys(item).filter((m) => methods.includes(m)),
).length;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // The machine's network is closed: no background, sync or update traffic.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
const failures = [];
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  const requested = [];
  page.on("request", (r) => requested.push(r.url()));
  const consoleErrors = [];
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));

  await page.goto(`${base}/docs`, { waitUntil: "networkidle" });
  await page.waitForSelector(".opblock", { timeout: 30_000 });
  const listed = await page.locator(".opblock").count();
  if (listed !== expected) failures.push(`the page lists ${listed} operations; the document has ${expected}`);
  await page.screenshot({ path: `${shots}/docs-page.png` });

  // Sign in through the Authorize dialog, as a user would.
  await page.click(".auth-wrapper .authorize");
  // The dialog has one form per scheme: the API's bearer token, and the
  // metrics token.
  const dialog = page.locator(".dialog-ux .modal-ux");
  const bearer = dialog.locator("form", { hasText: "bearer (http, Bearer)" });
  await bearer.locator("input").fill(token);
  await bearer.locator("button.authorize").click();
  await bearer.locator("button.btn-done").click();

  const me = page.locator(".opblock-get", {
    has: page.locator('.opblock-summary-path[data-path="/api/v1/auth/me"]'),
  });
  await me.locator(".opblock-summary").click();
  const answered = page.waitForResponse((r) => r.url() === `${base}/api/v1/auth/me` && r.request().method() === "GET");
  await me.locator("button.execute").click();
  const response = await answered;
  if (response.status() !== 200) failures.push(`Try it out of GET /api/v1/auth/me answered ${response.status()}`);
  const shown = me.locator(".live-responses-table tr.response .response-col_status").first();
  await shown.waitFor({ timeout: 10_000 });
  const status = (await shown.innerText()).trim();
  if (status !== "200") failures.push(`the page shows status ${status} for GET /api/v1/auth/me`);
  const sent = response.request().headers()["authorization"];
  if (sent !== `Bearer ${token}`) failures.push("Try it out did not send the bearer token");
  await me.scrollIntoViewIfNeeded();
  await page.screenshot({ path: `${shots}/docs-try-it.png` });

  const elsewhere = requested.filter((u) => !u.startsWith(origin) && !u.startsWith("data:"));
  if (elsewhere.length) failures.push(`the page asked other hosts: ${elsewhere.join(", ")}`);
  if (consoleErrors.length) failures.push(`console errors: ${consoleErrors.join(" | ")}`);
  console.log(`docs page: ${listed} operations listed, ${requested.length} requests, all to ${origin}; try-it GET /api/v1/auth/me -> ${response.status()}`);
} finally {
  await browser.close();
}
if (failures.length) {
  for (const f of failures) console.error(`docs page: FAIL: ${f}`);
  process.exit(1);
}
console.log(`docs page: screenshots in ${shots}`);
