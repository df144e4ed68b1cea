// The console (src/ui, GET /ui/) in Debian's Chromium, headless, driven by
// playwright-core, against a live hyperrec and a real Redis on 127.0.0.1:
// `make test-web`. CHROMIUM names the browser (default /usr/bin/chromium);
// HR_WEB_SHOTS the directory for the screenshots (default
// build/web-shots; `make web-shots` writes docs/console/).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

import { Stack, root, train, until } from "../lib/live.mjs";

const KEY = "hrk_web_console_test_0123456789";
const ADMIN = "web-admin-token-0123456789abcdef";
const SHOTS = path.resolve(root, process.env.HR_WEB_SHOTS || "build/web-shots");
const stack = new Stack("hr-web-");
let base, browser, versions;

const PHONE = { width: 390, height: 844 };
const DESKTOP = { width: 1280, height: 900 };

before(async () => {
  mkdirSync(SHOTS, { recursive: true });
  await stack.start();
  const data = stack.gen("--users", "300", "--items", "120", "--events",
    "8000", "--seed", "7");
  const items = path.join(path.dirname(data), "items.csv");
  const slot = path.join(stack.models, "default");
  // an older version, then the one fit chooses (with its report)
  train("fit", "--data", data, "--kind", "ials", "--out", slot, "--quiet");
  train("fit", "--data", data, "--items", items, "--budget", "60s", "--out",
    slot, "--quiet");
  base = await stack.startServer({
    ui: { enabled: 1 },
    admin: { token: ADMIN },
    auth: { api_keys: [`web:${stack.hashKey(KEY)}`] },
    experiments: [{ name: "home", salt: "web-1", variants: [
      { name: "control", weight: 50 }, { name: "b", weight: 50 }] }],
  });
  versions = (await (await fetch(`${base}/models`)).json()).slots[0];
  // traffic for the experiment: 120 users, a click for one in three
  const post = (p, body) => fetch(base + p, { method: "POST", headers: {
    "Content-Type": "application/json", Authorization: `Bearer ${KEY}` },
  body: JSON.stringify(body) });
  for (let u = 1; u <= 120; u++) {
    const user = `u${String(u).padStart(5, "0")}`;
    const list = await (await post("/recommend", { user_id: user, k: 5 })).json();
    if (u % 3 === 0) {
      const r = await post("/event", { user_id: user, type: "click",
        item_id: list.items[0].item_id,
        recommendation_id: list.recommendation_id });
      assert.equal(r.status, 202);
    }
  }
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
      "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
});

after(async () => {
  if (browser) await browser.close();
  await stack.stop();
});

/** A fresh page (its own context: no state shared) that records console
 *  errors and uncaught exceptions. */
async function open(hash, viewport = DESKTOP) {
  const ctx = await browser.newContext({ viewport });
  const page = await ctx.newPage();
  const errors = [];
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  page.on("pageerror", (e) => errors.push(`uncaught: ${e.message}`));
  await page.goto(`${base}/ui/#${hash}`);
  await page.waitForSelector("body[data-ready='1']");
  return { page, errors, close: () => ctx.close() };
}

/** The page is wider than its viewport (a phone would scroll sideways). */
const overflows = (page) => page.evaluate(() =>
  document.scrollingElement.scrollWidth > window.innerWidth + 1);

const READY = {
  try: "#try-form",
  models: "#models-list article.card",
  experiments: "#exp-counts tbody tr",
  live: "[data-tile='rps']",
};

test("each page loads without console errors, on a phone and a desktop", async () => {
  for (const [name, vp] of [["desktop", DESKTOP], ["phone", PHONE]]) {
    for (const [hash, sel] of Object.entries(READY)) {
      const { page, errors, close } = await open(hash, vp);
      await page.waitForSelector(sel);
      assert.equal(await page.title(),
        `${hash[0].toUpperCase()}${hash.slice(1)} · hyperrec console`);
      assert.equal(await page.isVisible(`#page-${hash}`), true);
      assert.equal(await overflows(page), false, `${hash} overflows on a ${name}`);
      if (hash !== "try" && hash !== "live") { // those two after some use
        await page.screenshot({ path: path.join(SHOTS, `${hash}-${name}.png`),
          fullPage: true });
      }
      assert.deepEqual(errors, [], `${hash} on a ${name}`);
      await close();
    }
  }
});

test("the console is off unless ui.enabled, and its files are its own", async () => {
  const r = await fetch(`${base}/ui/console.js`);
  assert.equal(r.status, 200);
  assert.match(r.headers.get("content-type"), /^text\/javascript/);
  assert.match(r.headers.get("content-security-policy"), /default-src 'none'/);
  const client = await (await fetch(`${base}/ui/client.js`)).text();
  assert.match(client, /export class HyperrecClient/);
  const missing = await fetch(`${base}/ui/nothing.js`);
  assert.equal(missing.status, 404);
});

test("Try: a list with explanations; a click from the page changes the next list", async () => {
  const { page, errors, close } = await open("try");
  await page.click(".creds summary");
  await page.fill("#api-key", KEY);
  await page.fill("#try-user", "u00007");
  await page.fill("#try-location", "home");
  await page.press("#try-user", "Enter"); // submits the form (keyboard)
  await page.waitForSelector("#try-list li.item");
  const first = await page.$$eval("#try-list li.item", (li) => li.map((x) => x.dataset.item));
  assert.equal(first.length, 10);
  const explained = await page.$$eval("#try-list .explain .why", (w) => w.length);
  assert.ok(explained > 0, "no explanation shown");

  const clicked = first[0];
  const before = Number(stack.rcli("XLEN", "hr:events"));
  await page.click(`#try-list li[data-item="${clicked}"] button:text-is("click")`);
  await page.waitForFunction(() =>
    document.getElementById("try-status").textContent.includes("The list changed"));
  const second = await page.$$eval("#try-list li.item", (li) => li.map((x) => x.dataset.item));
  assert.notDeepEqual(second, first);
  assert.ok(!second.includes(clicked), "the clicked item is still recommended");
  assert.ok(await page.$("#try-list li.new"), "no item is marked new");
  await page.screenshot({ path: path.join(SHOTS, "try-desktop.png"), fullPage: true });
  // the event reached the stream through the client, with the list's id
  assert.equal(Number(stack.rcli("XLEN", "hr:events")), before + 1);
  const last = stack.rcli("--raw", "XREVRANGE", "hr:events", "+", "-", "COUNT", "1");
  assert.match(last, new RegExp(`item_id\\n${clicked}\\n`));
  assert.match(last, /recommendation_id\nr/);
  // "more like this" from the same list
  await page.click(`#try-list li[data-item="${second[0]}"] button:text-is("similar")`);
  await page.waitForSelector("#try-similar li .id");
  assert.deepEqual(errors, []);
  await close();

  const phone = await open("try", PHONE);
  await phone.page.click(".creds summary");
  await phone.page.fill("#api-key", KEY);
  await phone.page.fill("#try-user", "u00007");
  await phone.page.click("#try-go");
  await phone.page.waitForSelector("#try-list li.item");
  assert.equal(await overflows(phone.page), false);
  await phone.page.screenshot({ path: path.join(SHOTS, "try-phone.png"), fullPage: true });
  assert.deepEqual(phone.errors, []);
  await phone.close();
});

test("Models: the report is shown; rollback works with the token and fails without it", async () => {
  const { page, errors, close } = await open("models");
  await page.waitForSelector("#models-list article.card");
  const text = await page.textContent("#models-list");
  assert.ok(text.includes(`version ${versions.version}`));
  assert.ok(text.includes(`Chosen: ${versions.report.winner}.`));
  const roll = 'article[data-slot="default"] button:text-is("Roll back")';
  const out = "#models-status";
  // no token: the page asks for it and sends nothing
  await page.click(roll);
  await page.waitForFunction((s) => document.querySelector(s).textContent
    .includes("Enter the admin token"), out);
  // a wrong one: 401, shown
  await page.fill("#admin-token", "not-the-admin-token-000");
  await page.click(roll);
  await page.waitForFunction((s) => document.querySelector(s).textContent
    .includes("Rollback refused: 401"), out);
  let m = await (await fetch(`${base}/models`)).json();
  assert.equal(m.slots[0].version, versions.version);
  // the right one: the previous version serves, pinned
  await page.fill("#admin-token", ADMIN);
  await page.click(roll);
  await page.waitForFunction((s) => document.querySelector(s).textContent
    .includes("Rolled back default"), out);
  m = await (await fetch(`${base}/models`)).json();
  assert.ok(m.slots[0].version < versions.version);
  assert.equal(m.slots[0].pinned_by, "rollback");
  await page.waitForFunction(() => document.getElementById("models-list")
    .textContent.includes("(rollback)"));
  // reload clears the pin
  await page.click('article[data-slot="default"] button:text-is("Reload (clear pins)")');
  await until("the newest version back", async () =>
    (await (await fetch(`${base}/models`)).json()).slots[0].version === versions.version);
  // the only console error is the browser's note of the refused request
  assert.deepEqual(errors.filter((e) => !/status of 401/.test(e)), []);
  assert.equal(errors.length, 1);
  await close();
});

test("Experiments: the page shows the counts the report endpoint gives", async () => {
  const { page, errors, close } = await open("experiments");
  await page.waitForSelector("#exp-counts tbody tr");
  const shown = await page.$$eval("#exp-counts tbody tr", (rows) => rows.map((r) => ({
    name: r.dataset.variant,
    ...Object.fromEntries([...r.querySelectorAll("td[data-field]")].map((td) =>
      [td.dataset.field, Number(td.textContent.replace(/,/g, ""))])),
  })));
  const rep = await (await fetch(`${base}/experiments/home`)).json();
  assert.equal(shown.length, rep.variants.length);
  let users = 0, clicks = 0;
  for (const v of rep.variants) {
    const s = shown.find((x) => x.name === v.name);
    for (const f of ["users", "impressions", "clicks", "click_events", "conversions"])
      assert.equal(s[f], v[f], `${v.name}.${f}`);
    users += v.users;
    clicks += v.clicks;
  }
  // the 120 users and 40 clicks sent before (the Try test may add its own)
  assert.ok(users >= 120 && clicks >= 40, `${users} users, ${clicks} clicks`);
  const srm = await page.textContent("#exp-srm");
  assert.match(srm, /Sample ratio|mismatch/);
  assert.equal(await page.$$eval("#exp-report .rate .bar", (b) => b.length), 8);
  assert.deepEqual(errors, []);
  await close();
});

test("Live: request rate and latency from /metrics", async () => {
  const { page, errors, close } = await open("live");
  await page.waitForSelector("[data-tile='rps']");
  // some traffic between two refreshes
  const t0 = Date.now();
  const sent = (async () => {
    while (Date.now() - t0 < 3000) {
      await fetch(`${base}/recommend`, { method: "POST", body: '{"k": 5}',
        headers: { "Content-Type": "application/json" } });
    }
  })();
  await page.waitForFunction(() => {
    const v = (t) => document.querySelector(`[data-tile='${t}'] .value span`);
    return v("rps") && Number(v("rps").textContent) > 0 &&
      Number(v("p50").textContent) > 0;
  }, null, { timeout: 15000 });
  for (const [name, vp] of [["desktop", DESKTOP], ["phone", PHONE]]) {
    await page.setViewportSize(vp);
    await page.screenshot({ path: path.join(SHOTS, `live-${name}.png`), fullPage: true });
  }
  await sent;
  assert.deepEqual(errors, []);
  await close();
});

test("keyboard: skip link first, pages reachable with Tab and Enter", async () => {
  const { page, errors, close } = await open("try");
  await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.className), "skip");
  await page.keyboard.press("Tab"); // the first page link
  for (let i = 0; i < 1; i++) await page.keyboard.press("Tab");
  assert.equal(await page.evaluate(() => document.activeElement.dataset.nav), "models");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#page-models:not([hidden])");
  assert.equal(await page.evaluate(() => document.activeElement.id), "h-models");
  assert.equal(await page.getAttribute('[data-nav="models"]', "aria-current"), "page");
  assert.deepEqual(errors, []);
  await close();
});
