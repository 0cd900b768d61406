#!/usr/bin/env bash
# The whole pytest suite, N times, on a machine kept busy: one spinning process (nice 10) per CPU for the
# length of every run. No test may depend on the machine's speed (issue 21); this is how that is checked.
#
#   tests/stress/busy_suite.sh [RUNS] [OUTPUT-FOLDER] [-- PYTEST-ARGUMENTS...]
#
# RUNS defaults to 3, OUTPUT-FOLDER to .localcloud/busy (a log per run, busy-<n>.log, and summary.txt: one
# line per run with its exit status, seconds, commit, load average and failed tests). Pytest arguments
# default to `-n 2 -q tests -p no:cacheprovider`. Run as root, each run has a network namespace of its own
# (unshare -n, loopback up), so tests that listen on fixed ports never meet other work on the machine; such
# a run has no network, so tests that fetch packages (the deploy packaging tests, the README's setup in
# tests/docs) fail there.
# Exit status: 0 when every run passed, 1 otherwise.
set -u
cd "$(dirname "$0")/../.."
runs=${1:-3}
output=${2:-.localcloud/busy}
shift $(( $# < 2 ? $# : 2 ))
[ "${1:-}" = "--" ] && shift
if [ $# -eq 0 ]; then set -- -n 2 -q tests -p no:cacheprovider; fi
case $runs in '' | *[!0-9]*) echo "RUNS must be a number, not '$runs'" >&2; exit 2 ;; esac
python=.venv/bin/python
[ -x "$python" ] || { echo "no $python: run 'python3 dev.py setup' first" >&2; exit 2; }
mkdir -p "$output"
summary=$output/summary.txt
spinners=()
stop_spinners() {
  for pid in "${spinners[@]}"; do kill "$pid" 2>/dev/null; done
  for pid in "${spinners[@]}"; do wait "$pid" 2>/dev/null; done
  spinners=()
}
trap 'stop_spinners; exit 130' INT TERM
failed_runs=0
for n in $(seq 1 "$runs"); do
  for _ in $(seq 1 "$(nproc)"); do
    ( renice -n 10 -p "$BASHPID" >/dev/null; while :; do :; done ) &
    spinners+=($!)
  done
  log=$output/busy-$n.log
  start=$(date +%s)
  if [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null; then
    unshare -n sh -c 'ip link set lo up && exec "$@"' sh "$python" -m pytest "$@" >"$log" 2>&1
  else
    "$python" -m pytest "$@" >"$log" 2>&1
  fi
  rc=$?
  load=$(cut -d' ' -f1-3 /proc/loadavg)
  stop_spinners
  failed=$(grep -E '^(FAILED|ERROR) ' "$log" | cut -d' ' -f2 | tr '\n' ' ')
  echo "run $n rc=$rc seconds=$(( $(date +%s) - start )) commit=$(git rev-parse --short HEAD)" \
    "load=$load failed=[${failed% }]" | tee -a "$summary"
  [ "$rc" -eq 0 ] || failed_runs=$(( failed_runs + 1 ))
done
echo "$(( runs - failed_runs )) of $runs runs passed; logs in $output" | tee -a "$summary"
[ "$failed_runs" -eq 0 ]
