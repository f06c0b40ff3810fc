#!/usr/bin/env bash
# Reproducible HTTP benchmark: durable POST /api/decide against an
# authenticated no-op on the same server, at 1 and 64 connections, on SQLite
# and PostgreSQL. Prints a Markdown table; copy it into docs/BENCHMARKS.md.
#
#   bench/run.sh [seconds per run, default 10] [runs per figure, default 3] [stores: sqlite postgres]
#
# Each figure is the median of the runs; decide and the no-op alternate on
# the same server so the ratio is measured under the same machine noise.
#
# Needs: wrk (apt-get install wrk), a release build, PostgreSQL at
# $GATEHOUSE_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/test).
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION="${1:-10}"
RUNS="${2:-3}"
STORES="${*:3}"
STORES="${STORES:-sqlite postgres}"
PG_URL="${GATEHOUSE_BENCH_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/test}"
BIN=target/release/gatehouse
command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }
cargo build --release -q -p gatehouse

work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# Runs wrk once and prints "requests/s p50 p99" (latencies in ms).
measure_once() { # script url connections
    local threads=$(( $3 < 2 ? 1 : 2 ))
    wrk -t"$threads" -c"$3" -d"${DURATION}s" --latency -s "bench/$1" "$2" > "$work/wrk.out"
    local errors
    errors=$(grep -E "Non-2xx|Socket errors" "$work/wrk.out" || true)
    [ -z "$errors" ] || { echo "wrk reported errors: $errors" >&2; cat "$work/wrk.out" >&2; exit 1; }
    awk '
      function ms(v) { if (v ~ /us$/) return v / 1000; if (v ~ /ms$/) return v + 0; if (v ~ /s$/) return v * 1000; return v }
      /Requests\/sec/ { rps = $2 }
      $1 == "50%" { p50 = ms($2) }
      $1 == "99%" { p99 = ms($2) }
      END { printf "%.0f %.2f %.2f\n", rps, p50, p99 }' "$work/wrk.out"
}

# Column-wise median of a file of "rps p50 p99" lines.
median() {
    for col in 1 2 3; do
        sort -g -k"$col","$col" "$1" | awk -v c="$col" '{ v[NR] = $c } END { printf "%s ", v[int((NR + 1) / 2)] }'
    done
    echo
}

bench_backend() { # name storage-args...
    local name=$1
    shift
    local storage=("$@")
    local key
    key=$("$BIN" keys create --role agent --name bench "${storage[@]}" | tail -n 1)
    "$BIN" serve --listen 127.0.0.1:0 --rate-limit 0 "${storage[@]}" > "$work/serve.out" 2> "$work/serve.err" &
    local pid=$!
    local url=""
    for _ in $(seq 100); do
        url=$(sed -n 's/^gatehouse listening on //p' "$work/serve.out")
        [ -n "$url" ] && break
        sleep 0.1
    done
    [ -n "$url" ] || { cat "$work/serve.err" >&2; exit 1; }
    export GATEHOUSE_BENCH_KEY=$key
    for c in 1 64; do
        : > "$work/noop.runs"; : > "$work/decide.runs"
        for _ in $(seq "$RUNS"); do
            measure_once noop.lua "$url/api/whoami" "$c" >> "$work/noop.runs"
            measure_once decide.lua "$url/api/decide" "$c" >> "$work/decide.runs"
        done
        read -r noop_rps noop_p50 noop_p99 < <(median "$work/noop.runs")
        read -r dec_rps dec_p50 dec_p99 < <(median "$work/decide.runs")
        local ratio
        ratio=$(awk -v a="$dec_rps" -v b="$noop_rps" 'BEGIN { printf "%.2f", a / b }')
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n" \
            "$name" "$c" "$dec_rps" "$dec_p50" "$dec_p99" "$noop_rps" "$noop_p50" "$noop_p99" "$ratio"
    done
    local rss
    rss=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status")
    echo "| $name | peak RSS of the server: ${rss} MB | | | | | | | |"
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); wrk on the same machine; median of ${RUNS} runs of ${DURATION} s."
echo
echo "| store | conns | decide req/s | decide p50 ms | decide p99 ms | no-op req/s | no-op p50 ms | no-op p99 ms | decide / no-op |"
echo "|---|---|---|---|---|---|---|---|---|"
if [[ " $STORES " == *" sqlite "* ]]; then
    bench_backend sqlite --data "$work/sqlite"
fi
[[ " $STORES " == *" postgres "* ]] || exit 0
schema="gh_bench_$$"
psql "$PG_URL" -qc "DROP SCHEMA IF EXISTS $schema CASCADE; CREATE SCHEMA $schema" >/dev/null 2>&1
sep='?'; [[ "$PG_URL" == *\?* ]] && sep='&'
"$BIN" log keygen > "$work/log.key" 2>/dev/null
"$BIN" log keygen --token > "$work/token.pem" 2>/dev/null
bench_backend postgres --database-url "${PG_URL}${sep}options=-c%20search_path%3D${schema}" \
    --log-key-file "$work/log.key" --token-key-file "$work/token.pem"
psql "$PG_URL" -qc "DROP SCHEMA $schema CASCADE" >/dev/null 2>&1
