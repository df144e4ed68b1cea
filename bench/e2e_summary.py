#!/usr/bin/env python3
"""bench/e2e_summary.py -- the bookkeeping of bench/run_e2e.sh (standard
library only).

  row      parse one wrk --latency output, append its JSON row to --out and
           print it as one line
  main     medians per target of the side-by-side rounds: a markdown table,
           the ratios, one {"bench":"e2e-summary",...} JSON line and a
           "target: ... measured: ... ok|MISSED" line per acceptance point;
           writes summary.md, summary.json, runs.tsv and appends the JSON line
           to history.jsonl in --results
  scaling  medians per scaling point (catalogue size, history length) at
           each concurrency: scaling.tsv (read by bench/plot_e2e.gp) and a
           markdown table
"""
import argparse
import json
import os
import re
import statistics
import sys

UNIT_MS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3, "h": 3600e3}

# name in the runs -> label in the table
MAIN_TARGETS = [
    ("nginx", "nginx GET /rec.json (ceiling)"),
    ("pyref-rec", "pyref POST /recommend"),
    ("ials-rec", "hyperrec iALS POST /recommend"),
    ("seq-rec", "hyperrec seq POST /recommend"),
    ("seq-cold-rec", "hyperrec seq, nothing kept (user_cache_mb 0)"),
    ("pyref-event", "pyref POST /event"),
    ("hr-event", "hyperrec POST /event"),
]
HYPERREC = ("ials-rec", "seq-rec", "hr-event")
FAULTS_MAX = 0.1


def ms(value, unit):
    return float(value) * UNIT_MS[unit]


def parse_wrk(text):
    r = {}
    m = re.search(r"Requests/sec:\s+([\d.]+)", text)
    r["rps"] = float(m.group(1)) if m else None
    for pct in ("50", "75", "90", "99"):
        m = re.search(r"^\s+%s%%\s+([\d.]+)(us|ms|s|m|h)\s*$" % pct, text, re.M)
        r["p%s_ms" % pct] = round(ms(*m.groups()), 4) if m else None
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m|h)", text)
    r["requests"] = int(m.group(1)) if m else 0
    r["seconds"] = round(ms(m.group(2), m.group(3)) / 1e3, 3) if m else None
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
    for i, k in enumerate(("connect", "read", "write", "timeout")):
        r["sock_" + k] = int(m.group(i + 1)) if m else 0
    m = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    r["non2xx"] = int(m.group(1)) if m else 0
    r["socket_errors"] = sum(r["sock_" + k] for k in ("connect", "read", "write", "timeout"))
    problems = []
    if r["rps"] is None or r["p99_ms"] is None:
        problems.append("wrk output not understood")
    if r["non2xx"]:
        problems.append("%d non-2xx" % r["non2xx"])
    if r["socket_errors"]:
        problems.append("socket errors " + ",".join(
            "%s %d" % (k, r["sock_" + k]) for k in ("connect", "read", "write", "timeout")
            if r["sock_" + k]))
    r["flagged"] = bool(problems)
    r["problems"] = "; ".join(problems)
    return r


def fmt(v, nd=2):
    if v is None:
        return "-"
    if isinstance(v, float) and abs(v) >= 1000:
        return "%.0f" % v
    return ("%%.%df" % nd) % v


def cmd_row(a):
    with open(a.wrk) as f:
        r = parse_wrk(f.read())
    row = {"part": a.part, "target": a.target, "round": a.round, "conc": a.conc,
           "duration_s": a.duration, "load1": a.load}
    for kv in a.set or []:
        k, _, v = kv.partition("=")
        row[k] = int(v) if re.fullmatch(r"-?\d+", v) else v
    row.update(r)
    row["minflt"] = None
    row["faults_per_req"] = None
    if a.flt:
        d = a.flt[1] - a.flt[0]
        row["minflt"] = d
        row["faults_per_req"] = round(d / r["requests"], 4) if r["requests"] else None
    with open(a.out, "a") as f:
        f.write(json.dumps(row) + "\n")
    extra = "".join(" %s %s" % (k, row[k]) for k in ("items", "hist") if k in row)
    print("%-7s r%-2s %-12s c%-3d%s  %9s req/s  p50 %7s ms  p99 %8s ms  load1 %5s  faults/req %7s  %s"
          % (a.part, a.round, a.target, a.conc, extra, fmt(r["rps"], 1), fmt(r["p50_ms"], 3),
             fmt(r["p99_ms"], 3), a.load, fmt(row["faults_per_req"], 4),
             "ERRORS: " + r["problems"] if r["flagged"] else "ok"))
    sys.stdout.flush()


def load(path, part):
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            rows = [json.loads(line) for line in f if line.strip()]
    return [r for r in rows if r.get("part") == part]


def median(rows, key):
    vals = [r[key] for r in rows if r.get(key) is not None]
    return statistics.median(vals) if vals else None


def medians(rows):
    return {"runs": len(rows), "rps": median(rows, "rps"), "p50_ms": median(rows, "p50_ms"),
            "p99_ms": median(rows, "p99_ms"), "faults_per_req": median(rows, "faults_per_req"),
            "load1": median(rows, "load1"), "flagged": sum(1 for r in rows if r["flagged"]),
            "non2xx": sum(r["non2xx"] for r in rows),
            "socket_errors": sum(r["socket_errors"] for r in rows)}


def ratio(x, y):
    return x / y if x is not None and y else None


def write_tsv(rows, path):
    keys = []
    for r in rows:
        keys += [k for k in r if k not in keys]
    with open(path, "w") as f:
        f.write("\t".join(keys) + "\n")
        for r in rows:
            f.write("\t".join("" if r.get(k) is None else str(r.get(k)) for k in keys) + "\n")


def cmd_main(a):
    rows = load(a.runs, "main")
    med = {t: medians([r for r in rows if r["target"] == t]) for t, _ in MAIN_TARGETS}
    lines = ["| target | runs | req/s | p50 ms | p99 ms | faults/req | load1 | flagged runs |",
             "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for t, label in MAIN_TARGETS:
        m = med[t]
        if not m["runs"]:
            continue
        lines.append("| %s | %d | %s | %s | %s | %s | %s | %s |" % (
            label, m["runs"], fmt(m["rps"], 1), fmt(m["p50_ms"], 3), fmt(m["p99_ms"], 3),
            fmt(m["faults_per_req"], 4) if t in HYPERREC + ("seq-cold-rec",) else "-",
            fmt(m["load1"]),
            m["flagged"] or "0"))
    rps = {t: med[t]["rps"] for t in med}
    ratios = {
        "seq_over_pyref": ratio(rps["seq-rec"], rps["pyref-rec"]),
        "seq_over_nginx": ratio(rps["seq-rec"], rps["nginx"]),
        "ials_over_nginx": ratio(rps["ials-rec"], rps["nginx"]),
        "ials_over_pyref": ratio(rps["ials-rec"], rps["pyref-rec"]),
        "event_over_pyref_event": ratio(rps["hr-event"], rps["pyref-event"]),
        "seq_p99_ms": med["seq-rec"]["p99_ms"],
        "ials_p99_ms": med["ials-rec"]["p99_ms"],
    }
    lines += ["", "| ratio (medians of this run) | value |", "| --- | ---: |"]
    for k, label in (("seq_over_pyref", "seq / pyref /recommend req/s"),
                     ("seq_over_nginx", "seq / nginx req/s"),
                     ("ials_over_nginx", "iALS / nginx req/s"),
                     ("ials_over_pyref", "iALS / pyref /recommend req/s"),
                     ("event_over_pyref_event", "hyperrec /event / pyref /event req/s"),
                     ("seq_p99_ms", "seq p99 ms"), ("ials_p99_ms", "iALS p99 ms")):
        lines.append("| %s | %s |" % (label, fmt(ratios[k], 3)))

    def pct(v):
        return "-" if v is None else "%.1f%%" % (100 * v)

    def times(v):
        return "-" if v is None else "%.2fx" % v

    def msf(v):
        return "-" if v is None else "%.3f ms" % v

    checks = [
        ("seq /recommend >= 10x pyref /recommend req/s", ratios["seq_over_pyref"], 10.0, ">=", times),
        ("seq /recommend >= 20% of nginx req/s", ratios["seq_over_nginx"], 0.20, ">=", pct),
        ("seq /recommend p99 <= 10 ms", ratios["seq_p99_ms"], 10.0, "<=", msf),
        ("iALS /recommend >= 30% of nginx req/s", ratios["ials_over_nginx"], 0.30, ">=", pct),
        ("iALS /recommend p99 <= 5 ms", ratios["ials_p99_ms"], 5.0, "<=", msf),
        ("hyperrec /event >= 5x pyref /event req/s", ratios["event_over_pyref_event"], 5.0, ">=",
         times),
    ]
    for t in HYPERREC:
        checks.append(("%s minor page faults per request < %g" % (t, FAULTS_MAX),
                       med[t]["faults_per_req"], FAULTS_MAX, "<", lambda v: fmt(v, 4)))
    flagged = sum(m["flagged"] for m in med.values())
    acceptance = []
    lines.append("")
    for text, val, thr, op, f in checks:
        ok = val is not None and {">=": val >= thr, "<=": val <= thr, "<": val < thr}[op]
        acceptance.append({"target": text, "measured": None if val is None else round(val, 4),
                           "ok": ok})
        lines.append("target: %-52s measured: %-10s %s" % (text, f(val), "ok" if ok else "MISSED"))
    lines.append("check:  %-52s measured: %-10s %s" % (
        "no run with non-2xx answers or socket errors", flagged, "ok" if not flagged else
        "FLAGGED (see the ERRORS lines above)"))
    dup_ok = a.duplicates == "0"
    lines.append("check:  %-52s measured: %-10s %s" % (
        "no hyperrec /event counted as a duplicate", a.duplicates, "ok" if dup_ok else "FLAGGED"))
    recall = None
    if a.recall and os.path.exists(a.recall):
        with open(a.recall) as f:
            txt = [x for x in f.read().splitlines() if x.strip().startswith("{")]
        recall = json.loads(txt[-1]) if txt else None
    lines.append("recall: " + (json.dumps(recall) if recall else
                               "(hyperrec-bench recall not available)"))
    summary = {"bench": "e2e-summary", **json.loads(a.meta or "{}"),
               "medians": {t: {k: (round(v, 4) if isinstance(v, float) else v)
                               for k, v in med[t].items()} for t in med},
               **{k: (None if v is None else round(v, 4)) for k, v in ratios.items()},
               "acceptance": acceptance, "flagged_runs": flagged,
               "event_duplicates": int(a.duplicates) if a.duplicates.isdigit() else None,
               "recall": recall}
    line = json.dumps(summary)
    print("\n".join(lines))
    print(line)
    os.makedirs(a.results, exist_ok=True)
    with open(os.path.join(a.results, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    with open(os.path.join(a.results, "summary.json"), "w") as f:
        f.write(line + "\n")
    with open(os.path.join(a.results, "history.jsonl"), "a") as f:
        f.write(line + "\n")
    write_tsv(rows, os.path.join(a.results, "runs.tsv"))


def cmd_scaling(a):
    rows = load(a.runs, "scaling")
    points = []
    for r in rows:
        p = (r["axis"], r["items"], r["hist"])
        if p not in points:
            points.append(p)
    concs = sorted({r["conc"] for r in rows})
    head = ["axis", "items", "hist"]
    for c in concs:
        head += ["c%d_%s" % (c, k) for k in ("rps", "p50_ms", "p99_ms", "faults_per_req", "runs",
                                             "flagged")]
    out = ["\t".join(head)]
    md = ["| axis | items | history | " + " | ".join(
        "c%d req/s | c%d p50 ms | c%d p99 ms" % (c, c, c) for c in concs) + " | flagged |",
          "| --- | ---: | ---: | " + " | ".join("---: | ---: | ---:" for _ in concs) + " | ---: |"]
    for axis, items, hist in sorted(points, key=lambda p: (p[0] != "items", p[1], p[2])):
        cells, mcells, flagged = [axis, str(items), str(hist)], [], 0
        for c in concs:
            m = medians([r for r in rows if (r["axis"], r["items"], r["hist"], r["conc"]) ==
                         (axis, items, hist, c)])
            flagged += m["flagged"]
            cells += ["NaN" if m[k] is None else "%.4f" % m[k]
                      for k in ("rps", "p50_ms", "p99_ms", "faults_per_req")]
            cells += [str(m["runs"]), str(m["flagged"])]
            mcells.append("%s | %s | %s" % (fmt(m["rps"], 1), fmt(m["p50_ms"], 3),
                                            fmt(m["p99_ms"], 3)))
        out.append("\t".join(cells))
        md.append("| %s | %s | %s | %s | %s |" % (axis, items, hist, " | ".join(mcells), flagged))
    os.makedirs(a.results, exist_ok=True)
    with open(os.path.join(a.results, "scaling.tsv"), "w") as f:
        f.write("\n".join(out) + "\n")
    with open(os.path.join(a.results, "scaling.md"), "w") as f:
        f.write("\n".join(md) + "\n")
    write_tsv(rows, os.path.join(a.results, "scaling_runs.tsv"))
    print("\n".join(md))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("row")
    p.add_argument("--wrk", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--part", required=True)
    p.add_argument("--target", required=True)
    p.add_argument("--round", type=int, required=True)
    p.add_argument("--conc", type=int, required=True)
    p.add_argument("--duration", type=float, required=True)
    p.add_argument("--load", type=float, required=True)
    p.add_argument("--flt", type=int, nargs=2)
    p.add_argument("--set", action="append", help="KEY=VALUE added to the row")
    p = sub.add_parser("main")
    p.add_argument("--runs", required=True)
    p.add_argument("--results", required=True)
    p.add_argument("--recall")
    p.add_argument("--meta")
    p.add_argument("--duplicates", default="unknown",
                   help="hyperrec_events_total{result=duplicate} after the rounds")
    p = sub.add_parser("scaling")
    p.add_argument("--runs", required=True)
    p.add_argument("--results", required=True)
    a = ap.parse_args()
    {"row": cmd_row, "main": cmd_main, "scaling": cmd_scaling}[a.cmd](a)


if __name__ == "__main__":
    main()
