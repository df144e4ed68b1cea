// @hyperrec/client -- a browser and Node client for the hyperrec service.
//
// No runtime dependencies: the platform's fetch (browsers, Node 18+).
//
//   const hr = new HyperrecClient({ baseUrl: "https://rec.example.com",
//                                   token: () => currentUserToken() });
//   const list = await hr.recommend({ user_id: "42", k: 10 });
//   hr.track({ user_id: "42", type: "click", item_id: list.items[0].item_id });
//
// track() queues events and sends them in batches (POST /event with
// {"events": [...]}). Every event gets an event_id, so a batch sent again
// after a lost answer is acknowledged as duplicates, never stored twice.
// An event on an item of a list this client was shown carries that list's
// recommendation_id unless it names one, which is what attributes clicks
// to an experiment's variant. Failed sends are retried with exponential
// backoff that honours Retry-After. The queue is bounded: what it had to
// drop is counted (stats().dropped) and reported (onDrop), never silent.
// installPageHide() delivers what is left when the page is hidden.

const DEFAULTS = {
  batchSize: 20, // events per POST /event (the server takes up to 100)
  flushIntervalMs: 1000, // a partial batch waits at most this long
  maxQueue: 1000, // events held while the service cannot take them
  maxRetries: 8, // attempts of one batch before its events are dropped
  backoffMs: 250, // first retry delay; doubles, with jitter, up to 30 s
  maxBackoffMs: 30000,
  timeoutMs: 5000, // one request
  rememberLists: 1000, // items whose recommendation_id is remembered
};

const MAX_BATCH = 100;
const KEEPALIVE_BYTES = 60000; // fetch keepalive bodies are capped at 64 KiB

/** An error answer of the service, with its HTTP status and error body. */
export class HyperrecError extends Error {
  constructor(status, body, retryAfterMs) {
    const e = (body && body.error) || {};
    super(e.message || `HTTP ${status}`);
    this.name = "HyperrecError";
    this.status = status;
    this.code = e.code || null;
    this.field = e.field || null;
    this.retryAfterMs = retryAfterMs;
  }
}

function retryAfterMs(res) {
  const v = res.headers.get("retry-after");
  if (v == null) return null;
  const s = Number(v);
  if (Number.isFinite(s) && s >= 0) return s * 1000;
  const t = Date.parse(v);
  return Number.isFinite(t) ? Math.max(0, t - Date.now()) : null;
}

function randomId() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === "function") return c.randomUUID();
  let s = "";
  for (let i = 0; i < 32; i++) s += Math.floor(Math.random() * 16).toString(16);
  return s;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export class HyperrecClient {
  constructor(options = {}) {
    if (!options.baseUrl) throw new TypeError("baseUrl is required");
    this.opts = { ...DEFAULTS, ...options };
    this.baseUrl = String(options.baseUrl).replace(/\/+$/, "");
    this._fetch = options.fetch || globalThis.fetch.bind(globalThis);
    this._queue = [];
    this._lists = new Map(); // item_id -> recommendation_id, oldest first
    this._timer = null;
    this._sending = null;
    this._lastCred = null;
    this._stats = { queued: 0, sent: 0, duplicates: 0, dropped: 0,
                    rejected: 0, retries: 0 };
  }

  async _headers() {
    const h = { "Content-Type": "application/json" };
    let cred = this.opts.apiKey;
    if (this.opts.token) {
      cred = typeof this.opts.token === "function"
        ? await this.opts.token() : this.opts.token;
    }
    if (cred) h.Authorization = `Bearer ${cred}`;
    this._lastCred = cred; // what flushOnExit can use without waiting
    return h;
  }

  /** POST path with body; the parsed answer, or a HyperrecError. */
  async _post(path, body, extra = {}) {
    const ctl = typeof AbortController === "function"
      ? new AbortController() : null;
    const timer = ctl && setTimeout(() => ctl.abort(), this.opts.timeoutMs);
    try {
      const res = await this._fetch(this.baseUrl + path, {
        method: "POST",
        headers: await this._headers(),
        body: JSON.stringify(body),
        signal: ctl ? ctl.signal : undefined,
        ...extra,
      });
      const text = await res.text();
      let json = null;
      try { json = text ? JSON.parse(text) : null; } catch { json = null; }
      if (!res.ok) throw new HyperrecError(res.status, json, retryAfterMs(res));
      return json;
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  _remember(list) {
    if (!list || !list.recommendation_id || !Array.isArray(list.items)) return;
    for (const it of list.items) {
      this._lists.delete(it.item_id);
      this._lists.set(it.item_id, list.recommendation_id);
    }
    while (this._lists.size > this.opts.rememberLists) {
      this._lists.delete(this._lists.keys().next().value);
    }
  }

  /** POST /recommend (docs/api.md). The answer's items remember its
   *  recommendation_id for the events that follow on them. */
  async recommend(req) {
    const list = await this._post("/recommend", req);
    this._remember(list);
    return list;
  }

  /** POST /similar: the items nearest to req.item_id ("more like this");
   *  personal with req.user_id. Its items remember the answer's
   *  recommendation_id too. */
  async similar(req) {
    const list = await this._post("/similar", req);
    this._remember(list);
    return list;
  }

  /** POST /popular: what is popular in req.context (anonymous visitors,
   *  empty shelves). Its items remember the answer's recommendation_id. */
  async popular(req = {}) {
    const list = await this._post("/popular", req);
    this._remember(list);
    return list;
  }

  /** Queue one event (POST /event's fields). Returns the event as queued
   *  (with its event_id), or null when the queue was full and it was
   *  dropped (counted, and onDrop called). */
  track(event) {
    if (!event || typeof event !== "object") {
      throw new TypeError("track(event): an object with user_id and type");
    }
    const ev = { ...event };
    if (ev.event_id == null) ev.event_id = randomId();
    const shown = ev.item_id != null && this._lists.get(String(ev.item_id));
    if (ev.recommendation_id == null && shown) ev.recommendation_id = shown;
    if (this._queue.length >= this.opts.maxQueue) {
      this._drop([ev], "queue_full");
      return null;
    }
    this._queue.push(ev);
    this._stats.queued++;
    if (this._queue.length >= this.opts.batchSize) this.flush();
    else this._arm();
    return ev;
  }

  _arm() {
    if (this._timer || this._queue.length === 0) return;
    this._timer = setTimeout(() => {
      this._timer = null;
      this.flush();
    }, this.opts.flushIntervalMs);
    if (typeof this._timer === "object" && this._timer.unref) this._timer.unref();
  }

  _drop(events, reason, error) {
    const counter = reason === "rejected" ? "rejected" : "dropped";
    this._stats[counter] += events.length;
    if (this.opts.onDrop) {
      try { this.opts.onDrop(events, reason, error); } catch { /* caller's */ }
    }
  }

  /** Send everything queued now; resolves when the queue is empty or what
   *  is left is waiting for a retry that failed for good. */
  flush() {
    if (this._timer) { clearTimeout(this._timer); this._timer = null; }
    if (!this._sending) {
      this._sending = this._drain().finally(() => {
        this._sending = null;
        this._arm();
      });
    }
    return this._sending;
  }

  async _drain() {
    while (this._queue.length > 0) {
      const n = Math.min(this._queue.length, this.opts.batchSize, MAX_BATCH);
      const batch = this._queue.slice(0, n);
      const ok = await this._sendBatch(batch);
      if (!ok) return; // dropped for good, or given up for now
    }
  }

  /** One batch until it is acknowledged, rejected or out of retries. */
  async _sendBatch(batch) {
    let delay = this.opts.backoffMs;
    for (let attempt = 0; ; attempt++) {
      try {
        const ack = (await this._post("/event", { events: batch })) || {};
        this._queue.splice(0, batch.length);
        this._stats.duplicates += ack.duplicates || 0;
        this._stats.sent += batch.length - (ack.duplicates || 0);
        return true;
      } catch (err) {
        const status = err instanceof HyperrecError ? err.status : 0;
        if (status >= 400 && status < 500 && status !== 408 && status !== 429) {
          // The batch is refused as a whole; a field path names the event.
          const m = /^events\[(\d+)\]/.exec(err.field || "");
          const bad = m ? Number(m[1]) : -1;
          if (bad >= 0 && bad < batch.length) {
            this._queue.splice(bad, 1);
            this._drop([batch[bad]], "rejected", err);
          } else {
            this._queue.splice(0, batch.length);
            this._drop(batch, "rejected", err);
          }
          return true; // the rest is sent again by _drain
        }
        if (attempt + 1 >= this.opts.maxRetries) {
          this._queue.splice(0, batch.length);
          this._drop(batch, "retries_exhausted", err);
          return true;
        }
        this._stats.retries++;
        const wait = err.retryAfterMs != null ? err.retryAfterMs
          : delay * (0.5 + Math.random() / 2);
        await sleep(Math.min(wait, this.opts.maxBackoffMs));
        delay = Math.min(delay * 2, this.opts.maxBackoffMs);
      }
    }
  }

  /** What the client did so far: events queued, sent, found duplicate by
   *  the server, dropped (queue full, retries exhausted), rejected (400),
   *  retries; and the queue's current length. */
  stats() {
    return { ...this._stats, pending: this._queue.length };
  }

  /** Hand what is queued to the browser for delivery after the page is
   *  gone: fetch with keepalive (it carries the Authorization header,
   *  which sendBeacon cannot), sendBeacon when there is no credential.
   *  Returns the number of events handed over. */
  flushOnExit() {
    if (this._timer) { clearTimeout(this._timer); this._timer = null; }
    let handed = 0;
    const cred = typeof this.opts.token === "function" ? this._lastCred
      : this.opts.token || this.opts.apiKey;
    while (this._queue.length > 0) {
      let n = Math.min(this._queue.length, MAX_BATCH);
      let body = JSON.stringify({ events: this._queue.slice(0, n) });
      while (n > 1 && body.length > KEEPALIVE_BYTES) {
        n = Math.ceil(n / 2);
        body = JSON.stringify({ events: this._queue.slice(0, n) });
      }
      const url = this.baseUrl + "/event";
      const nav = globalThis.navigator;
      if (!cred && nav && typeof nav.sendBeacon === "function" &&
          typeof Blob === "function") {
        // a Blob with the JSON type: the server refuses other types
        nav.sendBeacon(url, new Blob([body], { type: "application/json" }));
      } else {
        const headers = { "Content-Type": "application/json" };
        if (cred) headers.Authorization = `Bearer ${cred}`;
        this._fetch(url, { method: "POST", headers, body, keepalive: true })
          .catch(() => {});
      }
      this._queue.splice(0, n);
      handed += n;
    }
    return handed;
  }

  /** Browsers: flushOnExit() when the page is hidden or left. Returns a
   *  function that removes the listeners. */
  installPageHide(target = globalThis) {
    const doc = target.document;
    const onHide = () => {
      if (!doc || doc.visibilityState === "hidden") this.flushOnExit();
    };
    const onPageHide = () => this.flushOnExit();
    if (doc) doc.addEventListener("visibilitychange", onHide);
    target.addEventListener("pagehide", onPageHide);
    return () => {
      if (doc) doc.removeEventListener("visibilitychange", onHide);
      target.removeEventListener("pagehide", onPageHide);
    };
  }
}

export default HyperrecClient;
