#!/usr/bin/env python3
"""compare_rev.py -- /recommend answers of two builds, side by side.

    tests/compare_rev.py OLD_BIN_DIR NEW_BIN_DIR [--work DIR]

Generates data, fits an iALS model (25,000 items: the index path) and a
small one (exact path), a sequential one (with context features and the
long-term part) and a context prior from users.csv, starts one private
redis-server and, per model set, one server of each build on it, then
sends the same requests to both: known and unknown users, anonymous
histories, exclusions, filters, explanations, context overrides, several
k, before and after /event writes. Every answer must be the same bytes,
recommendation_id aside. Prints one line per model set and exits 1 on the
first difference (both answers shown). 127.0.0.1 only; everything started
is stopped at exit.

`make compare-rev REV=<commit>` builds REV in a scratch worktree and runs
this against the working tree's build.
"""
import hashlib
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


# Builds that check credentials (issue 17) get this key; older ones ignore
# the header.
KEY = "hrk_compare_rev_0123456789"


def key_env(bin_dir):
    """HYPERREC_AUTH_API_KEYS for a build that knows the key, else {}."""
    ref = subprocess.run([os.path.join(bin_dir, "hyperrec"), "--help-config"],
                         capture_output=True, text=True).stdout
    if "auth.api_keys" not in ref:
        return {}
    return {"HYPERREC_AUTH_API_KEYS":
            "compare:" + hashlib.sha256(KEY.encode()).hexdigest()}


def post(port, path, body, raw=False):
    """(status, parsed JSON) or, with raw, (status, the body's bytes)."""
    req = urllib.request.Request(
        "http://127.0.0.1:%d%s" % (port, path), data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json",
                 "Authorization": "Bearer " + KEY}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            status, text = r.status, r.read()
    except urllib.error.HTTPError as e:
        status, text = e.code, e.read()
    return status, text if raw else json.loads(text or b"null")


def wait_port(log, proc, what):
    for _ in range(2400):
        if proc.poll() is not None:
            sys.exit("%s exited early:\n%s" % (what, open(log).read()[-2000:]))
        try:
            for line in open(log):
                if '"event":"listening"' in line:
                    return json.loads(line)["port"]
        except FileNotFoundError:
            pass
        time.sleep(0.05)
    sys.exit("%s never listened" % what)


def run(argv, **kw):
    r = subprocess.run(argv, capture_output=True, text=True, **kw)
    if r.returncode != 0:
        sys.exit("%s failed:\n%s" % (" ".join(argv), r.stderr[-3000:]))
    return r.stdout


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    old_bin, new_bin = sys.argv[1], sys.argv[2]
    work = tempfile.mkdtemp(prefix="hr-cmp-")
    procs = []

    def stop(*_):
        for p in procs:
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)

    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    try:
        train = os.path.join(new_bin, "hyperrec-train")
        sets = {}
        for name, items, events, extra in (
                ("ials-ann", 25000, 60000, []),
                ("ials-exact", 1500, 30000, []),
                ("seq", 1500, 30000, ["--kind", "seq", "--epochs", "2",
                                      "--long-term", "6"])):
            data = os.path.join(work, "data-" + name)
            run([train, "gen", "--out", data, "--users", "400", "--items",
                 str(items), "--events", str(events), "--seed", "3"])
            models = os.path.join(work, "models-" + name)
            run([train, "fit", "--data", os.path.join(data, "events.csv"),
                 "--items", os.path.join(data, "items.csv"), "--users",
                 os.path.join(data, "users.csv"), "--out",
                 os.path.join(models, "default"), "--quiet"] + extra)
            sets[name] = (data, models, items)

        rp = free_port()
        procs.append(subprocess.Popen(
            ["redis-server", "--port", str(rp), "--bind", "127.0.0.1",
             "--save", "", "--appendonly", "no", "--dir", work],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        for _ in range(200):
            if subprocess.run(["redis-cli", "-p", str(rp), "ping"],
                              capture_output=True).returncode == 0:
                break
            time.sleep(0.05)

        rng = random.Random(5)
        now = 1767225600  # 2026-01-01, fixed: answers must not move
        locs = ["home", "work", "commute", "gym"]
        moods = ["happy", "calm", "tired", "sad"]
        for name, (data, models, n_items) in sets.items():
            # every other user gets a Redis history (with times) and context
            cmds = ["FLUSHALL"]
            for u in range(1, 401, 2):
                hist = ["i%05d\t%d" % (rng.randint(1, n_items),
                                        now - 3600 * (j + 1))
                        for j in range(rng.randint(1, 40))]
                cmds.append("DEL hr:hist:{u%05d}" % u)
                cmds.append(" ".join(["RPUSH", "hr:hist:{u%05d}" % u] +
                                     ['"%s"' % h.replace("\t", "\\t")
                                      for h in hist]))
                cmds.append("HSET hr:ctx:{u%05d} location %s mood %s" %
                            (u, rng.choice(locs), rng.choice(moods)))
            subprocess.run(["redis-cli", "-p", str(rp)],
                           input="\n".join(cmds) + "\n", text=True,
                           capture_output=True, check=True)
            ports = []
            for tag, bdir in (("old", old_bin), ("new", new_bin)):
                log = os.path.join(work, "%s-%s.log" % (name, tag))
                env = dict(os.environ, HYPERREC_ANN_MIN_ITEMS="20000",
                           **key_env(bdir))
                procs.append(subprocess.Popen(
                    [os.path.join(bdir, "hyperrec"), "--listen",
                     "127.0.0.1:0", "--redis", "127.0.0.1:%d" % rp,
                     "--models", models], stdout=subprocess.DEVNULL,
                    stderr=open(log, "w"), env=env))
                ports.append(wait_port(log, procs[-1], "%s %s" % (tag, name)))

            def body(i):
                b = {"k": rng.choice([1, 5, 10, 37]),
                     "context": {"ts": now - rng.randint(0, 86400)}}
                kind = i % 9
                if kind in (0, 1, 2, 3):
                    b["user_id"] = "u%05d" % rng.randint(1, 400)
                if kind == 1:
                    b["exclude"] = ["i%05d" % rng.randint(1, n_items)
                                    for _ in range(5)]
                if kind in (2, 4):
                    b["explain"] = True
                if kind in (3, 5):
                    b["context"]["location"] = rng.choice(locs)
                    b["context"]["mood"] = rng.choice(moods)
                if kind in (4, 5, 6):
                    b["history"] = ["i%05d" % rng.randint(1, n_items)
                                    for _ in range(rng.randint(1, 8))]
                if kind == 6:
                    b["user_id"] = "nobody-%d" % i
                if kind == 7:
                    b["filters"] = {"category": [rng.choice(
                        ["news", "podcast", "music", "video"])]}
                    b["user_id"] = "u%05d" % rng.randint(1, 400)
                if kind == 8:  # a newcomer: the context prior
                    b["user_id"] = "new-%d" % i
                    b["user_attrs"] = {"age": rng.randint(16, 70)}
                    b["context"]["location"] = rng.choice(locs)
                    b["explain"] = i % 2 == 0
                return b

            compared, seen = 0, {}
            for phase in range(2):
                for i in range(250):
                    b = body(i)
                    (s1, t1), (s2, t2) = (post(p, "/recommend", b, True)
                                          for p in ports)
                    # the same bytes, but for the random recommendation id
                    t1, t2 = (re.sub(rb'^\{"recommendation_id":"[^"]*",',
                                     b"{", t) for t in (t1, t2))
                    a1, a2 = json.loads(t1), json.loads(t2)
                    if (s1, t1) != (s2, t2):
                        print("DIFFERENT answers (%s) to %s" %
                              (name, json.dumps(b)))
                        print("old %d %s" % (s1, json.dumps(a1)))
                        print("new %d %s" % (s2, json.dumps(a2)))
                        return 1
                    compared += 1
                    tag = "%d %s" % (s1, a1.get("retrieval", "") if
                                     isinstance(a1, dict) else "")
                    if isinstance(a1, dict) and a1.get("items") and \
                            "explain" in a1["items"][0]:
                        tag += " explain"
                    seen[tag] = seen.get(tag, 0) + 1
                    if s1 != 200 and os.environ.get("CMP_DEBUG"):
                        print(json.dumps(b), json.dumps(a1))
                # new events (through the new build) change the state both
                # read
                for u in range(1, 60):
                    post(ports[1], "/event", {
                        "user_id": "u%05d" % u, "type": "click",
                        "item_id": "i%05d" % rng.randint(1, n_items),
                        "ts": now - 60, "context": {"location": "gym"}})
            print("compare-rev %s: %d answers identical (%s)" % (
                name, compared, ", ".join("%s: %d" % kv
                                          for kv in sorted(seen.items()))))
            for p in procs[1:]:
                p.terminate()
                p.wait()
            del procs[1:]
        return 0
    finally:
        stop()


if __name__ == "__main__":
    sys.exit(main())
