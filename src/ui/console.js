// The hyperrec console: four pages over the server's own endpoints. The
// lists and events go through the JavaScript client (clients/js, served as
// /ui/client.js); the operational endpoints are read with fetch. Every
// string from the server is put in the page as text, never as markup.
import { HyperrecClient, HyperrecError } from "/ui/client.js";

const $ = (id) => document.getElementById(id);
const state = { apiKey: "", adminToken: "", page: null, users: [],
                lastList: null, liveTimer: null, livePrev: null,
                liveHist: [] };

const client = new HyperrecClient({
  baseUrl: location.origin,
  token: () => state.apiKey,
  flushIntervalMs: 200,
  onDrop: (events, reason, err) => {
    status("try-status", `${events.length} event(s) not stored (${reason}` +
      `${err ? ": " + errText(err) : ""})`, true);
  },
});

// ------------------------------------------------------------ helpers

function el(tag, attrs = {}, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v == null || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, v === true ? "" : String(v));
  }
  for (const kid of kids.flat(Infinity)) {
    if (kid == null || kid === false) continue;
    e.append(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
}

function status(id, text, bad = false) {
  const s = $(id);
  s.textContent = text;
  s.classList.toggle("bad", bad);
}

function errText(e) {
  if (e instanceof HyperrecError) {
    const field = e.field ? ` (${e.field})` : "";
    return `${e.status} ${e.code || ""}${field}: ${e.message}`;
  }
  return e && e.message ? e.message : String(e);
}

const num = (x, d = 4) => (x == null || Number.isNaN(x) ? "—"
  : Number(x).toFixed(d).replace(/\.?0+$/, (m) => (m.startsWith(".") ? "" : m)));
const pct = (x) => (x == null ? "—" : `${(100 * x).toFixed(1)} %`);
const int = (x) => (x == null ? "—" : Number(x).toLocaleString("en"));

/** GET or POST a JSON endpoint; the parsed answer or a HyperrecError. */
async function api(method, path, { body, auth } = {}) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (auth) headers.Authorization = `Bearer ${auth}`;
  const res = await fetch(path, { method, headers,
    body: body === undefined ? undefined : JSON.stringify(body) });
  const text = await res.text();
  let json = null;
  try { json = text ? JSON.parse(text) : null; } catch { json = null; }
  if (!res.ok) throw new HyperrecError(res.status, json, null);
  return json;
}

/** A horizontal bar: value in [0, max], with an optional interval. */
function bar(value, max, lo, hi, label) {
  const scale = (x) => `${Math.max(0, Math.min(100, (100 * x) / (max || 1)))}%`;
  const b = el("span", { class: "bar", role: "img", "aria-label": label });
  if (lo != null && hi != null) {
    const ci = el("span", { class: "ci" });
    ci.style.left = scale(lo);
    ci.style.width = `calc(${scale(hi)} - ${scale(lo)})`;
    b.append(ci);
  }
  const v = el("span", { class: "val" });
  v.style.width = scale(value || 0);
  b.append(v);
  return b;
}

// ------------------------------------------------------------ pages

const pages = ["try", "models", "experiments", "live"];

function show(page, focus = true) {
  if (!pages.includes(page)) page = "try";
  state.page = page;
  for (const p of pages) {
    $(`page-${p}`).hidden = p !== page;
    const a = document.querySelector(`[data-nav="${p}"]`);
    if (p === page) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  document.title = `${page[0].toUpperCase()}${page.slice(1)} · hyperrec console`;
  if (focus) document.querySelector(`#page-${page} h2`).focus();
  clearInterval(state.liveTimer);
  state.liveTimer = null;
  if (page === "models") loadModels();
  if (page === "experiments") loadExperiments();
  if (page === "live") startLive();
}

// ------------------------------------------------------------ Try

function parseFilters(text) {
  const out = {};
  for (const part of text.split(";").map((s) => s.trim()).filter(Boolean)) {
    const eq = part.indexOf("=");
    if (eq <= 0) throw new Error(`filter "${part}": write name=value[,value]`);
    const vals = part.slice(eq + 1).split(",").map((s) => s.trim())
      .filter(Boolean);
    if (!vals.length) throw new Error(`filter "${part}" has no value`);
    out[part.slice(0, eq).trim()] = vals;
  }
  return out;
}

function tryRequest() {
  const req = { k: Number($("try-k").value) || 10,
                explain: $("try-explain").checked };
  const user = $("try-user").value.trim();
  if (user) req.user_id = user;
  const ctx = {};
  for (const f of ["tz", "location", "mood", "device"]) {
    const v = $(`try-${f}`).value.trim();
    if (v) ctx[f] = v;
  }
  const t = $("try-time").value;
  if (t) ctx.ts = Math.floor(new Date(t).getTime() / 1000);
  if (Object.keys(ctx).length) req.context = ctx;
  const filters = $("try-filters").value.trim();
  if (filters) req.filters = parseFilters(filters);
  return req;
}

function explainText(it) {
  const out = [];
  const ex = it.explain || {};
  if (ex.history && ex.history.length) {
    out.push(el("span", { class: "why" }, "like ",
      ex.history.map((h, i) => [i ? ", " : "", el("b", { text: h.item_id }),
        ` (${num(h.similarity, 3)})`])));
  }
  if (ex.context && ex.context.length) {
    out.push(el("span", { class: "why" }, ex.context.map((c, i) => [
      i ? ", " : "", `${c.feature}=${c.value} `,
      el("b", { class: c.effect >= 0 ? "up" : "down",
                text: `${c.effect >= 0 ? "+" : ""}${num(c.effect, 3)}` })])));
  }
  return out;
}

function renderList(list, prev) {
  const ol = $("try-list");
  ol.replaceChildren();
  const before = new Set(prev ? prev.items.map((i) => i.item_id) : []);
  const max = Math.max(...list.items.map((i) => Math.abs(i.score)), 1e-9);
  const user = list.user_id;
  list.items.forEach((it) => {
    const fresh = prev && !before.has(it.item_id);
    const li = el("li", { class: fresh ? "item new" : "item",
                          "data-item": it.item_id },
      el("div", { class: "head" },
        el("span", { class: "id", text: it.item_id }),
        fresh ? el("span", { class: "tag", text: "new" }) : null,
        el("span", { class: "score", text: num(it.score) }),
        bar(Math.abs(it.score), max, null, null, `score ${num(it.score)}`)),
      el("div", { class: "explain" }, explainText(it)),
      el("div", { class: "buttons" },
        ["view", "click", "purchase"].map((type) => el("button", {
          type: "button", disabled: !user,
          title: user ? `POST /event ${type} for ${user}` : "needs a user id",
          onclick: () => sendEvent(user, it.item_id, type),
        }, type)),
        el("button", { type: "button", class: "ghost",
                       onclick: () => showSimilar(it.item_id) }, "similar")));
    ol.append(li);
  });
  if (!list.items.length) ol.append(el("li", { class: "empty",
    text: "No items (a filter that matches nothing?)" }));
}

async function runTry(note) {
  let req;
  try { req = tryRequest(); } catch (e) {
    status("try-status", e.message, true);
    return;
  }
  status("try-status", "Asking…");
  try {
    const list = await client.recommend(req);
    const prev = state.lastList && state.lastList.user_id === list.user_id
      ? state.lastList : null;
    renderList(list, note ? prev : null);
    state.lastList = list;
    if (req.user_id && !state.users.includes(req.user_id)) {
      state.users.unshift(req.user_id);
      $("recent-users").replaceChildren(...state.users.slice(0, 20)
        .map((u) => el("option", { value: u })));
    }
    const changed = note && prev
      ? list.items.filter((i) => !prev.items.some((p) => p.item_id === i.item_id)).length
      : 0;
    status("try-status", [
      note || "",
      note ? `The list changed: ${changed} new item(s).` : "",
      `${list.items.length} items from ${list.model.name} v${list.model.version}` +
      ` (${list.retrieval}${list.variant ? `, variant ${list.variant.name}` : ""}` +
      `${list.degraded ? ", degraded: Redis unreachable" : ""}); history used: ` +
      `${list.history_used}; context ${["location", "mood", "device"]
        .map((f) => `${f}=${list.context[f] ?? "—"}`).join(" ")}.`,
    ].filter(Boolean).join(" "));
  } catch (e) {
    status("try-status", errText(e), true);
  }
}

async function sendEvent(user, item, type) {
  const ev = { user_id: user, item_id: item, type };
  const ctx = tryRequest().context;
  if (ctx) { const { ts, ...rest } = ctx; if (Object.keys(rest).length) ev.context = rest; }
  const before = client.stats();
  client.track(ev);
  await client.flush();
  const after = client.stats();
  if (after.sent + after.duplicates <= before.sent + before.duplicates) {
    status("try-status", `The ${type} on ${item} was not stored.`, true);
    return;
  }
  await runTry(`Sent ${type} on ${item}.`);
}

async function showSimilar(item) {
  const ol = $("try-similar");
  $("try-side-hint").textContent = `Nearest to ${item}:`;
  try {
    const user = $("try-user").value.trim();
    const res = await client.similar({ item_id: item, k: 5,
                                       ...(user ? { user_id: user } : {}) });
    ol.replaceChildren(...res.items.map((it) =>
      el("li", {}, el("span", { class: "id", text: it.item_id }), " ",
        el("span", { class: "score", text: num(it.score) }))));
  } catch (e) {
    ol.replaceChildren(el("li", { class: "bad", text: errText(e) }));
  }
}

// ------------------------------------------------------------ Models

function kv(rows) {
  return el("dl", { class: "kv" }, rows.map(([k, v]) =>
    [el("dt", { text: k }), el("dd", {}, v)]));
}

function reportView(rep) {
  if (!rep) return el("p", { class: "hint",
    text: "No report: this version was trained with a fixed --kind." });
  const metric = rep.metric || "NDCG@10";
  const scored = (rep.candidates || []).filter((c) => c[metric] != null);
  const max = Math.max(...scored.map((c) => c[metric] + (c[`${metric}_se`] || 0)), 1e-9);
  return el("div", { class: "report" },
    el("p", {}, el("b", { text: `Chosen: ${rep.winner}. ` }), rep.reason || ""),
    el("div", { class: "scroll" }, el("table", {},
      el("caption", { text: `Candidates on the ${rep.holdout?.definition ?? ""} holdout (${metric}, ± one SE)` }),
      el("thead", {}, el("tr", {}, ["Candidate", "State", metric, ""].map((h) =>
        el("th", { scope: "col", text: h })))),
      el("tbody", {}, (rep.candidates || []).map((c) => {
        const v = c[metric], se = c[`${metric}_se`] || 0;
        return el("tr", { class: c.name === rep.winner ? "win" : "" },
          el("th", { scope: "row", text: c.name }),
          el("td", { text: c.state }),
          el("td", { text: v == null ? "—" : `${num(v)} ± ${num(se)}` }),
          el("td", { class: "barcell" }, v == null ? "" :
            bar(v, max, v - se, v + se, `${c.name} ${num(v)}`)));
      })))));
}

/** An admin call from the Models page: the result goes to the page's
 *  status line after the slots are shown again. */
async function adminCall(what, path, body) {
  const token = $("admin-token").value;
  if (!token) {
    status("models-status", "Enter the admin token above first.", true);
    $("admin-token").focus();
    return;
  }
  status("models-status", `${what}…`);
  let msg, bad = false;
  try {
    msg = describeAdmin(await api("POST", path, { body, auth: token }));
  } catch (e) {
    msg = `${what} refused: ${errText(e)}`;
    bad = true;
  }
  await loadModels(false);
  status("models-status", msg, bad);
}

function describeAdmin(r) {
  return r.slot
    ? `Rolled back ${r.slot} from ${r.from} to ${r.to}; pinned until a reload.`
    : `Reloaded: ${r.unpinned} pin(s) cleared.`;
}

function rollback(slot, versionInput) {
  const v = versionInput.value.trim();
  return adminCall("Rollback",
    `/admin/models/${encodeURIComponent(slot)}/rollback`,
    v ? { version: Number(v) } : {});
}

async function loadModels(announce = true) {
  if (announce) status("models-status", "Loading…");
  try {
    const m = await api("GET", "/models");
    $("models-list").replaceChildren(...m.slots.map((s) => {
      const vin = el("input", { type: "number", min: 1, placeholder: "previous",
                                "aria-label": `Version to roll ${s.name} back to` });
      return el("article", { class: "card", "data-slot": s.name },
        el("h3", { text: `Slot ${s.name}` }),
        kv([["Serving", s.version == null ? "nothing yet" : `version ${s.version}`],
            ["Kind", s.kind ?? "—"], ["Loaded", s.loaded_at ?? "—"],
            ["Items / users", `${int(s.n_items)} / ${int(s.n_users)}`],
            ["Pinned", s.pinned ? `${s.pinned} (${s.pinned_by})` : "no"]]),
        el("h4", { text: "How it was chosen" }), reportView(s.report),
        el("h4", { text: "Refused versions" }),
        s.refused && s.refused.length
          ? el("ul", { class: "refused" }, s.refused.map((r) =>
            el("li", {}, el("b", { text: String(r.version) }), `: ${r.reason}`)))
          : el("p", { class: "hint", text: "None." }),
        el("h4", { text: "Roll back" }),
        el("div", { class: "grid narrow" },
          el("label", {}, "Version (empty: the one before)", vin),
          el("div", { class: "actions" },
            el("button", { type: "button", class: "danger",
                           onclick: () => rollback(s.name, vin) }, "Roll back"),
            el("button", { type: "button", class: "ghost",
                           onclick: () => adminCall("Reload", "/admin/reload") },
               "Reload (clear pins)"))));
    }));
    if (announce) status("models-status", `${m.slots.length} slot(s).`);
  } catch (e) {
    status("models-status", errText(e), true);
  }
}

// ------------------------------------------------------------ Experiments

const RATES = [["user_click_rate", "Users who clicked"],
               ["user_conversion_rate", "Users who bought"],
               ["ctr", "Click-through (per impression)"],
               ["conversion_rate", "Conversions (per impression)"]];

function verdict(t) {
  if (!t) return "—";
  const sig = t.p_value < 0.05;
  return `${t.diff >= 0 ? "+" : ""}${pct(t.diff)} · z ${num(t.z, 2)} · p ${t.p_value < 1e-4 ? t.p_value.toExponential(1) : num(t.p_value, 4)}` +
    (sig ? " · significant at 5 %" : " · not significant");
}

function expView(rep) {
  const vs = rep.variants;
  const srm = rep.srm;
  const counts = el("table", { id: "exp-counts" },
    el("caption", { text: "Counts (all replicas, from Redis)" }),
    el("thead", {}, el("tr", {}, ["Variant", "Weight", "Users", "Impressions",
      "Clicks", "Click events", "Conversions"].map((h) => el("th", { scope: "col", text: h })))),
    el("tbody", {}, vs.map((v) => el("tr", { "data-variant": v.name },
      el("th", { scope: "row", text: v.name + (v.name === rep.control ? " (control)" : "") }),
      el("td", { text: String(v.weight) }),
      ...["users", "impressions", "clicks", "click_events", "conversions"].map((f) =>
        el("td", { "data-field": f, text: int(v[f]) }))))));
  const rates = RATES.map(([key, title]) => {
    const max = Math.max(...vs.map((v) => (v[key]?.ci95 ? v[key].ci95[1] : v[key]?.value || 0)), 1e-9);
    return el("div", { class: "rate" }, el("h4", { text: title }),
      el("div", { class: "scroll" }, el("table", {}, el("tbody", {}, vs.map((v) => {
        const r = v[key];
        return el("tr", {},
          el("th", { scope: "row", text: v.name }),
          el("td", { class: "num", text: r ? pct(r.value) : "—" }),
          el("td", { class: "num", text: r && r.ci95 ? `${pct(r.ci95[0])} – ${pct(r.ci95[1])}` : "" }),
          el("td", { class: "barcell" }, r ? bar(r.value, max, r.ci95?.[0], r.ci95?.[1],
            `${v.name} ${pct(r.value)}`) : ""),
          el("td", { class: "vs", text: v.vs_control ? verdict(v.vs_control[key]) : "control" }));
      })))));
  });
  const srmText = !srm ? "Sample-ratio check: not enough data yet."
    : srm.mismatch
      ? `Sample-ratio mismatch (p ${srm.p_value.toExponential(2)} < ${srm.alpha}): the split is not what the weights say; distrust the figures until it is explained.`
      : `Sample ratio as expected (chi-square ${num(srm.chi_square, 2)}, p ${num(srm.p_value, 3)}).`;
  return el("div", {},
    el("p", { class: srm && srm.mismatch ? "banner bad" : "banner", id: "exp-srm", text: srmText }),
    el("div", { class: "scroll" }, counts), ...rates,
    el("p", { class: "hint", text: `Other replicas' impressions reach Redis within ${rep.flush_ms} ms.` }));
}

async function loadExperiments() {
  const sel = $("exp-select");
  try {
    if (!sel.options.length) {
      const list = await api("GET", "/experiments");
      sel.replaceChildren(...list.experiments.map((x) =>
        el("option", { value: x.name, text: x.name })));
      if (!list.experiments.length) {
        status("exp-status", "No experiment is configured (experiments in the configuration).");
        $("exp-report").replaceChildren();
        return;
      }
    }
    status("exp-status", "Loading…");
    const rep = await api("GET", `/experiments/${encodeURIComponent(sel.value)}`);
    $("exp-report").replaceChildren(expView(rep));
    status("exp-status", `Report of ${rep.experiment} at ${new Date().toLocaleTimeString("en-GB")}.`);
  } catch (e) {
    status("exp-status", errText(e), true);
  }
}

// ------------------------------------------------------------ Live

const SERVING = ["recommend", "similar", "popular", "event"];

/** Prometheus text: [{name, labels, value}] of the lines we read. */
function parseMetrics(text) {
  const out = [];
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)(?:\{([^}]*)\})? ([0-9.eE+-]+|NaN|\+Inf)$/.exec(line);
    if (!m) continue;
    const labels = {};
    for (const kvp of (m[2] || "").split(/,(?=[a-z_]+=)/)) {
      const eq = kvp.indexOf("=");
      if (eq > 0) labels[kvp.slice(0, eq)] = kvp.slice(eq + 2, -1);
    }
    out.push({ name: m[1], labels, value: Number(m[3]) });
  }
  return out;
}

function snapshot(rows) {
  const s = { t: performance.now(), req: 0, events: 0, degraded: 0,
              buckets: new Map() };
  for (const r of rows) {
    if (r.name === "hyperrec_http_requests_total" && SERVING.includes(r.labels.endpoint)) s.req += r.value;
    else if (r.name === "hyperrec_events_total" && r.labels.result === "accepted") s.events += r.value;
    else if (r.name === "hyperrec_recommend_degraded_total") s.degraded += r.value;
    else if (r.name === "hyperrec_http_request_duration_seconds_bucket" &&
             r.labels.endpoint === "recommend") {
      const le = r.labels.le === "+Inf" ? Infinity : Number(r.labels.le);
      s.buckets.set(le, r.value);
    }
  }
  return s;
}

/** A quantile of the requests between two snapshots (linear within a
 *  bucket, as Prometheus' histogram_quantile). */
function quantile(q, a, b) {
  const les = [...b.buckets.keys()].sort((x, y) => x - y);
  const d = les.map((le) => (b.buckets.get(le) || 0) - (a.buckets.get(le) || 0));
  const total = d[d.length - 1];
  if (!total) return null;
  const rank = q * total;
  for (let i = 0; i < les.length; i++) {
    if (d[i] >= rank) {
      const lo = i ? les[i - 1] : 0, prev = i ? d[i - 1] : 0;
      if (les[i] === Infinity) return lo;
      return lo + ((les[i] - lo) * (rank - prev)) / Math.max(d[i] - prev, 1e-9);
    }
  }
  return null;
}

function tile(id, label, value, unit) {
  return el("div", { class: "tile", "data-tile": id },
    el("div", { class: "label", text: label }),
    el("div", { class: "value" }, el("span", { text: value }), unit ? el("small", { text: ` ${unit}` }) : null));
}

async function liveTick() {
  try {
    const res = await fetch("/metrics");
    if (!res.ok) throw new Error(`/metrics answered ${res.status}`);
    const s = snapshot(parseMetrics(await res.text()));
    const p = state.livePrev;
    state.livePrev = s;
    if (!p) {
      status("live-status", "Measuring…");
      $("live-tiles").replaceChildren(tile("rps", "Requests/s", "—"),
        tile("p50", "p50 /recommend", "—"), tile("p99", "p99 /recommend", "—"),
        tile("degraded", "Degraded answers/s", "—"), tile("events", "Events/s", "—"));
      return;
    }
    const dt = (s.t - p.t) / 1000;
    const p50 = quantile(0.5, p, s), p99 = quantile(0.99, p, s);
    const ms = (x) => (x == null ? "—" : (1000 * x).toFixed(x < 0.01 ? 2 : 1));
    $("live-tiles").replaceChildren(
      tile("rps", "Requests/s", ((s.req - p.req) / dt).toFixed(1)),
      tile("p50", "p50 /recommend", ms(p50), "ms"),
      tile("p99", "p99 /recommend", ms(p99), "ms"),
      tile("degraded", "Degraded answers/s", ((s.degraded - p.degraded) / dt).toFixed(1)),
      tile("events", "Events/s", ((s.events - p.events) / dt).toFixed(1)));
    status("live-status", `Updated ${new Date().toLocaleTimeString("en-GB")} ` +
      `(${int(s.req)} requests served since start).`);
  } catch (e) {
    status("live-status", errText(e), true);
  }
}

function startLive() {
  state.livePrev = null;
  liveTick();
  state.liveTimer = setInterval(liveTick, 2000);
}

// ------------------------------------------------------------ start

function start() {
  $("api-key").addEventListener("input", (e) => { state.apiKey = e.target.value; });
  $("try-form").addEventListener("submit", (e) => { e.preventDefault(); runTry(); });
  $("models-refresh").addEventListener("click", () => loadModels());
  $("exp-refresh").addEventListener("click", () => loadExperiments());
  $("exp-select").addEventListener("change", () => loadExperiments());
  window.addEventListener("hashchange", () => show(location.hash.slice(1)));
  document.addEventListener("visibilitychange", () => {
    if (state.page !== "live") return;
    if (document.hidden) { clearInterval(state.liveTimer); state.liveTimer = null; }
    else if (!state.liveTimer) startLive();
  });
  client.installPageHide(window);
  show(location.hash.slice(1) || "try", false);
  document.body.dataset.ready = "1";
}

start();
