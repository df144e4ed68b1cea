// live.mjs -- a private Redis and hyperrec for the JavaScript tests
// (clients/js/test, tests/web): free loopback ports, a generated data set,
// trained versions, a server, and waiting for events rather than time.
import { execFileSync, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
export const root = path.resolve(here, "..", "..");
export const bin = path.resolve(root, process.env.HR_BIN_DIR || "bin");

export function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, "127.0.0.1", () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
    s.on("error", reject);
  });
}

/** Poll cond (which may throw: not yet) every 50 ms for up to ms. */
export async function until(what, cond, ms = 10000) {
  const end = Date.now() + ms;
  for (;;) {
    try { if (await cond()) return; } catch { /* not yet */ }
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export const train = (...args) =>
  execFileSync(path.join(bin, "hyperrec-train"), args, { stdio: "ignore" });

/** A stack in a fresh temporary directory: start() starts Redis (AOF, no
 *  snapshots), startServer(args) the server on a free port with that Redis
 *  and tmp/models; stop() ends both and removes the directory. */
export class Stack {
  constructor(prefix) {
    this.tmp = mkdtempSync(path.join(os.tmpdir(), prefix));
    this.models = path.join(this.tmp, "models");
  }

  /** Redis on a free port, or again on its port after a SHUTDOWN. */
  async start() {
    if (!this.redisPort) this.redisPort = await freePort();
    this.redis = spawn("redis-server", ["--port", String(this.redisPort),
      "--bind", "127.0.0.1", "--save", "", "--appendonly", "yes", "--dir",
      this.tmp], { stdio: "ignore" });
    await until("redis", () => this.rcli("PING") === "PONG");
  }

  rcli(...args) {
    return execFileSync("redis-cli", ["-p", String(this.redisPort), ...args])
      .toString().trim();
  }

  /** Generated data (hyperrec-train gen) in tmp/data; returns events.csv. */
  gen(...args) {
    const out = path.join(this.tmp, "data");
    train("gen", "--out", out, ...args);
    return path.join(out, "events.csv");
  }

  hashKey(key) {
    return execFileSync(path.join(bin, "hyperrec"), ["hash-key", key])
      .toString().trim();
  }

  /** The server with a JSON configuration (written to tmp) and flags. */
  async startServer(config = null, flags = []) {
    this.port = await freePort();
    const args = ["--listen", `127.0.0.1:${this.port}`, "--redis",
      `127.0.0.1:${this.redisPort}`, "--models", this.models,
      "--log-level", "error", ...flags];
    if (config) {
      const f = path.join(this.tmp, "hyperrec.json");
      writeFileSync(f, JSON.stringify(config));
      args.push("--config", f);
    }
    this.server = spawn(path.join(bin, "hyperrec"), args,
      { stdio: ["ignore", "ignore", "inherit"] });
    this.base = `http://127.0.0.1:${this.port}`;
    await until("the server", async () =>
      (await fetch(`${this.base}/readyz`)).ok);
    return this.base;
  }

  async stop() {
    const ended = (p) => new Promise((r) => {
      if (!p || p.exitCode !== null) return r();
      p.once("exit", r);
      p.kill("SIGTERM");
    });
    await ended(this.server);
    await ended(this.redis);
    rmSync(this.tmp, { recursive: true, force: true });
  }
}
