#!/usr/bin/env bash
# Queue storage benchmark: the same workload against Nimbus and Azurite (disk and
# in-memory persistence), one after the other, on 127.0.0.1 only.
#
#   bench/queue/run.sh [--duration S] [--warmup S] [--runs N] [--threads T]
#                      [--servers nimbus,azurite-disk,azurite-mem] [--no-build] [--keep]
#
# Workloads (1 KiB messages, keep-alive HTTP/1.1, account SAS on every URL):
#   put       POST /{acct}/{q}/messages                                  at 1 and 32 connections
#   getdel    GET  messages?numofmessages=1 then DELETE with the receipt  at 1 and 32 connections;
#             the queue is pre-filled with enough messages for the whole run
#             (1.25 x that server's put rate at 32 conns x (warm-up + duration)).
#   getdel-1k get+delete draining a fixed 1000-message backlog (same depth on every
#             server), because Azurite's get cost grows with queue depth.
# Also measured: start-up (exec -> first accepted TCP connect on the queue port),
# idle RSS (VmRSS 1 s after start), loaded RSS (max VmRSS sampled every 100 ms under
# load) and VmHWM at the end.  With --runs N every number in the summary is the
# median of N runs.  Raw results go to $OUT (printed at the end).
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

usage() { sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --warmup)   WARMUP="$2"; shift 2 ;;
    --runs)     RUNS="$2"; shift 2 ;;
    --threads)  THREADS="$2"; shift 2 ;;
    --servers)  SERVERS="$2"; shift 2 ;;
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
    find "$WORK" -mindepth 1 -maxdepth 1 ! -name results.txt -exec rm -rf {} + 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

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
    *,nimbus,*) make -s -C "$REPO" build/nimbus >&2 ;;
  esac
fi
[ -x "$LOADGEN" ] || { log "loadgen not built"; exit 1; }
SAS="$("$LOADGEN" sas --key "$KEY" --account "$ACCOUNT")"

# ---------- one server ----------
# start_server NAME DIR PORTVAR -> sets SRV_PID, SRV_PORT, SRV_STARTUP_MS
start_server() {
  local name="$1" dir="$2" qport out
  qport="$(free_port)"
  mkdir -p "$dir"
  case "$name" in
    nimbus)
      local hport app quiet=()
      hport="$(free_port)"
      app="$dir/app"; mkdir -p "$app" "$dir/data"
      printf '{ "version": "2.0" }\n' >"$app/host.json"
      if "$NIMBUS" start --help 2>&1 | grep -q -- '--quiet'; then quiet=(--quiet); fi
      out="$(cd "$dir" && "$LOADGEN" startwait --port "$qport" --pidfile "$dir/pid" --log "$dir/server.log" -- \
        "$NIMBUS" start "$app" --data "$dir/data" --port "$hport" --queue-port "$qport" "${quiet[@]}")" ;;
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

rss() { sed -n "s/^$2:[[:space:]]*\([0-9]*\) kB/\1/p" "/proc/$1/status" 2>/dev/null || echo -1; }

record() { printf 'run=%s server=%s %s\n' "$RUN" "$1" "$2" >>"$OUT"; }

bench_server() {
  local name="$1" dir="$WORK/run$RUN-$1" base lg res put32 need c loaded=0 r
  log "== run $RUN: $name"
  start_server "$name" "$dir" || { record "$name" "workload=start failed=1"; return 0; }
  base="http://127.0.0.1:$SRV_PORT/$ACCOUNT"
  sleep 1
  record "$name" "workload=server startup_ms=$SRV_STARTUP_MS idle_rss_kb=$(rss "$SRV_PID" VmRSS)"
  lg=(--base "$base" --sas "$SAS" --threads "$THREADS")
  for q in benchput1 benchput32 benchgd1 benchgd32 benchsmall1 benchsmall32; do
    "$LOADGEN" create "${lg[@]}" --queue "$q" >/dev/null || { log "create $q failed on $name"; }
  done

  run_one() { # workload-name loadgen-args...
    local wl="$1"; shift
    res="$("$LOADGEN" run "${lg[@]}" --rss-pid "$SRV_PID" "$@" || true)"
    record "$name" "workload=$wl $res${EXTRA:+ $EXTRA}"
    r="$(kv server_rss_max_kb "$res")"; [ -n "$r" ] && [ "$r" -gt "$loaded" ] && loaded="$r"
    log "   $wl: ops/s=$(kv ops_s "$res") p50=$(kv req_p50_us "$res")us p99=$(kv req_p99_us "$res")us errors=$(kv errors "$res") empty=$(kv empty "$res")"
  }
  prefill() { # queue count
    "$LOADGEN" run "${lg[@]}" --queue "$1" --mode put --conns 32 --total "$2" >/dev/null || true
    log "   prefill $1: $("$LOADGEN" count "${lg[@]}" --queue "$1" || true)"
  }

  run_one put1 --queue benchput1 --mode put --conns 1 --duration "$DURATION" --warmup "$WARMUP"
  run_one put32 --queue benchput32 --mode put --conns 32 --duration "$DURATION" --warmup "$WARMUP"
  put32="$(kv ops_s "$(grep "run=$RUN server=$name workload=put32 " "$OUT" | tail -1)")"
  need="$(awk -v r="${put32:-0}" -v d="$DURATION" -v w="$WARMUP" 'BEGIN{printf "%d", 1.25*r*(d+w)+1000}')"
  for c in 1 32; do
    prefill "benchgd$c" "$need"
    EXTRA="prefill=$need" run_one "getdel$c" --queue "benchgd$c" --mode getdel --conns "$c" \
      --duration "$DURATION" --warmup "$WARMUP"
  done
  for c in 1 32; do
    prefill "benchsmall$c" "$SMALL"
    EXTRA="prefill=$SMALL" run_one "getdel${c}_1k" --queue "benchsmall$c" --mode getdel --conns "$c" --total "$SMALL"
  done
  record "$name" "workload=memory loaded_rss_kb=$loaded hwm_kb=$(rss "$SRV_PID" VmHWM)"
  stop_server "$SRV_PID"
  [ "$KEEP" = 1 ] || rm -rf "$dir"
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
servers = [s for s in ("nimbus", "azurite-disk", "azurite-mem") if any(k[0] == s for k in rows)]
wls = [("put1", "put, 1 conn"), ("put32", "put, 32 conns"), ("getdel1", "get+delete, 1 conn"),
       ("getdel32", "get+delete, 32 conns"), ("getdel1_1k", "get+delete 1k backlog, 1 conn"),
       ("getdel32_1k", "get+delete 1k backlog, 32 conns")]
def f(v, fmt="{:.0f}"): return "-" if v is None else fmt.format(v)
def ms(us): return "-" if us is None else "{:.3f}".format(us / 1000)
print(f"\nQueue benchmark ({'median of %d runs' % runs if runs > 1 else '1 run'}); latency is per HTTP request; "
      "get+delete ops/s counts completed pairs")
hdr = f"{'workload':34} {'server':13} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>7} {'empty':>6}"
ratio_to = [s for s in servers if s != "nimbus"] if "nimbus" in servers else []
for s in ratio_to: hdr += f" {'x ' + s:>16}"
print(hdr); print("-" * len(hdr))
for wl, label in wls:
    for s in servers:
        if (s, wl) not in rows: continue
        ops = med(s, wl, "ops_s")
        line = (f"{label:34} {s:13} {f(ops):>9} {ms(med(s, wl, 'req_p50_us')):>8} {ms(med(s, wl, 'req_p99_us')):>8} "
                f"{f(med(s, wl, 'errors')):>7} {f(med(s, wl, 'empty')):>6}")
        if s == "nimbus":
            for o in ratio_to:
                oo = med(o, wl, "ops_s")
                line += f" {('%.1fx' % (ops / oo)) if ops and oo else '-':>16}"
        print(line)
print()
hdr = f"{'server':13} {'start-up ms':>11} {'idle RSS MB':>11} {'loaded RSS MB':>13} {'VmHWM MB':>9}"
print(hdr); print("-" * len(hdr))
for s in servers:
    mb = lambda k, wl: None if med(s, wl, k) is None else med(s, wl, k) / 1024
    print(f"{s:13} {f(med(s, 'server', 'startup_ms'), '{:.1f}'):>11} {f(mb('idle_rss_kb', 'server'), '{:.1f}'):>11} "
          f"{f(mb('loaded_rss_kb', 'memory'), '{:.1f}'):>13} {f(mb('hwm_kb', 'memory'), '{:.1f}'):>9}")
PY
log "raw results: $OUT"
