#!/usr/bin/env bash
# bench/run_ann.sh -- `make bench-ann`: our HNSW index against hnswlib, in the
# same run, on the same files, side by side (ours then hnswlib, RUNS times per
# set), then the median recall@10/QPS curve of each and the ratios at recall
# 0.95 and 0.99, build time and memory. See bench/README.md and
# docs/benchmarks.md.
#
# Knobs: SETS ("100k 1M"), RUNS (3), EF (list), THREADS (2), DATA (var/ann),
#        SHARED (../shared/bench: gen_vectors.py and hnswlib_ref.cpp).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${HR_BIN_DIR:-bin}
DATA=${DATA:-var/ann}
SHARED=${SHARED:-../shared/bench}
SETS=${SETS:-100k 1M}
RUNS=${RUNS:-3}
THREADS=${THREADS:-2}
EF=${EF:-10,15,20,25,30,40,50,60,80,100,120,160,200,300}
OUT=${OUT:-$DATA/results}
mkdir -p "$DATA" "$OUT"

# The data: deterministic, generated once (minutes for 1M), never committed.
need_gen=0
for s in $SETS; do
  [ -f "$DATA/$s/base.vec" ] && [ -f "$DATA/$s/gt10.gt" ] || need_gen=1
done
if [ "$need_gen" = 1 ]; then
  echo "# generating $DATA/{100k,1M} with $SHARED/gen_vectors.py (minutes)"
  /usr/bin/python3 "$SHARED/gen_vectors.py" --n 100000 --n 1000000 --out "$DATA"
fi

# The reference, compiled natively as its header says.
REF=$DATA/hnswlib_ref
if [ ! -f /usr/include/hnswlib/hnswlib.h ]; then
  echo "# installing libhnswlib-dev"
  if [ "$(id -u)" = 0 ]; then apt-get install -y --no-install-recommends libhnswlib-dev >/dev/null
  else sudo apt-get install -y --no-install-recommends libhnswlib-dev >/dev/null; fi
fi
if [ ! -x "$REF" ] || [ "$SHARED/hnswlib_ref.cpp" -nt "$REF" ]; then
  g++ -O3 -march=native -std=c++17 -pthread -o "$REF" "$SHARED/hnswlib_ref.cpp"
fi

echo "# ann: sets [$SETS], $RUNS runs each, threads $THREADS, ef $EF, kernel from CPU detection"
for s in $SETS; do
  D=$DATA/$s
  rm -f "$OUT/$s.ours.jsonl" "$OUT/$s.hnswlib.jsonl"
  for r in $(seq "$RUNS"); do
    echo "# $s run $r/$RUNS"
    "$BIN/hyperrec-bench" ann --base "$D/base.vec" --queries "$D/queries.vec" \
      --gt "$D/gt10.gt" --threads "$THREADS" --M 16 --efc 200 --ef "$EF" --json |
      sed "s/^{/{\"run\":$r,/" | tee -a "$OUT/$s.ours.jsonl"
    "$REF" "$D/base.vec" "$D/queries.vec" "$D/gt10.gt" --threads "$THREADS" \
      --M 16 --efc 200 --ef "$EF" |
      sed "s/^{/{\"run\":$r,/" | tee -a "$OUT/$s.hnswlib.jsonl"
  done
done

/usr/bin/python3 - "$OUT" $SETS <<'PY'
import json, statistics as st, sys
out, sets = sys.argv[1], sys.argv[2:]
M = 16

def hnswlib_bytes(n, dim):
    # hnswlib's level-0 block per element: links (4 + 2M*4), vector, label (8);
    # upper levels: n/(M-1) expected element-levels of 4 + M*4 bytes, plus the
    # per-element pointer (8) and level (4). Mutexes and the label map are left
    # out, so this is a lower bound of its real footprint.
    return n * (4 + 2 * M * 4 + dim * 4 + 8) + n * 12 + n / (M - 1) * (4 + M * 4)

def curve(rows):
    by = {}
    for r in rows:
        by.setdefault(r["ef"], []).append(r)
    pts = []
    for ef in sorted(by):
        rs = by[ef]
        pts.append({"ef": ef, "recall": st.median(r["recall@10"] for r in rs),
                    "qps": st.median(r["qps"] for r in rs), "runs": len(rs)})
    return pts

def at(pts, target):
    """QPS at a recall: (smallest-ef pick, linear interpolation)."""
    for i, p in enumerate(pts):
        if p["recall"] >= target:
            if i == 0:
                return p["qps"], p["qps"], p["ef"]
            a = pts[i - 1]
            t = (target - a["recall"]) / (p["recall"] - a["recall"])
            return p["qps"], a["qps"] + t * (p["qps"] - a["qps"]), p["ef"]
    return None, None, None

for s in sets:
    rows = {m: [json.loads(l) for l in open(f"{out}/{s}.{m}.jsonl")] for m in ("ours", "hnswlib")}
    pts = {m: curve(rows[m]) for m in rows}
    for m in pts:
        with open(f"{out}/{s}.{m}.tsv", "w") as f:
            f.write("# ef recall qps\n")
            for p in pts[m]:
                f.write(f"{p['ef']} {p['recall']:.4f} {p['qps']:.1f}\n")
    runs = {m: {r["run"]: r["build_s"] for r in rows[m]} for m in rows}
    builds = {m: st.median(runs[m].values()) for m in rows}
    nruns = min(len(runs[m]) for m in runs)
    n, dim = rows["ours"][0]["n"], rows["ours"][0]["dim"]
    mem_ours = rows["ours"][0]["index_bytes"]
    mem_ref = hnswlib_bytes(n, dim)
    print(f"\n## {s}: n={n} dim={dim}, medians of {nruns} runs (kernel {rows['ours'][0]['kernel']})")
    print(f"{'ef':>5} {'ours recall':>11} {'ours qps':>10} {'hnswlib recall':>14} {'hnswlib qps':>11}")
    ref = {p["ef"]: p for p in pts["hnswlib"]}
    for p in pts["ours"]:
        h = ref.get(p["ef"], {"recall": float("nan"), "qps": float("nan")})
        print(f"{p['ef']:>5} {p['recall']:>11.4f} {p['qps']:>10.0f} {h['recall']:>14.4f} {h['qps']:>11.0f}")
    summary = {"bench": "ann-summary", "set": s, "runs": nruns}
    for target, need in ((0.95, 1.3), (0.99, 1.0)):
        po, io, eo = at(pts["ours"], target)
        ph, ih, eh = at(pts["hnswlib"], target)
        key = f"r{int(target * 100)}"
        if po is None or ph is None:
            summary[key] = "not reached"
            continue
        summary[key] = {"ours_ef": eo, "hnswlib_ef": eh, "ours_qps": round(io), "hnswlib_qps": round(ih),
                        "qps_ratio_interp": round(io / ih, 3), "qps_ratio_pick": round(po / ph, 3),
                        "target": need, "met": io / ih >= need}
    summary["build_s"] = {"ours": builds["ours"], "hnswlib": builds["hnswlib"],
                          "ratio": round(builds["ours"] / builds["hnswlib"], 3),
                          "met": builds["ours"] <= builds["hnswlib"]}
    summary["memory_bytes"] = {"ours": mem_ours, "hnswlib_lower_bound": round(mem_ref),
                               "ratio": round(mem_ours / mem_ref, 3), "met": mem_ours <= mem_ref}
    print(json.dumps(summary))
PY
