#!/usr/bin/env bash
# Table storage benchmark: the same workloads against Nimbus and Azurite (disk and
# in-memory persistence), one after the other, on 127.0.0.1 only.
#
#   bench/table/run.sh [--duration S] [--warmup S] [--runs N] [--threads T]
#                      [--servers nimbus,azurite-disk,azurite-mem[,nimbus-mem]]
#                      [--partitions P] [--scan-min N] [--idle PCT] [--idle-wait S]
#                      [--no-build] [--keep]
#   bench/table/run.sh --report RESULTS_FILE     (only print the summary of an earlier run)
#
# Workloads (keep-alive HTTP/1.1, JSON, x-ms-version 2019-02-02, one account SAS
# sv=2019-02-02 ss=t srt=sco sp=rwdlacu on every URL, so nothing is signed per request):
#   insert    POST /{acct}/{t} of a 10-property entity (3 strings, 2 Int32, Int64 as an
#             annotated string, 2 Double, Boolean, annotated DateTime),
#             Content-Type: application/json;odata=nometadata, Prefer: return-no-content;
#             PartitionKey "p<conn>", RowKey = per-connection counter; at 1 and 32
#             connections, each into a fresh table that is deleted afterwards.
#   preload   P partitions x 100 rows (default P=1000: 100,000 entities) into table
#             "bench" with one $batch of 100 inserts per request, 4 connections; timed.
#   get       GET /{t}(PartitionKey='pX',RowKey='rY') of a random pre-loaded row, 1 and 32 conns
#   pkquery   GET /{t}()?$filter=PartitionKey eq 'pX'  (100 rows), 1 and 32 conns
#   range     PartitionKey eq 'pX' and RowKey ge 'a' and RowKey lt 'b' (25 rows), 1 and 32 conns
#   scan      IntProp eq N, a non-key filter over all P x 100 entities (1 row); 1 conn,
#             at least --scan-min (default 5) measured queries even past the window.
# Query ops follow continuation tokens, so an op is a whole query; latency is per op.
# Also measured: start-up (exec -> first accepted TCP connect on the table port),
# idle RSS (VmRSS 1 s after start), loaded RSS (max VmRSS sampled every 100 ms under
# load, preload included) and VmHWM at the end.  With --runs N every number in the
# summary is the median of N runs, and each Nimbus/Azurite ratio is the median of the
# per-run ratios (with min..max).  Raw results go to $OUT (printed at the end).  The
# machine may be shared: before each workload the script waits (up to S s, default
# 120) until at least PCT% (default 80, 0 = don't wait) of the CPU is idle, and
# reports the CPU other processes used during each workload ("nbr cpu%").  "srv CPU us/op"
# (server CPU time per op) is the least noise-sensitive number: it is what one op costs
# the server, whatever the neighbours or the load generator took from the 2 cores.
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
PARTITIONS=1000
ROWS_PER=100
SCAN_MIN=5
BUILD=1
KEEP=0
IDLE_PCT=80
IDLE_WAIT=120
REPORT=""

usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --duration) DURATION="$2"; shift 2 ;;
    --warmup)   WARMUP="$2"; shift 2 ;;
    --runs)     RUNS="$2"; shift 2 ;;
    --threads)  THREADS="$2"; shift 2 ;;
    --servers)  SERVERS="$2"; shift 2 ;;
    --partitions) PARTITIONS="$2"; shift 2 ;;
    --scan-min) SCAN_MIN="$2"; shift 2 ;;
    --idle)     IDLE_PCT="$2"; shift 2 ;;
    --idle-wait) IDLE_WAIT="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --keep)     KEEP=1; shift ;;
    --report)   REPORT="$2"; shift 2 ;;
    -h|--help)  usage 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage ;;
  esac
done

# ---------- summary (medians over runs) ----------
summary() {
/usr/bin/python3 - "$1" <<'PY'
import sys, statistics, collections
path = sys.argv[1]
rows = collections.defaultdict(list)   # (server, workload) -> [dict]
allruns = set()
for line in open(path):
    d = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    if "server" not in d: continue
    rows[(d["server"], d["workload"])].append(d)
    allruns.add(d["run"])
    try: d["cpu_us_op"] = str(1e4 * float(d["server_cpu_pct"]) / float(d["ops_s"]))
    except (KeyError, ValueError, ZeroDivisionError): pass
runs = len(allruns)
def vals(server, wl, key):
    out = {}
    for d in rows.get((server, wl), []):
        try: out[d["run"]] = float(d[key])
        except (KeyError, ValueError): pass
    return out
def med(server, wl, key):
    v = list(vals(server, wl, key).values())
    return statistics.median(v) if v else None
servers = [s for s in ("nimbus", "nimbus-mem", "azurite-disk", "azurite-mem") if any(k[0] == s for k in rows)]
wls = [("insert1", "insert, 1 conn"), ("insert32", "insert, 32 conns"), ("preload", "preload $batch x100, 4 conns"),
       ("get1", "point get, 1 conn"), ("get32", "point get, 32 conns"),
       ("pkquery1", "PK query (100 rows), 1 conn"), ("pkquery32", "PK query (100 rows), 32 conns"),
       ("range1", "RK range (25 rows), 1 conn"), ("range32", "RK range (25 rows), 32 conns"),
       ("scan1", "non-key filter scan, 1 conn")]
def f(v, fmt="{:.0f}"): return "-" if v is None else fmt.format(v)
def ms(us): return "-" if us is None else ("{:.3f}" if us < 10000 else "{:.1f}").format(us / 1000)
print(f"\nTable benchmark ({'median of %d runs' % runs if runs > 1 else '1 run'}); ops/s counts whole ops "
      "(preload: batches of 100 entities; queries: all pages);\nlatency is per op; srv cpu% = server CPU, "
      "nbr cpu% = CPU used by other processes on the machine (100 = one core);\nratio = median over runs of "
      "Nimbus ops/s / Azurite ops/s in the same run [min..max];\nsrv CPU us/op = server CPU time per op (1e4 x srv cpu% / ops/s)")
hdr = f"{'workload':31} {'server':13} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'rows/op':>7} {'errors':>6} {'srv cpu%':>8} {'nbr cpu%':>8} {'srv CPU us/op':>13}"
ratio_to = [s for s in servers if s.startswith("azurite")] if "nimbus" in servers else []
for s in ratio_to: hdr += f" {'x ' + s:>20}"
print(hdr); print("-" * len(hdr))
for wl, label in wls:
    for s in servers:
        if (s, wl) not in rows: continue
        ops = med(s, wl, "ops_s")
        line = (f"{label:31} {s:13} {f(ops):>9} {ms(med(s, wl, 'op_p50_us')):>8} {ms(med(s, wl, 'op_p99_us')):>8} "
                f"{f(med(s, wl, 'rows_per_op'), '{:.0f}'):>7} {f(med(s, wl, 'errors')):>6} "
                f"{f(med(s, wl, 'server_cpu_pct')):>8} {f(med(s, wl, 'others_cpu_pct')):>8} {f(med(s, wl, 'cpu_us_op'), '{:.1f}'):>13}")
        if s == "nimbus":
            mine = vals("nimbus", wl, "ops_s")
            for o in ratio_to:
                theirs = vals(o, wl, "ops_s")
                rs = [mine[r] / theirs[r] for r in mine if r in theirs and theirs[r] > 0]
                cell = "-" if not rs else (f"{statistics.median(rs):.1f}x" +
                                          (f" [{min(rs):.1f}..{max(rs):.1f}]" if len(rs) > 1 else ""))
                line += f" {cell:>20}"
        print(line)
print()
hdr = f"{'server':13} {'start-up ms':>11} {'idle RSS MB':>11} {'loaded RSS MB':>13} {'VmHWM MB':>9} {'preload s':>9} {'loadavg before/after':>21}"
print(hdr); print("-" * len(hdr))
for s in servers:
    mb = lambda k, wl: None if med(s, wl, k) is None else med(s, wl, k) / 1024
    print(f"{s:13} {f(med(s, 'server', 'startup_ms'), '{:.1f}'):>11} {f(mb('idle_rss_kb', 'server'), '{:.1f}'):>11} "
          f"{f(mb('loaded_rss_kb', 'memory'), '{:.1f}'):>13} {f(mb('hwm_kb', 'memory'), '{:.1f}'):>9} "
          f"{f(med(s, 'preload', 'secs'), '{:.1f}'):>9} "
          f"{f(med(s, 'server', 'loadavg_before'), '{:.2f}') + ' / ' + f(med(s, 'memory', 'loadavg_after'), '{:.2f}'):>21}")
if "nimbus" in servers and ratio_to:
    print("\nTargets (medians):")
    def ratio(wl, o):
        mine, theirs = vals("nimbus", wl, "ops_s"), vals(o, wl, "ops_s")
        rs = [mine[r] / theirs[r] for r in mine if r in theirs and theirs[r] > 0]
        return statistics.median(rs) if rs else None
    for wls_, need, label in ((("insert1", "insert32"), 10, "inserts >= 10x"),
                              (("get1", "get32"), 10, "point gets >= 10x"),
                              (("pkquery1", "pkquery32", "range1", "range32"), 20, "key-range queries >= 20x")):
        for wl in wls_:
            for o in ratio_to:
                r = ratio(wl, o)
                print(f"  {label:26} {wl:10} vs {o:13} {f(r, '{:.1f}') + 'x':>8}  {'met' if r and r >= need else 'MISSED'}")
    for wl in ("get1", "get32"):
        p = med("nimbus", wl, "op_p99_us")
        print(f"  {'point-get p99 < 1 ms':26} {wl:10} {ms(p):>8} ms  {'met' if p is not None and p < 1000 else 'MISSED'}")
PY
}

if [ -n "$REPORT" ]; then summary "$REPORT"; exit 0; fi

WORK="$(mktemp -d /tmp/nimbus-tbench.XXXXXX)"
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
case ",$SERVERS," in
  *,azurite-*) command -v azurite-table >/dev/null || { log "azurite-table not found (npm install -g azurite)"; exit 1; } ;;
esac
SAS="$("$LOADGEN" sas --key "$KEY" --account "$ACCOUNT")"

# ---------- one server ----------
# start_server NAME DIR -> sets SRV_PID, SRV_PORT, SRV_STARTUP_MS
start_server() {
  local name="$1" dir="$2" tport out=""
  tport="$(free_port)"
  mkdir -p "$dir"
  case "$name" in
    nimbus|nimbus-mem)
      # Durable acknowledged writes (--sync normal) are Nimbus' default; nimbus-mem adds --in-memory.
      local app extra=()
      app="$dir/app"; mkdir -p "$app" "$dir/data"
      printf '{ "version": "2.0" }\n' >"$app/host.json"
      if [ "$name" = nimbus-mem ]; then extra+=(--in-memory); else extra+=(--data "$dir/data"); fi
      out="$(cd "$dir" && "$LOADGEN" startwait --port "$tport" --pidfile "$dir/pid" --log "$dir/server.log" -- \
        "$NIMBUS" start "$app" --port "$(free_port)" --queue-port "$(free_port)" --table-port "$tport" \
        --quiet "${extra[@]}")" || true ;;
    azurite-disk)
      mkdir -p "$dir/data"
      out="$(cd "$dir" && "$LOADGEN" startwait --port "$tport" --pidfile "$dir/pid" --log "$dir/server.log" -- \
        azurite-table --location "$dir/data" --tableHost 127.0.0.1 --tablePort "$tport" \
        --disableTelemetry --silent --skipApiVersionCheck)" || true ;;
    azurite-mem)
      # Azurite refuses --location together with --inMemoryPersistence; cwd is the temp dir.
      out="$(cd "$dir" && "$LOADGEN" startwait --port "$tport" --pidfile "$dir/pid" --log "$dir/server.log" -- \
        azurite-table --inMemoryPersistence --tableHost 127.0.0.1 --tablePort "$tport" \
        --disableTelemetry --silent --skipApiVersionCheck)" || true ;;
  esac
  if [ -z "$out" ] || [ -z "$(kv startup_ms "$out")" ]; then
    [ -f "$dir/pid" ] && PIDS+=("$(cat "$dir/pid")")
    log "$name failed to start; log:"; tail -20 "$dir/server.log" >&2 || true
    return 1
  fi
  SRV_PID="$(kv pid "$out")"
  PIDS+=("$SRV_PID")
  SRV_PORT="$tport"
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
  a=($(head -1 /proc/stat)); sleep 1; b=($(head -1 /proc/stat))
  awk -v i0="$((a[4] + a[5]))" -v i1="$((b[4] + b[5]))" \
      -v t0="$((a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7] + a[8]))" \
      -v t1="$((b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + b[7] + b[8]))" \
      'BEGIN { printf "%d", (t1 > t0) ? 100 * (i1 - i0) / (t1 - t0) : 100 }'
}

# This machine is shared: wait until the neighbours are quiet (or give up).
wait_idle() {
  IDLE_NOW="-"
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

bench_server() {
  local name="$1" dir="$WORK/run$RUN-$1" base lg res c loaded=0 r
  log "== run $RUN: $name"
  start_server "$name" "$dir" || { record "$name" "workload=start failed=1"; return 0; }
  base="http://127.0.0.1:$SRV_PORT/$ACCOUNT"
  sleep 1
  record "$name" "workload=server startup_ms=$SRV_STARTUP_MS idle_rss_kb=$(rss "$SRV_PID" VmRSS) loadavg_before=$(cut -d' ' -f1 /proc/loadavg)"
  lg=(--base "$base" --sas "$SAS" --threads "$THREADS" --partitions "$PARTITIONS" --rows-per "$ROWS_PER")

  run_one() { # workload-name table loadgen-args...
    local wl="$1" t="$2"; shift 2
    wait_idle
    res="$("$LOADGEN" run "${lg[@]}" --table "$t" --rss-pid "$SRV_PID" "$@" || true)"
    record "$name" "workload=$wl $res idle_before_pct=$IDLE_NOW"
    r="$(kv server_rss_max_kb "$res")"
    if [ -n "$r" ] && [ "$r" -gt "$loaded" ]; then loaded="$r"; fi
    log "   $wl: ops/s=$(kv ops_s "$res") p50=$(kv op_p50_us "$res")us p99=$(kv op_p99_us "$res")us rows/op=$(kv rows_per_op "$res") errors=$(kv errors "$res") bad_rows=$(kv bad_rows "$res") server_cpu=$(kv server_cpu_pct "$res")% others_cpu=$(kv others_cpu_pct "$res")% (secs $(kv secs "$res"))"
  }
  mkt() { "$LOADGEN" mktable "${lg[@]}" --table "$1" >/dev/null || log "   create table $1 failed on $name"; }
  rmt() { "$LOADGEN" rmtable "${lg[@]}" --table "$1" >/dev/null || log "   delete table $1 failed on $name"; }

  for c in 1 32; do
    mkt "benchins$c"
    run_one "insert$c" "benchins$c" --mode insert --conns "$c" --duration "$DURATION" --warmup "$WARMUP"
    rmt "benchins$c"
  done
  mkt bench
  run_one preload bench --mode preload --conns 4
  for c in 1 32; do
    run_one "get$c" bench --mode get --conns "$c" --duration "$DURATION" --warmup "$WARMUP"
  done
  for c in 1 32; do
    run_one "pkquery$c" bench --mode pkquery --conns "$c" --duration "$DURATION" --warmup "$WARMUP"
  done
  for c in 1 32; do
    run_one "range$c" bench --mode range --conns "$c" --duration "$DURATION" --warmup "$WARMUP"
  done
  run_one scan1 bench --mode scan --conns 1 --duration "$DURATION" --warmup "$WARMUP" --min-ops "$SCAN_MIN"
  record "$name" "workload=memory loaded_rss_kb=$loaded hwm_kb=$(rss "$SRV_PID" VmHWM) loadavg_after=$(cut -d' ' -f1 /proc/loadavg)"
  stop_server "$SRV_PID"
  [ "$KEEP" = 1 ] || rm -rf "$dir"
}

log "machine: $(nproc) cores, $(uname -r), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(free -g | awk '/^Mem:/ {print $2}') GiB"
log "nimbus: $(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$REPO" && git diff --quiet HEAD -- src 2>/dev/null || echo ' (+ uncommitted src changes)'); azurite-table: $(azurite-table --version 2>/dev/null || echo '?'); node: $(node --version 2>/dev/null || echo '?')"
log "duration ${DURATION}s after ${WARMUP}s warm-up, $RUNS run(s), $PARTITIONS x $ROWS_PER pre-loaded entities, loadgen threads $THREADS; work dir $WORK"
for RUN in $(seq "$RUNS"); do
  IFS=',' read -r -a list <<<"$SERVERS"
  for s in "${list[@]}"; do bench_server "$s"; done
done

summary "$OUT"
log "raw results: $OUT"
