#!/usr/bin/env bash
# run.sh BUILD SECONDS RUNS JOBS NAME[:PROCS]... -- run each libFuzzer
# harness from its seed corpus until it has made RUNS executions or SECONDS
# have passed (0: no bound on that side), JOBS processes at a time; a
# harness given as NAME:PROCS runs as PROCS processes that share its corpus
# (libFuzzer reloads the corpus directory every second) and split RUNS.
# Then one line per harness: executions, their rate, coverage (edges),
# corpus size, result. Exits 1 when any harness found a crash, a leak, a
# timeout or a failed expectation (the input is in BUILD/crashes/).
#
# New interesting inputs collect in BUILD/corpus/NAME (kept between runs,
# never in the repository); copy one into tests/fuzz/regress/NAME when it
# showed a defect, so that `make test` replays it from then on.
set -uo pipefail

build=$1 secs=$2 runs=$3 jobs=$4
shift 4
mkdir -p "$build/crashes" "$build/logs"

# One BLAS thread: a harness is one thread, and OpenBLAS's idle workers
# only cost TLB shootdowns at every munmap. Shorter allocation stacks:
# ASan records one per malloc.
export OPENBLAS_NUM_THREADS=1
export ASAN_OPTIONS=${ASAN_OPTIONS:-malloc_context_size=8}

run_one() { # name proc procs
  local name=$1 p=$2 procs=$3 work="$build/corpus/$1"
  local log="$build/logs/$name.$p.log" lim=()
  mkdir -p "$work"
  [ "$secs" != 0 ] && lim+=(-max_total_time="$secs")
  [ "$runs" != 0 ] && lim+=(-runs=$(( (runs + procs - 1) / procs )))
  # The work corpus first: libFuzzer adds what it finds to the first
  # directory only, so the repository's seeds stay as they are.
  "$build/fuzz/$name" "${lim[@]}" -seed=$((p + 1)) -timeout=30 \
    -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$build/crashes/$name-" \
    "$work" "tests/fuzz/corpus/$name" "tests/fuzz/regress/$name" \
    >"$log" 2>&1
  echo $? >"$log.rc"
}

names=()
start=$(date +%s)
running=0
for arg in "$@"; do
  name=${arg%%:*} procs=1
  [ "$arg" != "$name" ] && procs=${arg#*:}
  names+=("$name")
  rm -f "$build/logs/$name".*
  for p in $(seq 0 $((procs - 1))); do
    run_one "$name" "$p" "$procs" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
      wait -n
      running=$((running - 1))
    fi
  done
done
wait

printf '%-8s %12s %10s %8s %8s %s\n' harness executions exec/s cov corpus result
fail=0
for name in "${names[@]}"; do
  execs=0 rate=0 cov=0 result=ok
  for log in "$build/logs/$name".*.log; do
    rc=$(cat "$log.rc" 2>/dev/null || echo 1)
    e=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    r=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    c=$(grep -oE 'cov: [0-9]+' "$log" | tail -n 1 | cut -d' ' -f2)
    execs=$((execs + ${e:-0})) rate=$((rate + ${r:-0}))
    [ "${c:-0}" -gt "$cov" ] && cov=$c
    # (a "slow-unit" artifact is a report, not a finding)
    if [ "$rc" != 0 ] || grep -qE '^==[0-9]+==ERROR|^SUMMARY: |deadly signal|Test unit written to .*-(crash|leak|timeout|oom)-' "$log"; then
      result="FAILED (rc $rc): see $log"
      fail=1
    fi
  done
  corp=$(find "$build/corpus/$name" -type f | wc -l)
  printf '%-8s %12s %10s %8s %8s %s\n' "$name" "$execs" "$rate" "$cov" \
    "$corp" "$result"
done
echo "fuzz: ${#names[@]} harnesses, $(( $(date +%s) - start )) s in all (limits: ${secs} s, ${runs} runs each)"
exit $fail
