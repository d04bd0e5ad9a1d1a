#!/usr/bin/env bash
# Runs etcd's own `benchmark` tool against a three-member Concord cluster
# and a three-member etcd cluster side by side on this machine, and prints
# a markdown table: the median of ROUNDS runs for each, and their ratio
# (Concord / etcd; above 1 is faster for req/s).
#
#   bench/cluster.sh [workload ...]    (default: every workload below)
#   ROUNDS=5 TOTAL=30000 bench/cluster.sh put-100
#
# Both clusters run at once (an idle cluster costs a few percent of a core)
# and each round runs the workload against Concord, then etcd, so that
# drift in the machine's speed hits both alike.
# Needs bin/concord (make build), bin/etcd, bin/etcdctl and bin/benchmark
# (make tools); lease grants are measured by bench/leasegrant. Members run
# on 127.0.0.1 with data in a temp dir; all are stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BENCH=$ROOT/bin/benchmark
WORK=$(mktemp -d /tmp/concord-bench.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; sleep 0.5; rm -rf "$WORK"; }
trap cleanup EXIT

TOTAL=${TOTAL:-20000}
ROUNDS=${ROUNDS:-3}
# name|benchmark arguments (endpoints are added)
WORKLOADS=(
  "put-1|--conns=1 --clients=1 put --key-size=8 --val-size=256 --total=$((TOTAL / 20))"
  "put-100|--conns=10 --clients=100 put --key-size=8 --val-size=256 --total=$TOTAL"
  "range-l-100|--conns=10 --clients=100 range foo --consistency=l --total=$TOTAL"
  "range-s-100|--conns=10 --clients=100 range foo --consistency=s --total=$TOTAL"
  "txn-put-100|--conns=10 --clients=100 txn-put --key-size=8 --val-size=256 --total=$TOTAL"
  "lease-keepalive-100|--conns=10 --clients=100 lease-keepalive --total=$TOTAL"
  "lease-grant-100|leasegrant --conns=10 --clients=100 --total=$TOTAL"
)
if (($#)); then
  sel=()
  for w in "${WORKLOADS[@]}"; do for a in "$@"; do [[ ${w%%|*} == "$a" ]] && sel+=("$w"); done; done
  WORKLOADS=("${sel[@]}")
fi

declare -A EPS MEMBERS
start_cluster() { # kind base-port
  local kind=$1 base=$2 bin cluster="" i eps=""
  case $kind in concord) bin="$ROOT/bin/concord agent" ;; etcd) bin="$ROOT/bin/etcd" ;; esac
  for i in 0 1 2; do cluster+="m$i=http://127.0.0.1:$((base + 1 + 10 * i)),"; done
  cluster=${cluster%,}
  MEMBERS[$kind]=""
  for i in 0 1 2; do
    local c=http://127.0.0.1:$((base + 10 * i)) p=http://127.0.0.1:$((base + 1 + 10 * i))
    $bin --name m$i --data-dir "$WORK/$kind-m$i" --listen-client-urls $c --advertise-client-urls $c \
      --listen-peer-urls $p --initial-advertise-peer-urls $p --initial-cluster "$cluster" \
      --initial-cluster-token bench --initial-cluster-state new >"$WORK/$kind-m$i.log" 2>&1 &
    PIDS+=($!); MEMBERS[$kind]+="$! "
    eps+="127.0.0.1:$((base + 10 * i)),"
  done
  EPS[$kind]=${eps%,}
  for _ in $(seq 100); do "$ROOT/bin/etcdctl" --endpoints="${EPS[$kind]}" endpoint health >/dev/null 2>&1 && return 0; sleep 0.2; done
  echo "cluster $kind did not become healthy" >&2; exit 1
}
peak_rss_mb() { # largest member's peak RSS in MiB
  local max=0 p kb
  for p in ${MEMBERS[$1]}; do kb=$(awk '/VmHWM/{print $2}' /proc/$p/status 2>/dev/null || echo 0); ((kb > max)) && max=$kb; done
  echo "$((max / 1024))"
}
run_one() { # kind args -> "reqs/s p99ms"
  local out rps p99 tool=$BENCH args=$2
  # etcd's tool has no grant workload: bench/leasegrant measures it alike.
  if [[ $args == leasegrant* ]]; then tool=$WORK/leasegrant; args=${args#leasegrant}; fi
  out=$($tool --endpoints="${EPS[$1]}" $args 2>&1)
  rps=$(echo "$out" | awk '/Requests\/sec:/{print $2}')
  p99=$(echo "$out" | awk '/99% in/{print $3}')
  echo "$rps $(awk -v s="$p99" 'BEGIN{printf "%.1f", s*1000}')"
}
median() { sort -g | awk '{a[NR]=$1} END{print a[int((NR+1)/2)]}'; }

go build -o "$WORK/leasegrant" ./bench/leasegrant
start_cluster concord 23379
start_cluster etcd 25379
for kind in concord etcd; do "$ROOT/bin/etcdctl" --endpoints="${EPS[$kind]}" put foo bar >/dev/null; done
declare -A RPS P99
for round in $(seq "$ROUNDS"); do
  for w in "${WORKLOADS[@]}"; do
    name=${w%%|*}; args=${w#*|}
    for kind in concord etcd; do
      read -r r p <<<"$(run_one $kind "$args")"
      RPS[$kind,$name]+="$r "; P99[$kind,$name]+="$p "
    done
  done
done

echo "| workload | Concord req/s | etcd req/s | ratio | Concord p99 ms | etcd p99 ms |"
echo "|---|---|---|---|---|---|"
for w in "${WORKLOADS[@]}"; do
  name=${w%%|*}
  cr=$(tr ' ' '\n' <<<"${RPS[concord,$name]}" | grep . | median)
  er=$(tr ' ' '\n' <<<"${RPS[etcd,$name]}" | grep . | median)
  cp=$(tr ' ' '\n' <<<"${P99[concord,$name]}" | grep . | median)
  ep=$(tr ' ' '\n' <<<"${P99[etcd,$name]}" | grep . | median)
  ratio=$(awk -v a="$cr" -v b="$er" 'BEGIN{ if (b>0) printf "%.2f", a/b; else print "-"}')
  printf "| %s | %.0f | %.0f | %s | %s | %s |\n" "$name" "$cr" "$er" "$ratio" "$cp" "$ep"
done
echo
echo "Medians of $ROUNDS rounds. Peak RSS of the largest member: Concord $(peak_rss_mb concord) MiB, etcd $(peak_rss_mb etcd) MiB"
