#!/usr/bin/env bash
# The reviewer console's queue with a big backlog: fills an SQLite store
# with at least PENDING pending requests (default 10000), signs a reviewer
# in, and times GET /console (the queue's first page, 50 rows, soonest
# deadline first) and GET /console/history. Prints the median and the
# 90th percentile of the server's time (curl's time to first byte on
# loopback) over ROUNDS requests each.
#
#   bench/console.sh [PENDING] [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
PENDING=${1:-10000}
ROUNDS=${2:-50}
DURATION=3
source bench/lib.sh

data="$work/data"
printf '%s\n' "a long enough password" | "$BIN" users create ana --password-stdin --data "$data" >/dev/null
read -r pid url key < <(start_server "$BIN" console --data "$data")
export GATEHOUSE_BENCH_KEY=$key
# Every answered request is a stored pending decision (wrk reports errors).
n=0
while [ "$n" -lt "$PENDING" ]; do
    made=$(wrk -t2 -c32 -d2s -s bench/pending.lua "$url/api/agent/tasks/bench/requests" | awk '/requests in/ { print $1 }')
    n=$((n + made))
done
echo "pending requests: $n"

jar="$work/jar"
csrf=$(curl -s -c "$jar" "$url/console/login" | sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p')
curl -s -b "$jar" -c "$jar" -o /dev/null --data-urlencode "csrf=$csrf" \
    --data-urlencode "username=ana" --data-urlencode "password=a long enough password" "$url/console/login"

time_page() { # path
    for _ in $(seq "$ROUNDS"); do
        curl -s -b "$jar" -o "$work/page.html" -w '%{time_starttransfer}\n' "$url$1"
    done | sort -n | awk '{ v[NR] = $1 * 1000 } END { printf "median %.1f ms, p90 %.1f ms\n", v[int((NR + 1) / 2)], v[int(NR * 0.9)] }'
    grep -q '<tr data-id=\|<td><a href="/console/decisions/' "$work/page.html" || { echo "no rows on $1" >&2; exit 1; }
}
echo "Machine: $(nproc) cores, $(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo); ${ROUNDS} requests each."
echo "GET /console (queue, 50 rows):   $(time_page /console)"
echo "GET /console?sort=age:           $(time_page '/console?sort=age')"
echo "GET /console/history (50 rows):  $(time_page /console/history)"
kill "$pid"
