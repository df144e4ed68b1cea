# tests/lib/checks.sh -- sourced by the shell test suites (tests/image/,
# tests/replicas/): counted checks and waits on events.
#
#   check NAME CMD...   runs CMD: "ok   NAME" or "FAIL NAME", counted
#   summary             prints "N passed, N failed"; status 0 when none failed
#   wait_for WHAT TENTHS CMD...
#                       polls CMD until it succeeds (an event, not a sleep),
#                       at most TENTHS tenths of a second
#   free_port           a free TCP port on 127.0.0.1
# The caller sets SUITE (its name in messages).
pass=0
fail=0

ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }
check() { local name=$1; shift; if "$@"; then ok "$name"; else bad "$name"; fi; }
summary() { echo "$pass passed, $fail failed"; [ "$fail" = 0 ]; }

wait_for() {
  local what=$1 tenths=$2; shift 2
  for _ in $(seq 1 "$tenths"); do "$@" >/dev/null 2>&1 && return 0; sleep 0.1; done
  echo "${SUITE:-test}: timed out waiting for $what" >&2
  return 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
