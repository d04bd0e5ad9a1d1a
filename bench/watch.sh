#!/usr/bin/env bash
# Watch fan-out latency with etcd's own `benchmark watch-latency` against a
# three-member cluster of Concord and then of real etcd, on the same
# machine: the time from a put to each watcher receiving its event, for 1,
# 1,000 and 10,000 watchers of the written key. Prints a markdown table with
# both results and their ratio (Concord / etcd; below 1 is faster).
#
#   bench/watch.sh [workload ...]    (default: every workload below)
#
# Needs bin/concord (make build; $CONCORD overrides), bin/etcd, bin/etcdctl and
# bin/benchmark (make tools).
# Members run on 127.0.0.1 (ports from $BASE_PORT, default 24379) with data
# in a temp dir; all are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=$ROOT/bin/benchmark
CONCORD=${CONCORD:-$ROOT/bin/concord}
WORK=$(mktemp -d /tmp/concord-watch-bench.XXXXXX)
BASE_PORT=${BASE_PORT:-24379}
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$WORK"; }
trap cleanup EXIT

# name|benchmark arguments (endpoints are added). Watchers are
# streams × watchers-per-stream; the put rate keeps events/s comparable.
WORKLOADS=(
  "watchers-1|--conns=1 --clients=1 watch-latency --streams=1 --watchers-per-stream=1 --put-total=1000 --put-rate=100"
  "watchers-1000|--conns=10 --clients=10 watch-latency --streams=10 --watchers-per-stream=100 --put-total=200 --put-rate=20"
  "watchers-10000|--conns=10 --clients=10 watch-latency --streams=100 --watchers-per-stream=100 --put-total=50 --put-rate=5"
)
if (($#)); then
  sel=()
  for w in "${WORKLOADS[@]}"; do for a in "$@"; do [[ ${w%%|*} == "$a" ]] && sel+=("$w"); done; done
  WORKLOADS=("${sel[@]}")
fi

declare -a MEMBER_PIDS
start_cluster() { # kind
  local kind=$1 bin cluster="" i
  case $kind in concord) bin="$CONCORD agent" ;; etcd) bin="$ROOT/bin/etcd" ;; esac
  for i in 0 1 2; do cluster+="m$i=http://127.0.0.1:$((BASE_PORT + 1 + 10 * i)),"; done
  cluster=${cluster%,}
  EPS=""
  for i in 0 1 2; do
    local c=http://127.0.0.1:$((BASE_PORT + 10 * i)) p=http://127.0.0.1:$((BASE_PORT + 1 + 10 * i))
    $bin --name m$i --data-dir "$WORK/$kind-m$i" --listen-client-urls $c --advertise-client-urls $c \
      --listen-peer-urls $p --initial-advertise-peer-urls $p --initial-cluster "$cluster" \
      --initial-cluster-token watch-bench --initial-cluster-state new >"$WORK/$kind-m$i.log" 2>&1 &
    PIDS+=($!); MEMBER_PIDS[$i]=$!
    EPS+="127.0.0.1:$((BASE_PORT + 10 * i)),"
  done
  EPS=${EPS%,}
  for _ in $(seq 100); do "$ROOT/bin/etcdctl" --endpoints="$EPS" endpoint health >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "cluster $kind did not become healthy" >&2; exit 1
}
stop_cluster() {
  for i in 0 1 2; do kill "${MEMBER_PIDS[$i]}" 2>/dev/null || true; done
  for i in 0 1 2; do wait "${MEMBER_PIDS[$i]}" 2>/dev/null || true; done
}
run_one() { # kind name args -> "avg_ms p99_ms events/s"
  local out
  out=$($BENCH --endpoints="$EPS" $3 2>&1)
  echo "$out" >"$WORK/$1-$2.out"
  # The second summary is the watch events' (the first is the puts').
  echo "$out" | awk '
    /Watch events summary/ { w = 1 }
    w && /Average:/ { avg = $2 }
    w && /Requests\/sec:/ { rps = $2 }
    w && /99% in/ { p99 = $3 }
    END { printf "%.2f %.2f %.0f\n", avg * 1000, p99 * 1000, rps }'
}

declare -A RES
for kind in concord etcd; do
  start_cluster $kind
  for w in "${WORKLOADS[@]}"; do
    name=${w%%|*}; args=${w#*|}
    RES[$kind,$name]=$(run_one $kind "$name" "$args")
  done
  stop_cluster
done

echo "| workload | Concord avg ms | etcd avg ms | ratio | Concord p99 ms | etcd p99 ms | ratio | Concord events/s | etcd events/s |"
echo "|---|---|---|---|---|---|---|---|---|"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "-"}'; }
for w in "${WORKLOADS[@]}"; do
  name=${w%%|*}
  read -r cavg cp99 crps <<<"${RES[concord,$name]}"
  read -r eavg ep99 erps <<<"${RES[etcd,$name]}"
  echo "| $name | $cavg | $eavg | $(ratio "$cavg" "$eavg") | $cp99 | $ep99 | $(ratio "$cp99" "$ep99") | $crps | $erps |"
done
