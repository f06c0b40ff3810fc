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
# GATEHOUSE_BENCH_BASELINE=<git revision> also builds that revision (in
# target/bench-baseline) and runs its server beside this one, alternating
# runs, so "this build's decide vs. that build's decide" is measured in the
# same run. Issue #3 compares with e1c1eaf, the core service before the log.
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
source bench/lib.sh

bench_backend() { # name "storage args" "baseline storage args"
    local name=$1
    local -a storage base_storage
    read -r -a storage <<< "$2"
    read -r -a base_storage <<< "$3"
    local pid url key base_pid="" base_url="" base_key=""
    local sink_before=0
    [ -z "$SINK_URL" ] || sink_before=$(curl -sf "$SINK_URL/count")
    read -r pid url key < <(start_server "$BIN" current "${storage[@]}")
    if [ -n "$BASE_BIN" ]; then
        read -r base_pid base_url base_key < <(start_server "$BASE_BIN" baseline "${base_storage[@]}")
    fi
    for c in 1 64; do
        : > "$work/noop.runs"; : > "$work/decide.runs"; : > "$work/base.runs"
        for _ in $(seq "$RUNS"); do
            GATEHOUSE_BENCH_KEY=$key measure_once noop.lua "$url/api/whoami" "$c" >> "$work/noop.runs"
            GATEHOUSE_BENCH_KEY=$key measure_once decide.lua "$url/api/decide" "$c" >> "$work/decide.runs"
            if [ -n "$BASE_BIN" ]; then
                GATEHOUSE_BENCH_KEY=$base_key measure_once decide.lua "$base_url/api/decide" "$c" >> "$work/base.runs"
            fi
        done
        read -r noop_rps noop_p50 noop_p99 < <(median "$work/noop.runs")
        read -r dec_rps dec_p50 dec_p99 < <(median "$work/decide.runs")
        local ratio base="" vs=""
        ratio=$(awk -v a="$dec_rps" -v b="$noop_rps" 'BEGIN { printf "%.2f", a / b }')
        if [ -n "$BASE_BIN" ]; then
            read -r base_rps base_p50 base_p99 < <(median "$work/base.runs")
            base=" $base_rps | $base_p99 |"
            vs=" $(awk -v a="$dec_rps" -v b="$base_rps" 'BEGIN { printf "%.2f", a / b }') |"
        fi
        printf "| %s | %s | %s | %s | %s | %s | %s | %s | %s |%s%s\n" \
            "$name" "$c" "$dec_rps" "$dec_p50" "$dec_p99" "$noop_rps" "$noop_p50" "$noop_p99" "$ratio" "$base" "$vs"
    done
    deliveries_report "$name" "$sink_before"
    local rss
    rss=$(awk '/VmHWM/ { printf "%.0f", $2 / 1024 }' "/proc/$pid/status")
    echo "| $name | peak RSS of the server: ${rss} MB | | | | | | | |"
    kill "$pid" $base_pid; wait "$pid" $base_pid 2>/dev/null || true
}

echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); wrk on the same machine; median of ${RUNS} runs of ${DURATION} s."
[ -z "$BASELINE" ] || echo "Baseline: $BASELINE ($(git log -1 --format=%s "$BASELINE" 2>/dev/null || echo "$GATEHOUSE_BENCH_BASELINE_BIN")), run beside this build ($(git rev-parse --short HEAD)${GATEHOUSE_BENCH_CONFIG:+, with --config $GATEHOUSE_BENCH_CONFIG})."
echo
if [ -n "$BASE_BIN" ]; then
    echo "| store | conns | decide req/s | decide p50 ms | decide p99 ms | no-op req/s | no-op p50 ms | no-op p99 ms | decide / no-op | baseline decide req/s | baseline p99 ms | decide / baseline |"
    echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
else
    echo "| store | conns | decide req/s | decide p50 ms | decide p99 ms | no-op req/s | no-op p50 ms | no-op p99 ms | decide / no-op |"
    echo "|---|---|---|---|---|---|---|---|---|"
fi
if [[ " $STORES " == *" sqlite "* ]]; then
    bench_backend sqlite "--data $work/sqlite" "--data $work/sqlite-baseline"
fi
[[ " $STORES " == *" postgres "* ]] || exit 0
postgres_backend bench_backend
