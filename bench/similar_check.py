#!/usr/bin/env python3
"""bench/similar_check.py -- /similar against an exact scan, and its
latency against /recommend's, on two servers of the same model.

    similar_check.py INDEX_PORT SCAN_PORT ITEMS_FILE USERS_FILE KEY

INDEX_PORT serves through the index (ann.min_items 1), SCAN_PORT scores
every item (ann.min_items above the catalogue): the exact scan. For the
first 1,000 items of ITEMS_FILE: recall@10 of the index's neighbours
against the scan's, unfiltered and with the filter {"genre": "Drama"}
(exact both ways: the filter pass). Then p50 and p99 of /similar and of
/recommend (the users of USERS_FILE) on INDEX_PORT, interleaved in 3 runs
of 1,000 requests each over one keep-alive connection; medians of the
runs. Prints one JSON line.
"""
import http.client
import json
import statistics
import sys
import time

iport, sport, items_f, users_f, key = sys.argv[1:6]
items = [l.strip() for l in open(items_f) if l.strip()][:1000]
users = [l.strip() for l in open(users_f) if l.strip()]
HDR = {"Authorization": "Bearer " + key, "Content-Type": "application/json"}


def ask(conn, path, body):
    conn.request("POST", path, json.dumps(body), HDR)
    r = conn.getresponse()
    data = json.loads(r.read())
    if r.status != 200:
        raise SystemExit("%s %s: %d %s" % (path, body, r.status, data))
    return data


ic = http.client.HTTPConnection("127.0.0.1", int(iport), timeout=10)
sc = http.client.HTTPConnection("127.0.0.1", int(sport), timeout=10)


def recall(extra):
    hit = total = 0
    paths = set()
    exact_order = 0
    for it in items:
        body = dict(item_id=it, k=10, **extra)
        a = ask(ic, "/similar", body)
        b = ask(sc, "/similar", body)
        paths.add(a["retrieval"])
        got = [x["item_id"] for x in a["items"]]
        want = [x["item_id"] for x in b["items"]]
        hit += len(set(got) & set(want))
        total += len(want)
        exact_order += got == want
    return {"recall@10": round(hit / total, 4), "same_list": exact_order,
            "anchors": len(items), "retrieval": sorted(paths)}


out = {"unfiltered": recall({}),
       "filter_genre_drama": recall({"filters": {"genre": "Drama"}})}


def timed(path, body):
    t0 = time.perf_counter()
    ask(ic, path, body)
    return (time.perf_counter() - t0) * 1000


runs = []
for run in range(3):
    sim, rec = [], []
    for i in range(1000):
        sim.append(timed("/similar", {"item_id": items[i % len(items)], "k": 10}))
        rec.append(timed("/recommend", {"user_id": users[i % len(users)], "k": 10}))
    sim.sort()
    rec.sort()
    runs.append({"similar_p50": sim[500], "similar_p99": sim[990],
                 "recommend_p50": rec[500], "recommend_p99": rec[990]})
med = {k: round(statistics.median(r[k] for r in runs), 3) for k in runs[0]}
med["p50_ratio_similar_over_recommend"] = round(
    med["similar_p50"] / med["recommend_p50"], 3)
out["latency_ms"] = med
print(json.dumps(out))
