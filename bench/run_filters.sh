#!/usr/bin/env bash
# bench/run_filters.sh -- /recommend with attribute filters on a large
# catalogue, side by side on the same model, Redis and users: the server as
# configured (a filtered request on an indexed catalogue takes the exact
# norm-bound pass) against the baseline that scores every matching item
# (ann.min_items raised above the catalogue). For each filter it prints the
# number of items that pass, p50/p99 of both (median of RUNS runs of
# hyperrec-bench http) and the overlap@K of the two answers for USERS_CHECK
# users (1.0: both exact). The filter {} is the unfiltered request (the
# index against scoring every item).
#
#   MODELS=var/big/mf bench/run_filters.sh
#
# MODELS must hold default/<version> with attribute columns in items.tsv
# (docs/benchmarks.md says how the 1M-item one was made). 127.0.0.1 only.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HR_BIN_DIR:-bin}
MODELS=${MODELS:?set MODELS to a models directory with default/<version>}
RUNS=${RUNS:-3}
REQUESTS=${REQUESTS:-3000}
USERS=${USERS:-200000}
USERS_CHECK=${USERS_CHECK:-200}
K=${K:-100}
EF=${EF:-400}
FILTERS=${FILTERS:-'{}
{"category":["news","podcast","drama"]}
{"category":["news","podcast"]}
{"category":"news"}
{"category":"news","style":["indie","niche"]}
{"category":"news","style":"indie"}'}

# shellcheck source=bench/lib.sh
. bench/lib.sh
start_redis

start() { # name ann.min_items
  HYPERREC_ANN_MIN_ITEMS=$2 HYPERREC_ANN_EF=$EF HYPERREC_ANN_EXACT=0 \
  HYPERREC_RECOMMEND_MAX_K=$K \
    "$BIN/hyperrec" --listen 127.0.0.1:0 --redis "127.0.0.1:$RP" --models "$MODELS" >/dev/null 2>"$tmp/$1.log" &
  pids+=($!)
}
start ann 20000
start scan 2000000000
PA=$(port_of ann)
PS=$(port_of scan)

echo "# filtered /recommend: served (port $PA) vs scoring every matching item (port $PS); k=$K, ef=$EF"
while IFS= read -r f; do
  [ -z "$f" ] && continue
  for name in ann scan; do
    p=$PA; [ $name = scan ] && p=$PS
    "$BIN/hyperrec-bench" http --target "127.0.0.1:$p" --requests 500 --concurrency 1 \
      --users "$USERS" --user-prefix u --user-width 5 --k 10 --extra "\"filters\":$f" >/dev/null
    for _ in $(seq "$RUNS"); do
      "$BIN/hyperrec-bench" http --target "127.0.0.1:$p" --requests "$REQUESTS" --concurrency 1 \
        --users "$USERS" --user-prefix u --user-width 5 --k 10 --extra "\"filters\":$f"
    done >"$tmp/$name.jsonl"
  done
  python3 - "$PA" "$PS" "$f" "$tmp" "$USERS_CHECK" "$USERS" "$K" <<'PY'
import json, os, statistics, sys, urllib.request
pa, ps, f, tmp, n_check, n_users, k = sys.argv[1:8]
n_check, n_users, k = int(n_check), int(n_users), int(k)
def post(port, body):
    req = urllib.request.Request("http://127.0.0.1:%s/recommend" % port,
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Authorization": "Bearer " + os.environ["HR_BENCH_KEY"]})
    with urllib.request.urlopen(req) as r:
        return json.load(r)
def med(name, key):
    rows = [json.loads(l) for l in open("%s/%s.jsonl" % (tmp, name))]
    return statistics.median(r[key] for r in rows)
flt = json.loads(f)
hits = total = 0
path = None
matches = None
for i in range(n_check):
    u = "u%05d" % (1 + (i * 7919) % n_users)
    a = post(pa, {"user_id": u, "k": k, "filters": flt})
    s = post(ps, {"user_id": u, "k": k, "filters": flt})
    path = (a["retrieval"], s["retrieval"])
    matches = a.get("filter_matches", "all")
    ids_a = {x["item_id"] for x in a["items"]}
    ids_s = [x["item_id"] for x in s["items"]]
    hits += sum(1 for x in ids_s if x in ids_a)
    total += len(ids_s)
print(json.dumps({"filter": flt, "matches": matches,
                  "paths": "%s/%s" % path,
                  "served_p50_ms": round(med("ann", "p50_ms"), 3),
                  "served_p99_ms": round(med("ann", "p99_ms"), 3),
                  "scan_all_p50_ms": round(med("scan", "p50_ms"), 3),
                  "scan_all_p99_ms": round(med("scan", "p99_ms"), 3),
                  "overlap_at_k": round(hits / max(total, 1), 4)}))
PY
done <<<"$FILTERS"
