// The client against a live hyperrec and a real Redis on 127.0.0.1:
// `node --test test/` from clients/js (make test-js). HR_BIN_DIR names the
// directory of bin/hyperrec and bin/hyperrec-train (default ../../bin).
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import path from "node:path";
import { fileURLToPath } from "node:url";

import { HyperrecClient } from "../index.js";
import { Stack, freePort, train, until } from "../../../tests/lib/live.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));

const KEY = "hrk_js_client_test_0123456789";
const stack = new Stack("hr-js-");
let base;

/** The stream's events, as objects of their fields. */
function streamEvents() {
  const out = execFileSync("redis-cli", ["-p", String(stack.redisPort),
    "--raw", "XRANGE", "hr:events", "-", "+"]).toString().split("\n");
  const events = [];
  let cur = null;
  for (let i = 0; i < out.length; i++) {
    if (/^\d+-\d+$/.test(out[i])) { cur = {}; events.push(cur); continue; }
    if (cur && out[i] !== "" && i + 1 < out.length) { cur[out[i]] = out[++i]; }
  }
  return events;
}

before(async () => {
  await stack.start();
  const data = stack.gen("--users", "200", "--items", "80", "--events",
    "4000", "--seed", "4");
  train("fit", "--data", data, "--kind", "ials", "--out",
    `${stack.models}/default`, "--quiet");
  base = await stack.startServer(null, ["--set",
    `auth.api_keys=js:${stack.hashKey(KEY)}`]);
});

after(() => stack.stop());

/** A fetch that records each call (path, status, time) before answering. */
function recording(onAnswer) {
  const calls = [];
  const f = async (url, init) => {
    const res = await fetch(url, init);
    calls.push({ path: new URL(url).pathname, status: res.status, t: Date.now(),
      init });
    if (onAnswer) await onAnswer(res, calls);
    return res;
  };
  return { f, calls };
}

test("recommend, then a click on a shown item carries its recommendation_id", async () => {
  const hr = new HyperrecClient({ baseUrl: base, apiKey: KEY });
  const list = await hr.recommend({ user_id: "u00001", k: 5 });
  assert.equal(list.items.length, 5);
  assert.match(list.recommendation_id, /^r/);
  const ev = hr.track({ user_id: "u00001", type: "click",
    item_id: list.items[2].item_id });
  assert.equal(ev.recommendation_id, list.recommendation_id);
  const other = hr.track({ user_id: "u00001", type: "view", item_id: "not-shown" });
  assert.equal(other.recommendation_id, undefined);
  await hr.flush();
  const stored = streamEvents().find((e) => e.event_id === ev.event_id);
  assert.ok(stored, "the click is in the stream");
  assert.equal(stored.recommendation_id, list.recommendation_id);
  assert.deepEqual(hr.stats(), { queued: 2, sent: 2, duplicates: 0,
    dropped: 0, rejected: 0, retries: 0, pending: 0 });
});

test("similar: neighbours of an item, a click on one attributed to the list", async () => {
  const hr = new HyperrecClient({ baseUrl: base, apiKey: KEY });
  const list = await hr.similar({ item_id: "i00003", k: 4 });
  assert.equal(list.items.length, 4);
  assert.ok(list.items.every((it) => it.item_id !== "i00003"));
  const ev = hr.track({ user_id: "s9", type: "click", item_id: list.items[0].item_id });
  assert.equal(ev.recommendation_id, list.recommendation_id);
  await assert.rejects(hr.similar({ item_id: "no-such-item" }),
    (e) => e.status === 404 && e.field === "item_id");
  await hr.flush();
});

test("popular: in a context, without a user", async () => {
  const hr = new HyperrecClient({ baseUrl: base });
  const list = await hr.popular({ k: 5, context: { location: "gym" } });
  assert.equal(list.items.length, 5);
  assert.equal(list.context.location, "gym");
  assert.match(list.recommendation_id, /^p1-/);
  await assert.rejects(hr.popular({ k: 0 }),
    (e) => e.status === 400 && e.field === "k");
});

test("events go in batches of batchSize", async () => {
  const { f, calls } = recording();
  const hr = new HyperrecClient({ baseUrl: base, apiKey: KEY, fetch: f,
    batchSize: 10, flushIntervalMs: 60000 });
  const before = Number(stack.rcli("XLEN", "hr:events"));
  for (let i = 0; i < 25; i++) {
    hr.track({ user_id: `b${i % 3}`, type: "view", item_id: `i000${i % 9}` });
  }
  await hr.flush();
  assert.equal(calls.filter((c) => c.path === "/event").length, 3);
  assert.ok(calls.every((c) => c.status === 202));
  assert.equal(Number(stack.rcli("XLEN", "hr:events")) - before, 25);
  assert.equal(hr.stats().sent, 25);
});

test("a batch sent again is acknowledged as duplicates, not stored twice", async () => {
  const hr = new HyperrecClient({ baseUrl: base, apiKey: KEY });
  const ev = { user_id: "d1", type: "view", item_id: "i00002", event_id: "js-dup-1" };
  hr.track(ev);
  await hr.flush();
  hr.track(ev);
  await hr.flush();
  assert.equal(streamEvents().filter((e) => e.event_id === "js-dup-1").length, 1);
  assert.equal(hr.stats().duplicates, 1);
});

test("Redis down: 503 with Retry-After is waited out, then delivered", async () => {
  let restarted = null;
  const { f, calls } = recording(async (res) => {
    if (res.status === 503 && !restarted) restarted = stack.start();
  });
  stack.rcli("SHUTDOWN");
  await until("redis down", () => {
    try { stack.rcli("PING"); return false; } catch { return true; }
  });
  const hr = new HyperrecClient({ baseUrl: base, apiKey: KEY, fetch: f,
    backoffMs: 10 });
  const evs = [0, 1, 2].map((i) =>
    hr.track({ user_id: "r1", type: "click", item_id: `i0000${i}` }));
  await hr.flush();
  await restarted;
  const first = calls.findIndex((c) => c.status === 503);
  assert.ok(first >= 0, "the server answered 503 first");
  const retry = calls[first + 1];
  assert.equal(retry.status, 202);
  // Retry-After: 1 -- not the 10 ms backoff
  assert.ok(retry.t - calls[first].t >= 900,
    `retried after ${retry.t - calls[first].t} ms`);
  const ids = new Set(streamEvents().map((e) => e.event_id));
  assert.ok(evs.every((e) => ids.has(e.event_id)));
  assert.ok(hr.stats().retries >= 1);
  assert.equal(hr.stats().pending, 0);
});

test("a refused event is dropped and counted; the rest of its batch is sent", async () => {
  const dropped = [];
  const hr = new HyperrecClient({ baseUrl: base, apiKey: KEY,
    onDrop: (events, reason, err) => dropped.push({ events, reason, err }) });
  const good1 = hr.track({ user_id: "x1", type: "view", item_id: "i00001" });
  hr.track({ user_id: "x1", type: "teleport", item_id: "i00001" });
  const good2 = hr.track({ user_id: "x1", type: "view", item_id: "i00003" });
  await hr.flush();
  assert.equal(dropped.length, 1);
  assert.equal(dropped[0].reason, "rejected");
  assert.equal(dropped[0].events[0].type, "teleport");
  assert.equal(dropped[0].err.field, "events[1].type");
  const ids = new Set(streamEvents().map((e) => e.event_id));
  assert.ok(ids.has(good1.event_id) && ids.has(good2.event_id));
  assert.equal(hr.stats().rejected, 1);
  assert.equal(hr.stats().sent, 2);
});

test("the queue is bounded: what it drops is counted and reported", async () => {
  const closed = await freePort(); // nothing listens there
  const dropped = [];
  const hr = new HyperrecClient({ baseUrl: `http://127.0.0.1:${closed}`,
    apiKey: KEY, maxQueue: 5, maxRetries: 2, backoffMs: 5,
    flushIntervalMs: 60000,
    onDrop: (events, reason) => dropped.push(...events.map(() => reason)) });
  const kept = [];
  for (let i = 0; i < 8; i++) {
    kept.push(hr.track({ user_id: "q", type: "view", item_id: `i${i}` }));
  }
  assert.equal(kept.filter((e) => e === null).length, 3);
  assert.deepEqual(dropped, ["queue_full", "queue_full", "queue_full"]);
  await hr.flush(); // unreachable: two attempts, then the 5 are dropped
  const s = hr.stats();
  assert.equal(s.dropped, 8);
  assert.equal(s.pending, 0);
  assert.equal(dropped.filter((r) => r === "retries_exhausted").length, 5);
});

test("on page hide, what is queued goes out with fetch keepalive", async () => {
  const { f, calls } = recording();
  const hr = new HyperrecClient({ baseUrl: base, apiKey: KEY, fetch: f,
    flushIntervalMs: 60000 });
  const evs = [1, 2, 3].map((i) =>
    hr.track({ user_id: "h1", type: "view", item_id: `i0000${i}` }));
  const target = new EventTarget();
  const remove = hr.installPageHide(target);
  target.dispatchEvent(new Event("pagehide"));
  remove();
  assert.equal(hr.stats().pending, 0);
  await until("the keepalive request", () => calls.length === 1);
  assert.equal(calls[0].init.keepalive, true);
  assert.equal(calls[0].init.headers.Authorization, `Bearer ${KEY}`);
  assert.equal(calls[0].status, 202);
  const ids = new Set(streamEvents().map((e) => e.event_id));
  assert.ok(evs.every((e) => ids.has(e.event_id)));
});

test("npm pack makes a package of the module, its types and README", () => {
  const out = execFileSync("npm", ["pack", "--dry-run", "--json"],
    { cwd: path.resolve(here, ".."), stdio: ["ignore", "pipe", "ignore"] });
  const files = JSON.parse(out.toString())[0].files.map((x) => x.path).sort();
  assert.deepEqual(files, ["README.md", "index.d.ts", "index.js", "package.json"]);
});
