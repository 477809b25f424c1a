#!/usr/bin/env bash
# Runs every fuzz target of the module for FUZZTIME each, one after the
# other, whatever the others do, and prints a table of the outcome and the
# executions of each: time is the whole run, baseline the part spent on
# the corpus before fuzzing, execs/s the executions a second after it. Exits 1 when a target failed. The targets are found
# in the test files (func FuzzXxx), so a new one runs without a change
# here; FUZZ_TARGETS="./pkg:FuzzName ..." runs only those.
#
# A failing input is written to the package's testdata/fuzz/ by go test;
# keep it as a seed once fixed. Each target's output is kept in
# $FUZZLOGS (default: a temporary directory), printed for failed targets.
set -uo pipefail

GO=${GO:-go}
FUZZTIME=${FUZZTIME:-30s}
# Each new interesting input is minimized for this long; the fuzzer runs
# nothing else meanwhile, so a long budget halves the executions.
FUZZMINIMIZETIME=${FUZZMINIMIZETIME:-1s}
# Targets running fewer executions a second than this are marked slow.
FUZZMINRATE=${FUZZMINRATE:-1000}
logs=${FUZZLOGS:-$(mktemp -d)}
mkdir -p "$logs"

targets=${FUZZ_TARGETS:-}
if [ -z "$targets" ]; then
  while IFS=: read -r file _ line; do
    name=$(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' <<<"$line")
    [ -n "$name" ] && targets+=" ./$(dirname "${file#./}"):$name"
  done < <( { git ls-files -z '*_test.go' 2>/dev/null || find . -name '*_test.go' -print0; } | xargs -0 grep -Hn '^func Fuzz' | sort)
fi
if [ -z "${targets// }" ]; then
  echo "fuzz: no fuzz targets found" >&2
  exit 1
fi

# seconds turns a Go duration of the fuzzer's log (1m3s, 45s) into seconds.
seconds() {
  awk -v d="$1" 'BEGIN {
    s = 0
    while (match(d, /^[0-9.]+(h|ms|m|s)/)) {
      n = substr(d, 1, RLENGTH); d = substr(d, RLENGTH + 1)
      if (n ~ /ms$/) s += n / 1000
      else if (n ~ /h$/) s += n * 3600
      else if (n ~ /m$/) s += n * 60
      else s += n
    }
    print s
  }'
}

rows=()
failed=0
for t in $targets; do
  pkg=${t%%:*} fn=${t##*:}
  log="$logs/$(tr '/.' '__' <<<"${pkg#./}")-$fn.log"
  echo "fuzz: $fn in $pkg for $FUZZTIME"
  $GO test -run '^$' -fuzz "^$fn\$" -fuzztime "$FUZZTIME" -fuzzminimizetime "$FUZZMINIMIZETIME" "$pkg" >"$log" 2>&1
  code=$?
  last=$(grep -E '^fuzz: elapsed: .*execs: [0-9]+' "$log" | tail -n 1)
  execs=$(sed -n 's/.*execs: \([0-9]*\).*/\1/p' <<<"$last")
  elapsed=$(seconds "$(sed -n 's/^fuzz: elapsed: \([0-9hms.]*\),.*/\1/p' <<<"$last")")
  # Before fuzzing, the fuzzer runs the seeds and the inputs it kept from
  # earlier runs to learn their coverage; it counts no execution then.
  baseline=$(seconds "$(sed -n 's/^fuzz: elapsed: \([0-9hms.]*\), gathering baseline coverage: .*now fuzzing.*/\1/p' "$log" | head -n 1)")
  rate=0
  if [ -n "$execs" ] && awk -v e="$elapsed" -v b="$baseline" 'BEGIN { exit !(e > b) }'; then
    rate=$(awk -v e="$execs" -v s="$elapsed" -v b="$baseline" 'BEGIN { printf "%d", e / (s - b) }')
  fi
  result=pass
  if [ "$code" != 0 ]; then
    result=FAIL
    failed=$((failed + 1))
    cat "$log"
  elif [ "$rate" -lt "$FUZZMINRATE" ]; then
    result="pass (slow)"
  fi
  rows+=("$(printf '| %-40s | %-11s | %10s | %8s | %8s | %7s |' "$pkg $fn" "$result" "${execs:-0}" "${elapsed:-0}s" "${baseline:-0}s" "$rate")")
done

echo
printf '| %-40s | %-11s | %10s | %8s | %8s | %7s |\n' "target" "result" "execs" "time" "baseline" "execs/s"
printf '|%s|%s|%s|%s|%s|%s|\n' "$(printf -- '-%.0s' {1..42})" "$(printf -- '-%.0s' {1..13})" "$(printf -- '-%.0s' {1..12})" \
  "$(printf -- '-%.0s' {1..10})" "$(printf -- '-%.0s' {1..10})" "$(printf -- '-%.0s' {1..9})"
printf '%s\n' "${rows[@]}"
echo "fuzz: logs in $logs"
if [ "$failed" -gt 0 ]; then
  echo "fuzz: $failed target(s) failed" >&2
  exit 1
fi
