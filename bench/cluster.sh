#!/usr/bin/env bash
# Runs one workload set with etcd's own `benchmark` tool against a
# three-member cluster of Concord and then of real etcd, on the same
# machine, and prints a markdown table with both results and their ratio.
#
#   bench/cluster.sh [workload ...]    (default: every workload below)
#
# Needs bin/concord (make build), bin/etcd and bin/benchmark (make tools).
# Members run on 127.0.0.1 with data in a temp dir; all are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=$ROOT/bin/benchmark
WORK=$(mktemp -d /tmp/concord-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$WORK"; }
trap cleanup EXIT

TOTAL=${TOTAL:-20000}
# name|benchmark arguments (endpoints and connection flags are added)
WORKLOADS=(
  "put-1|--conns=1 --clients=1 put --key-size=8 --val-size=256 --total=$((TOTAL / 10))"
  "put-100|--conns=10 --clients=100 put --key-size=8 --val-size=256 --total=$TOTAL"
  "range-l-100|--conns=10 --clients=100 range foo --consistency=l --total=$TOTAL"
  "range-s-100|--conns=10 --clients=100 range foo --consistency=s --total=$TOTAL"
  "txn-put-100|--conns=10 --clients=100 txn-put --key-size=8 --val-size=256 --total=$TOTAL"
)
if (($#)); then
  sel=()
  for w in "${WORKLOADS[@]}"; do for a in "$@"; do [[ ${w%%|*} == "$a" ]] && sel+=("$w"); done; done
  WORKLOADS=("${sel[@]}")
fi

start_cluster() { # kind
  local kind=$1 bin cluster="" i
  case $kind in concord) bin="$ROOT/bin/concord agent" ;; etcd) bin="$ROOT/bin/etcd" ;; esac
  for i in 0 1 2; do cluster+="m$i=http://127.0.0.1:$((23380 + 10 * i)),"; done
  cluster=${cluster%,}
  EPS=""
  for i in 0 1 2; do
    local c=http://127.0.0.1:$((23379 + 10 * i)) p=http://127.0.0.1:$((23380 + 10 * i))
    $bin --name m$i --data-dir "$WORK/$kind-m$i" --listen-client-urls $c --advertise-client-urls $c \
      --listen-peer-urls $p --initial-advertise-peer-urls $p --initial-cluster "$cluster" \
      --initial-cluster-token bench --initial-cluster-state new >"$WORK/$kind-m$i.log" 2>&1 &
    PIDS+=($!); MEMBER_PIDS[$i]=$!
    EPS+="127.0.0.1:$((23379 + 10 * i)),"
  done
  EPS=${EPS%,}
  for _ in $(seq 100); do "$ROOT/bin/etcdctl" --endpoints="$EPS" endpoint health >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "cluster $kind did not become healthy" >&2; exit 1
}
stop_cluster() {
  for i in 0 1 2; do kill "${MEMBER_PIDS[$i]}" 2>/dev/null || true; done
  for i in 0 1 2; do wait "${MEMBER_PIDS[$i]}" 2>/dev/null || true; done
}
rss_mb() { # sum of members' RSS in MiB, and the max
  local tot=0 max=0 i kb
  for i in 0 1 2; do kb=$(awk '/VmHWM/{print $2}' /proc/${MEMBER_PIDS[$i]}/status 2>/dev/null || echo 0); tot=$((tot + kb)); ((kb > max)) && max=$kb; done
  echo "$((max / 1024))"
}
run_one() { # kind name args -> "reqs/s p99ms"
  local out
  out=$($BENCH --endpoints="$EPS" $2 2>&1)
  echo "$out" >"$WORK/$1-$3.out"
  local rps p99
  rps=$(echo "$out" | awk '/Requests\/sec:/{print $2}')
  p99=$(echo "$out" | awk '/99% in/{print $3}')
  echo "$rps $(awk -v s="$p99" 'BEGIN{printf "%.1f", s*1000}')"
}

declare -A RES
declare -a MEMBER_PIDS
for kind in concord etcd; do
  start_cluster $kind
  # range workloads read one key that exists
  "$ROOT/bin/etcdctl" --endpoints="$EPS" put foo bar >/dev/null
  for w in "${WORKLOADS[@]}"; do
    name=${w%%|*}; args=${w#*|}
    RES[$kind,$name]=$(run_one $kind "$args" "$name")
  done
  RES[$kind,rss]=$(rss_mb)
  stop_cluster
done

echo "| workload | Concord req/s | etcd req/s | ratio | Concord p99 ms | etcd p99 ms |"
echo "|---|---|---|---|---|---|"
for w in "${WORKLOADS[@]}"; do
  name=${w%%|*}
  read -r crps cp99 <<<"${RES[concord,$name]}"
  read -r erps ep99 <<<"${RES[etcd,$name]}"
  ratio=$(awk -v a="$crps" -v b="$erps" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "-"}')
  echo "| $name | $crps | $erps | $ratio | $cp99 | $ep99 |"
done
echo
echo "Peak RSS of the largest member: Concord ${RES[concord,rss]} MiB, etcd ${RES[etcd,rss]} MiB"
