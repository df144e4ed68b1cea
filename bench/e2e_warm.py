#!/usr/bin/env python3
"""bench/e2e_warm.py -- one /recommend per user (u00001..uUSERS, in order),
four at a time, before a hyperrec server is measured: its first request of a
user history computes and keeps the user's vector and candidates, the
following ones use them (docs/architecture.md). Prints one JSON line: the
requests, the seconds they took and what that is per second (the cost of
users whose history is new to the server). Standard library only.

    e2e_warm.py --port P --users 10000 --now T
"""
import argparse
import concurrent.futures
import json
import os
import sys
import time
import urllib.request


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--users", type=int, default=10000)
    ap.add_argument("--now", type=int, required=True)
    ap.add_argument("--threads", type=int, default=4)
    a = ap.parse_args()
    url = "http://127.0.0.1:%d/recommend" % a.port

    def one(u):
        body = json.dumps({"user_id": "u%05d" % u, "k": 20,
                           "context": {"ts": a.now - 3600}}).encode()
        headers = {"Content-Type": "application/json"}
        if os.environ.get("HR_BENCH_KEY"):  # bench/lib.sh
            headers["Authorization"] = "Bearer " + os.environ["HR_BENCH_KEY"]
        req = urllib.request.Request(url, data=body, headers=headers)
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
            return r.status

    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(a.threads) as ex:
        bad = sum(1 for s in ex.map(one, range(1, a.users + 1)) if s != 200)
    dt = time.monotonic() - t0
    print(json.dumps({"warm": a.users, "seconds": round(dt, 2),
                      "rps": round(a.users / dt, 1), "non200": bad}))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
