#!/usr/bin/env bash
# Queue storage benchmark: the same workload against Nimbus and Azurite (disk and
# in-memory persistence), one after the other, on 127.0.0.1 only.
#
#   bench/queue/run.sh [--duration S] [--warmup S] [--runs N] [--threads T]
#                      [--servers nimbus,azurite-disk,azurite-mem[,nimbus-mem]] [--idle PCT]
#                      [--idle-wait S] [--no-build] [--keep]
#
# Workloads (1 KiB messages, keep-alive HTTP/1.1, account SAS on every URL):
#   put       POST /{acct}/{q}/messages                                  at 1 and 32 connections
#   getdel    GET  messages?numofmessages=1 then DELETE with the receipt  at 1 and 32 connections;
#             the queue is pre-filled with enough messages for the whole run
#             (2 x that server's best put rate x (warm-up + duration)).
#   getdel-1k get+delete at a bounded depth, the same on every server, because
#             Azurite's get cost grows with queue depth: repeat "put 1000 (not
#             measured), get+delete those 1000 (measured)" until the measured
#             drains add up to the duration; the first cycle is warm-up.
# Every workload runs on a freshly started server with an empty data directory.
# Also measured: start-up (exec -> first accepted TCP connect on the queue port),
# idle RSS (VmRSS 1 s after start), loaded RSS (max VmRSS sampled every 100 ms under
# load) and VmHWM after the workload.  With --runs N every number in the summary is the
# median of N runs.  Raw results go to $OUT (printed at the end).  The machine
# may be shared: before each workload the script waits (up to S s, default 120) until at
# least PCT% (default 80, 0 = don't wait) of the CPU is idle, and reports the CPU
# other processes used during each workload ("nbr cpu%").
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
LOADGEN="$HERE/loadgen"
NIMBUS="$REPO/build/nimbus"
KEY='Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=='
ACCOUNT=devstoreaccount1

DURATION=10
WARMUP=2
RUNS=1
THREADS=1
SERVERS="nimbus,azurite-disk,azurite-mem"
BUILD=1
KEEP=0
SMALL=1000
IDLE_PCT=80   # before each workload wait (up to IDLE_WAIT s) for this much idle CPU
IDLE_WAIT=120

usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --warmup)   WARMUP="$2"; shift 2 ;;
    --runs)     RUNS="$2"; shift 2 ;;
    --threads)  THREADS="$2"; shift 2 ;;
    --servers)  SERVERS="$2"; shift 2 ;;
    --idle)     IDLE_PCT="$2"; shift 2 ;;
    --idle-wait) IDLE_WAIT="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --keep)     KEEP=1; shift ;;
    -h|--help)  usage 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage ;;
  esac
done

WORK="$(mktemp -d /tmp/nimbus-qbench.XXXXXX)"
OUT="$WORK/results.txt"
: >"$OUT"
PIDS=()

cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] || continue
    kill -TERM -- "-$p" 2>/dev/null || kill -TERM "$p" 2>/dev/null || true
  done
  for p in "${PIDS[@]:-}"; do
    [ -n "$p" ] || continue
    for _ in $(seq 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL -- "-$p" 2>/dev/null || kill -KILL "$p" 2>/dev/null || true
  done
  PIDS=()
  if [ "$KEEP" = 0 ]; then
    # keep the results file, drop the servers' data
    find "$WORK" -mindepth 1 -maxdepth 1 ! -name results.txt ! -name nimbus -exec rm -rf {} + 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }

free_port() {
  /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}

# kv KEY "k=v k2=v2 ..." -> value
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }

# ---------- build ----------
if [ "$BUILD" = 1 ]; then
  make -s -C "$HERE" loadgen >&2
  case ",$SERVERS," in
    *,nimbus,*|*,nimbus-mem,*) make -s -C "$REPO" build/nimbus >&2 ;;
  esac
fi
[ -x "$LOADGEN" ] || { log "loadgen not built"; exit 1; }
case ",$SERVERS," in
  *,nimbus,*|*,nimbus-mem,*)
    # Benchmark a private copy: other people may rebuild build/nimbus meanwhile.
    [ -x "$NIMBUS" ] || { log "$NIMBUS not built"; exit 1; }
    cp "$NIMBUS" "$WORK/nimbus"; NIMBUS="$WORK/nimbus" ;;
esac
SAS="$("$LOADGEN" sas --key "$KEY" --account "$ACCOUNT")"

# ---------- one server ----------
# start_server NAME DIR PORTVAR -> sets SRV_PID, SRV_PORT, SRV_STARTUP_MS
start_server() {
  local name="$1" dir="$2" qport out
  qport="$(free_port)"
  mkdir -p "$dir"
  case "$name" in
    nimbus|nimbus-mem)
      # Durable acknowledged writes are Nimbus' default; nimbus-mem (optional) adds --in-memory.
      local hport app help extra=()
      hport="$(free_port)"
      app="$dir/app"; mkdir -p "$app" "$dir/data"
      printf '{ "version": "2.0" }\n' >"$app/host.json"
      help="$("$NIMBUS" start --help 2>&1 || true)"
      case "$help" in *--quiet*) extra+=(--quiet) ;; esac
      case "$help" in *--table-port*) extra+=(--table-port "$(free_port)") ;; esac
      if [ "$name" = nimbus-mem ]; then extra+=(--in-memory); else extra+=(--data "$dir/data"); fi
      out="$(cd "$dir" && "$LOADGEN" startwait --port "$qport" --pidfile "$dir/pid" --log "$dir/server.log" -- \
        "$NIMBUS" start "$app" --port "$hport" --queue-port "$qport" "${extra[@]}")" || true ;;
    azurite-disk)
      mkdir -p "$dir/data"
      out="$(cd "$dir" && "$LOADGEN" startwait --port "$qport" --pidfile "$dir/pid" --log "$dir/server.log" -- \
        azurite-queue --location "$dir/data" --queueHost 127.0.0.1 --queuePort "$qport" \
        --disableTelemetry --silent --skipApiVersionCheck)" ;;
    azurite-mem)
      # Azurite refuses --location together with --inMemoryPersistence; cwd is the temp dir.
      out="$(cd "$dir" && "$LOADGEN" startwait --port "$qport" --pidfile "$dir/pid" --log "$dir/server.log" -- \
        azurite-queue --inMemoryPersistence --queueHost 127.0.0.1 --queuePort "$qport" \
        --disableTelemetry --silent --skipApiVersionCheck)" || true ;;
  esac
  if [ -z "${out:-}" ] || [ -z "$(kv startup_ms "$out")" ]; then
    [ -f "$dir/pid" ] && PIDS+=("$(cat "$dir/pid")")
    log "$name failed to start; log:"; tail -20 "$dir/server.log" >&2 || true
    return 1
  fi
  SRV_PID="$(kv pid "$out")"
  PIDS+=("$SRV_PID")
  SRV_PORT="$qport"
  SRV_STARTUP_MS="$(kv startup_ms "$out")"
}

stop_server() {
  local pid="$1"
  kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.05; done
  kill -KILL -- "-$pid" 2>/dev/null || true
  local keep=() p
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  PIDS=("${keep[@]:-}")
}

# Percent of all CPUs idle over the next second.
idle_pct() {
  local a b
  read -r -a a </proc/stat; sleep 1; read -r -a b </proc/stat
  awk -v i0="$((a[4] + a[5]))" -v i1="$((b[4] + b[5]))" \
      -v t0="$((a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7] + a[8]))" \
      -v t1="$((b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + b[7] + b[8]))" \
      'BEGIN { printf "%d", (t1 > t0) ? 100 * (i1 - i0) / (t1 - t0) : 100 }'
}

# This machine is shared: wait until the neighbours are quiet (or give up).
wait_idle() {
  [ "$IDLE_PCT" -gt 0 ] || return 0
  local waited=0 idle
  while :; do
    idle="$(idle_pct)"
    [ "$idle" -ge "$IDLE_PCT" ] && break
    [ "$waited" -ge "$IDLE_WAIT" ] && { log "   machine still busy (idle ${idle}%), going on"; break; }
    [ "$waited" = 0 ] && log "   waiting for the machine to be idle (now ${idle}%)..."
    waited=$((waited + 1))
  done
  IDLE_NOW="$idle"
}

rss() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status" 2>/dev/null || echo -1; }

record() { printf 'run=%s server=%s %s\n' "$RUN" "$1" "$2" >>"$OUT"; }

# One workload on a freshly started server with its own empty data directory:
# start (timed), idle RSS, create the queue, pre-fill, run, record, stop. A fresh
# server per workload keeps workloads from disturbing each other (Azurite takes
# minutes to delete a queue holding 20k messages, and its get slows down with
# every message stored in any queue).
workload() { # server workload prefill-count loadgen-args...
  local name="$1" wl="$2" pre="$3"; shift 3
  local dir="$WORK/run$RUN-$name-$wl" base lg res idle hwm
  if ! start_server "$name" "$dir"; then
    record "$name" "workload=$wl failed=start"
    return 0
  fi
  sleep 1
  idle="$(rss "$SRV_PID" VmRSS)"
  base="http://127.0.0.1:$SRV_PORT/$ACCOUNT"
  lg=(--base "$base" --sas "$SAS" --threads "$THREADS" --queue benchq)
  "$LOADGEN" create "${lg[@]}" >/dev/null || log "   create queue failed on $name"
  if [ -n "$pre" ]; then
    "$LOADGEN" run "${lg[@]}" --mode put --conns 32 --total "$pre" >/dev/null || true
    log "   prefill: $("$LOADGEN" count "${lg[@]}" || true)"
  fi
  wait_idle
  res="$("$LOADGEN" run "${lg[@]}" --rss-pid "$SRV_PID" "$@" || true)"
  hwm="$(rss "$SRV_PID" VmHWM)"
  record "$name" "workload=$wl $res startup_ms=$SRV_STARTUP_MS idle_rss_kb=$idle hwm_kb=$hwm idle_before_pct=${IDLE_NOW:-?}${pre:+ prefill=$pre}"
  log "   $wl: ops/s=$(kv ops_s "$res") p50=$(kv req_p50_us "$res")us p99=$(kv req_p99_us "$res")us errors=$(kv errors "$res") empty=$(kv empty "$res") server_cpu=$(kv server_cpu_pct "$res")% others_cpu=$(kv others_cpu_pct "$res")% start-up=${SRV_STARTUP_MS}ms idle_rss=${idle}kB"
  stop_server "$SRV_PID"
  [ "$KEEP" = 1 ] || rm -rf "$dir"
}

bench_server() {
  local name="$1" need c
  log "== run $RUN: $name"
  for c in 1 32; do
    workload "$name" "put$c" "" --mode put --conns "$c" --duration "$DURATION" --warmup "$WARMUP"
  done
  # get+delete must never find the queue empty: pre-fill with twice what the
  # faster put workload could have consumed in the same time.
  need="$(grep "run=$RUN server=$name workload=put" "$OUT" | sed -n 's/.* ops_s=\([0-9.]*\).*/\1/p' |
    awk -v d="$DURATION" -v w="$WARMUP" '{ if ($1 > m) m = $1 } END { printf "%d", 2 * m * (d + w) + 1000 }')"
  for c in 1 32; do
    workload "$name" "getdel$c" "$need" --mode getdel --conns "$c" --duration "$DURATION" --warmup "$WARMUP"
  done
  for c in 1 32; do
    workload "$name" "getdel${c}_1k" "" --mode getdel --conns "$c" --backlog "$SMALL" --duration "$DURATION"
  done
}

log "machine: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
log "nimbus: $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo uncommitted); azurite: $(azurite-queue --version 2>/dev/null || echo '?')"
log "duration ${DURATION}s after ${WARMUP}s warm-up, $RUNS run(s), loadgen threads $THREADS; work dir $WORK"
for RUN in $(seq "$RUNS"); do
  IFS=',' read -r -a list <<<"$SERVERS"
  for s in "${list[@]}"; do bench_server "$s"; done
done

# ---------- summary (medians over runs) ----------
/usr/bin/python3 - "$OUT" "$RUNS" <<'PY'
import sys, statistics, collections
path, runs = sys.argv[1], int(sys.argv[2])
rows = collections.defaultdict(list)   # (server, workload) -> [dict]
for line in open(path):
    d = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    rows[(d["server"], d["workload"])].append(d)
def med(server, wl, key):
    vals = []
    for d in rows.get((server, wl), []):
        try: vals.append(float(d[key]))
        except (KeyError, ValueError): pass
    return statistics.median(vals) if vals else None
servers = [s for s in ("nimbus", "nimbus-mem", "azurite-disk", "azurite-mem") if any(k[0] == s for k in rows)]
wls = [("put1", "put, 1 conn"), ("put32", "put, 32 conns"), ("getdel1", "get+delete, 1 conn"),
       ("getdel32", "get+delete, 32 conns"), ("getdel1_1k", "get+delete 1k backlog, 1 conn"),
       ("getdel32_1k", "get+delete 1k backlog, 32 conns")]
def f(v, fmt="{:.0f}"): return "-" if v is None else fmt.format(v)
def ms(us): return "-" if us is None else "{:.3f}".format(us / 1000)
def rate(v): return "-" if v is None else ("{:.0f}".format(v) if v >= 100 else "{:.2g}".format(v))
print(f"\nQueue benchmark ({'median of %d runs' % runs if runs > 1 else '1 run'}); latency is per HTTP request; "
      "get+delete ops/s counts completed pairs;\nsrv cpu% = server CPU, nbr cpu% = CPU used by other processes on the machine "
      "(100 = one core)")
hdr = f"{'workload':34} {'server':13} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'empty':>6} {'srv cpu%':>8} {'nbr cpu%':>8}"
ratio_to = [s for s in servers if s.startswith("azurite")] if "nimbus" in servers else []
for s in ratio_to: hdr += f" {'x ' + s:>16}"
print(hdr); print("-" * len(hdr))
for wl, label in wls:
    for s in servers:
        if (s, wl) not in rows: continue
        ops = med(s, wl, "ops_s")
        line = (f"{label:34} {s:13} {rate(ops):>9} {ms(med(s, wl, 'req_p50_us')):>8} {ms(med(s, wl, 'req_p99_us')):>8} "
                f"{f(med(s, wl, 'errors')):>7} {f(med(s, wl, 'empty')):>6} {f(med(s, wl, 'server_cpu_pct')):>8} {f(med(s, wl, 'others_cpu_pct')):>8}")
        if s == "nimbus":
            for o in ratio_to:
                oo = med(o, wl, "ops_s")
                r = ops / oo if ops and oo else None
                line += f" {'-' if r is None else ('{:.0f}x'.format(r) if r >= 100 else '{:.1f}x'.format(r)):>16}"
        print(line)
print()
hdr = f"{'server':13} {'start-up ms':>11} {'idle RSS MB':>11} {'loaded RSS MB':>13} {'VmHWM MB':>9}"
print(hdr); print("-" * len(hdr))
for s in servers:
    lines = [d for (srv, wl), ds in rows.items() if srv == s for d in ds]
    def allv(key):
        out = []
        for d in lines:
            try: out.append(float(d[key]))
            except (KeyError, ValueError): pass
        return out
    def per_run_max(key):  # max over the workloads of a run, median over runs
        by = collections.defaultdict(list)
        for d in lines:
            try: by[d["run"]].append(float(d[key]))
            except (KeyError, ValueError): pass
        return statistics.median(max(v) for v in by.values()) / 1024 if by else None
    su, idle = allv("startup_ms"), allv("idle_rss_kb")
    print(f"{s:13} {f(statistics.median(su) if su else None, '{:.1f}'):>11} "
          f"{f(statistics.median(idle) / 1024 if idle else None, '{:.1f}'):>11} "
          f"{f(per_run_max('server_rss_max_kb'), '{:.1f}'):>13} {f(per_run_max('hwm_kb'), '{:.1f}'):>9}")
print("start-up and idle RSS: median over every server start (one per workload); loaded RSS: highest VmRSS\n"
      "sampled during any workload of a run; VmHWM: highest peak of a run; both medians over runs.")
PY
log "raw results: $OUT"
