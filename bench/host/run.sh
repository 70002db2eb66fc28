#!/usr/bin/env bash
# Function-host benchmark: one "hello" HTTP function served by Nimbus as a native
# function (.so in a worker process) and through a Python custom handler (invocation
# and forwarding mode), against nginx answering the same "hello" itself (the
# ceiling); plus the start-up of an app with 20 functions. 127.0.0.1 only.
#
#   bench/host/run.sh [--runs N] [--duration S] [--warmup S] [--threads T] [--conns C]
#                     [--servers nginx,native,native-inproc,custom,custom-forward,handler-direct] [--starts N]
#                     [--functions N] [--idle PCT] [--idle-wait S] [--no-build] [--keep]
#   bench/host/run.sh --report RESULTS_FILE     (only print the summary of an earlier run)
#
# Throughput: wrk -t T -c C -d S --latency (defaults -t2 -c64 -d10), after a
# --warmup (default 2 s) wrk run that is not counted, on a freshly started server
# per run and kind:
#   nginx           GET /hello        nginx -c <tmp>/nginx.conf (bench/host/nginx.conf.in):
#                                     worker_processes auto, access_log off,
#                                     location /hello { return 200 "hello"; }
#   native          GET /api/hello    bench/host/apps/native: hello.so built here with
#                                     cc -shared -fPIC -O2 -I<repo>/include
#   custom          GET /api/hello    bench/host/apps/custom: python3 handler.py
#                                     (ThreadingHTTPServer), POST /hello -> {Outputs,...}
#   custom-forward  GET /api/hello    the same handler with enableForwardingHttpRequest
#   handler-direct  GET /api/hello    handler.py alone, no host (the custom handler's ceiling)
# Nimbus runs as `nimbus start APP --in-memory --port P --queue-port Q --table-port T
# --quiet` on free ports; the script waits for GET /admin/host/ping = 200 and checks
# that GET /api/hello answers 200 "hello" before measuring.
# Start-up: an app of --functions (default 20) native HTTP functions sharing one
# hello.so; wall time from just before exec of `nimbus start` until GET
# /admin/host/ping answers 200, polled every 2 ms; --starts (default 5) starts per
# run. Also recorded: the first GET of a function after that (first invocation),
# and SIGTERM -> exit.
# With --runs N every number in the summary is the median of N runs (start-up: of
# all starts); ratios are medians of the per-run ratios to nginx [min..max].  The
# machine may be shared: before each measurement the script waits (up to S s,
# default 30) until PCT% (default 80, 0 = don't wait) of the CPU is idle, and it
# records the CPU used by the server (its whole process tree: host, workers,
# handler), by wrk and by everything else ("nbr cpu%"; 100 = one core).
# Raw key=value results go to $OUT (printed at the end).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
NIMBUS="$REPO/build/nimbus"
WRK="${WRK:-$(command -v wrk || echo /usr/bin/wrk)}"
NGINX="${NGINX:-$(command -v nginx || echo /usr/sbin/nginx)}"
PY=/usr/bin/python3

RUNS=3
DURATION=10
WARMUP=2
THREADS=2
CONNS=64
SERVERS="nginx,native,native-inproc,custom,custom-forward,handler-direct"
STARTS=5
NFUNC=20
IDLE_PCT=80
IDLE_WAIT=30
BUILD=1
KEEP=0
REPORT=""
CMDLINE="bench/host/run.sh${*:+ $*}"

usage() { sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'; exit "${1:-2}"; }
while [ $# -gt 0 ]; do
  case "$1" in
    --runs)      RUNS="$2"; shift 2 ;;
    --duration)  DURATION="$2"; shift 2 ;;
    --warmup)    WARMUP="$2"; shift 2 ;;
    --threads)   THREADS="$2"; shift 2 ;;
    --conns)     CONNS="$2"; shift 2 ;;
    --servers)   SERVERS="$2"; shift 2 ;;
    --starts)    STARTS="$2"; shift 2 ;;
    --functions) NFUNC="$2"; shift 2 ;;
    --idle)      IDLE_PCT="$2"; shift 2 ;;
    --idle-wait) IDLE_WAIT="$2"; shift 2 ;;
    --no-build)  BUILD=0; shift ;;
    --keep)      KEEP=1; shift ;;
    --report)    REPORT="$2"; shift 2 ;;
    -h|--help)   usage 0 ;;
    *) echo "run.sh: unknown option $1" >&2; usage ;;
  esac
done

# ---------- summary (medians over runs) ----------
summary() {
"$PY" - "$1" <<'PY'
import sys, statistics, collections
path = sys.argv[1]
rows = collections.defaultdict(list)      # server -> [dict]
meta = {}
for line in open(path):
    if line.startswith("#"):
        k, _, v = line[1:].strip().partition("=")
        meta[k.strip()] = v.strip()
        continue
    d = dict(kv.split("=", 1) for kv in line.split() if "=" in kv)
    if "server" in d: rows[d["server"]].append(d)
def num(d, k):
    try: return float(d[k])
    except (KeyError, ValueError): return None
def med(server, key):
    v = [x for x in (num(d, key) for d in rows.get(server, [])) if x is not None]
    return statistics.median(v) if v else None
def per_run(server, key):
    return {d["run"]: num(d, key) for d in rows.get(server, []) if num(d, key) is not None}
def f(v, fmt="{:.0f}"): return "-" if v is None else fmt.format(v)
def ms(us): return "-" if us is None else ("{:.3f}" if us < 10000 else "{:.1f}").format(us / 1000)
runs = len({d["run"] for ds in rows.values() for d in ds if d["server"] != "startup"})
print(f"\nFunction-host benchmark ({'median of %d runs' % runs if runs > 1 else '1 run'}); "
      f"wrk {meta.get('wrk', '')}; GET of a 5-byte \"hello\";\n"
      "srv cpu% = the server's whole process tree (host + workers + handler), wrk cpu%, "
      "nbr cpu% = every other process (100 = one core);\n"
      "x nginx = median of the per-run ratios to nginx's requests/s [min..max]; "
      "srv CPU us/req = server CPU time per request")
order = [("nginx", "nginx, return 200 (ceiling)"), ("native", "Nimbus, native .so"),
         ("native-inproc", "Nimbus, native .so, in-process"),
         ("custom", "Nimbus, custom handler"), ("custom-forward", "Nimbus, custom handler, forwarding"),
         ("handler-direct", "handler.py alone (no host)")]
hdr = (f"{'server':36} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'errors':>6} {'srv cpu%':>8} "
       f"{'wrk cpu%':>8} {'nbr cpu%':>8} {'srv CPU us/req':>14} {'x nginx':>18}")
print(hdr); print("-" * len(hdr))
ratios = {}
for s, label in order:
    if s not in rows: continue
    bad = [d for d in rows[s] if "failed" in d]
    mine, ngx = per_run(s, "rps"), per_run("nginx", "rps")
    rs = [mine[r] / ngx[r] for r in mine if ngx.get(r)]
    ratios[s] = statistics.median(rs) if rs else None
    cell = "-" if not rs or s == "nginx" else (f"{100 * statistics.median(rs):.1f}%" +
            (f" [{100 * min(rs):.0f}..{100 * max(rs):.0f}]" if len(rs) > 1 else ""))
    cpu = [1e4 * num(d, "server_cpu_pct") / num(d, "rps") for d in rows[s]
           if num(d, "server_cpu_pct") is not None and num(d, "rps")]
    print(f"{label:36} {f(med(s, 'rps')):>9} {ms(med(s, 'p50_us')):>8} {ms(med(s, 'p99_us')):>8} "
          f"{f(med(s, 'errors')):>6} {f(med(s, 'server_cpu_pct')):>8} {f(med(s, 'wrk_cpu_pct')):>8} "
          f"{f(med(s, 'others_cpu_pct')):>8} {f(statistics.median(cpu) if cpu else None, '{:.1f}'):>14} {cell:>18}"
          + (f"   ({len(bad)} run(s) failed: {bad[0]['failed']})" if bad else ""))
st = rows.get("startup", [])
if st:
    print()
    vals = lambda k: [x for x in (num(d, k) for d in st) if x is not None]
    su, fi, sd = vals("start_ms"), vals("first_inv_ms"), vals("stop_ms")
    fails = [d for d in st if "failed" in d]
    nf = st[0].get("functions", "?")
    hdr = f"{'start-up, ' + nf + ' native functions':36} {'median ms':>9} {'min..max ms':>15} {'starts':>6}"
    print(hdr); print("-" * len(hdr))
    for label, v in (("exec -> /admin/host/ping 200", su), ("then first GET /api/f01 (200)", fi),
                     ("SIGTERM -> exit", sd)):
        print(f"{label:36} {f(statistics.median(v) if v else None, '{:.1f}'):>9} "
              f"{(f'{min(v):.1f}..{max(v):.1f}' if v else '-'):>15} {len(v):>6}")
    if fails: print(f"({len(fails)} start(s) failed: {fails[0]['failed']})")
print("\nTargets:")
def verdict(ok): return "-" if ok is None else ("met" if ok else "MISSED")
for s, need, label in (("native", 0.50, "native >= 50% of nginx"),
                       ("native-inproc", 0.50, "(in-process) native >= 50% of nginx"),
                       ("custom", 0.25, "custom handler >= 25% of nginx"),
                       ("custom-forward", 0.25, "(forwarding) custom handler >= 25% of nginx")):
    r = ratios.get(s)
    if s not in rows: continue
    print(f"  {label:44} {'-' if r is None else f'{100 * r:.1f}%':>8}  {verdict(None if r is None else r >= need)}")
if st:
    v = [x for x in (num(d, "start_ms") for d in st) if x is not None]
    m = statistics.median(v) if v else None
    print(f"  {'start-up of ' + st[0].get('functions', '?') + ' functions < 100 ms':44} "
          f"{f(m, '{:.1f} ms'):>8}  {verdict(None if m is None else m < 100)}")
if meta.get("cmd"): print(f"\ncommand: {meta['cmd']}")
for k in ("machine", "nimbus", "wrk_version", "nginx_version", "python"):
    if k in meta: print(f"{k}: {meta[k]}")
PY
}
if [ -n "$REPORT" ]; then summary "$REPORT"; exit 0; fi

WORK="$(mktemp -d /tmp/nimbus-hbench.XXXXXX)"
OUT="$WORK/results.txt"
: >"$OUT"
PIDS=()

# Stop one server (its pid leads its own process group): SIGTERM to the server,
# wait up to 10 s, then SIGKILL whatever is left of the group (workers, handler).
stop_group() {
  local pid="$1" left kids p
  kids="$(descendants "$pid")"
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 200); do alive "$pid" || break; sleep 0.05; done
  if alive "$pid"; then log "   pid $pid ignored SIGTERM for 10 s; killing it"; kill -KILL "$pid" 2>/dev/null || true; fi
  wait "$pid" 2>/dev/null || true
  left="$(pgrep -g "$pid" 2>/dev/null | tr '\n' ' ' || true)"
  for p in $kids; do alive "$p" && case " $left " in *" $p "*) ;; *) left="$left$p " ;; esac; done
  if [ -n "$left" ]; then
    log "   left behind after the server exited: $left(killed)"
    kill -KILL -- "-$pid" 2>/dev/null || true
    for p in $left; do kill -KILL "$p" 2>/dev/null || true; done
  fi
}
# all descendants of a pid (by parent pid)
descendants() {
  local p c
  for c in $(pgrep -P "$1" 2>/dev/null || true); do echo "$c"; descendants "$c"; done
}
# running and not a zombie (the script is the servers' parent until it reaps them)
alive() {
  local st
  st="$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [ -n "$st" ] && [ "$st" != Z ]
}

cleanup() {
  local p
  for p in "${PIDS[@]:-}"; do [ -n "$p" ] && stop_group "$p"; done
  PIDS=()
  if [ -s "$WORK/startup.pids" ]; then
    while read -r p; do kill -KILL -- "-$p" 2>/dev/null || true; done <"$WORK/startup.pids"
  fi
  if [ "$KEEP" = 0 ]; then
    find "$WORK" -mindepth 1 -maxdepth 1 ! -name results.txt -exec rm -rf {} + 2>/dev/null || true
  fi
}
trap cleanup EXIT
trap 'cleanup; exit 130' INT TERM

log() { printf '%s\n' "$*" >&2; }
kv() { printf '%s\n' "$2" | tr ' ' '\n' | sed -n "s/^$1=//p" | head -1; }
free_port() {
  "$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
record() { printf 'run=%s server=%s %s\n' "$RUN" "$1" "$2" >>"$OUT"; }

# Percent of all CPUs idle over the next second.
idle_pct() {
  local a b
  read -r -a a </proc/stat; sleep 1; read -r -a b </proc/stat
  awk -v i0="$((a[4] + a[5]))" -v i1="$((b[4] + b[5]))" \
      -v t0="$((a[1] + a[2] + a[3] + a[4] + a[5] + a[6] + a[7] + a[8]))" \
      -v t1="$((b[1] + b[2] + b[3] + b[4] + b[5] + b[6] + b[7] + b[8]))" \
      'BEGIN { printf "%d", (t1 > t0) ? 100 * (i1 - i0) / (t1 - t0) : 100 }'
}
wait_idle() {
  IDLE_NOW="?"
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

# ---------- helpers in Python (written once per invocation) ----------
# measure.py ROOTPID -- wrk args...: runs wrk, samples CPU of ROOTPID's process tree,
# of wrk and of the whole machine around it, prints one key=value line.
cat >"$WORK/measure.py" <<'PY'
import os, re, resource, subprocess, sys, time
root = int(sys.argv[1]); cmd = sys.argv[3:]
HZ = os.sysconf("SC_CLK_TCK")
def tree_ticks(root):
    kids, ticks = {}, {}
    for p in os.listdir("/proc"):
        if not p.isdigit(): continue
        try:
            s = open(f"/proc/{p}/stat").read()
        except OSError:
            continue
        f = s[s.rindex(")") + 2:].split()
        kids.setdefault(int(f[1]), []).append(int(p))
        ticks[int(p)] = int(f[11]) + int(f[12])
    out, pending = {}, [root]
    while pending:
        p = pending.pop()
        if p in ticks: out[p] = ticks[p]
        pending += kids.get(p, [])
    return out
def machine():
    f = open("/proc/stat").readline().split()[1:9]
    v = list(map(int, f)); return sum(v), v[3] + v[4]
def child_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN); return r.ru_utime + r.ru_stime
t0, m0, c0 = time.monotonic(), machine(), child_cpu()
s0 = tree_ticks(root)
p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
s1 = tree_ticks(root)
t1, m1, c1 = time.monotonic(), machine(), child_cpu()
out = p.stdout
wall = t1 - t0
srv = sum(v - s0.get(k, 0) for k, v in s1.items()) / HZ
wrk = c1 - c0
busy = ((m1[0] - m0[0]) - (m1[1] - m0[1])) / HZ
res = {"wall_s": f"{wall:.2f}", "server_cpu_pct": f"{100 * srv / wall:.0f}",
       "wrk_cpu_pct": f"{100 * wrk / wall:.0f}",
       "others_cpu_pct": f"{max(0.0, 100 * (busy - srv - wrk) / wall):.0f}",
       "server_procs": str(len(s1))}
m = re.search(r"Requests/sec:\s*([\d.]+)", out)
if m: res["rps"] = m.group(1)
m = re.search(r"(\d+) requests in", out)
if m: res["requests"] = m.group(1)
def us(v, unit): return float(v) * {"us": 1, "ms": 1e3, "s": 1e6, "m": 6e7}[unit]
for pct in ("50", "75", "90", "99"):
    m = re.search(rf"^\s*{pct}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
    if m: res[f"p{pct}_us"] = f"{us(*m.groups()):.0f}"
m = re.search(r"Latency\s+([\d.]+)(us|ms|s|m)\s+([\d.]+)(us|ms|s|m)\s+([\d.]+)(us|ms|s|m)", out)
if m: res["avg_us"], res["max_us"] = f"{us(m.group(1), m.group(2)):.0f}", f"{us(m.group(5), m.group(6)):.0f}"
errs = 0
m = re.search(r"Non-2xx or 3xx responses:\s*(\d+)", out)
if m: errs += int(m.group(1)); res["non2xx"] = m.group(1)
m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
if m: errs += sum(map(int, m.groups())); res["socket_errors"] = ",".join(m.groups())
res["errors"] = str(errs)
if p.returncode != 0 or "rps" not in res:
    res["failed"] = "wrk_rc=%d" % p.returncode
    sys.stderr.write(out)
print(" ".join(f"{k}={v}" for k, v in res.items()))
PY

# startup.py NIMBUS APP STARTS PIDFILE FIRST_ROUTE: one line per start.
cat >"$WORK/startup.py" <<'PY'
import http.client, os, signal, socket, subprocess, sys, time
nimbus, app, starts, pidfile, route = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p
def get(port, path, timeout=5):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("GET", path); r = c.getresponse(); r.read(); return r.status
    finally:
        c.close()
for i in range(starts):
    port, q, t = free_port(), free_port(), free_port()
    argv = [nimbus, "start", app, "--in-memory", "--port", str(port), "--queue-port", str(q),
            "--table-port", str(t), "--quiet"]
    res = {"start": str(i + 1)}
    t0 = time.monotonic()
    p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=open(os.path.join(os.path.dirname(pidfile), f"startup{i}.log"), "w"),
                         start_new_session=True)
    with open(pidfile, "a") as f: f.write(f"{p.pid}\n")
    try:
        deadline = t0 + 30
        while True:
            try:
                if get(port, "/admin/host/ping", timeout=1) == 200:
                    res["start_ms"] = f"{1e3 * (time.monotonic() - t0):.1f}"; break
            except OSError:
                pass
            if p.poll() is not None:
                res["failed"] = f"exited_rc={p.returncode}"; break
            if time.monotonic() > deadline:
                res["failed"] = "no_ping_in_30s"; break
            time.sleep(0.002)
        if "start_ms" in res:
            t1 = time.monotonic()
            try:
                st = get(port, route, timeout=30)
                res["first_inv_ms"] = f"{1e3 * (time.monotonic() - t1):.1f}"
                if st != 200: res["failed"] = f"first_get_status={st}"
            except OSError as e:
                res["failed"] = "first_get_" + type(e).__name__
    finally:
        t2 = time.monotonic()
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(10); res["stop_ms"] = f"{1e3 * (time.monotonic() - t2):.1f}"
        except subprocess.TimeoutExpired:
            res["stop_failed"] = "no_exit_in_10s"
        try:
            os.killpg(p.pid, 0)
            res["left_behind"] = "yes"          # children outlived the host
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        if p.poll() is None: p.wait()
    print(" ".join(f"{k}={v}" for k, v in res.items()), flush=True)
PY

# ---------- build ----------
IFS=',' read -r -a LIST <<<"$SERVERS"
want_nimbus=0
for s in "${LIST[@]}"; do case "$s" in nginx|handler-direct) ;; *) want_nimbus=1 ;; esac; done
[ "$STARTS" -gt 0 ] && want_nimbus=1
if [ "$want_nimbus" = 1 ]; then
  if [ "$BUILD" = 1 ]; then make -s -C "$REPO" build/nimbus >&2; fi
  [ -x "$NIMBUS" ] || { log "$NIMBUS not built"; exit 1; }
  # Benchmark a private copy: other people may rebuild build/nimbus meanwhile.
  cp "$NIMBUS" "$WORK/nimbus"; NIMBUS="$WORK/nimbus"
fi
[ -x "$WRK" ] || { log "wrk not found (apt-get install -y wrk)"; exit 1; }
case ",$SERVERS," in
  *,nginx,*) [ -x "$NGINX" ] || { log "nginx not found (apt-get install -y nginx)"; exit 1; } ;;
esac

# Apps: private copies, hello.so built into them.
mkdir -p "$WORK/apps"
cp -r "$HERE/apps/custom" "$WORK/apps/custom"
if [ "$want_nimbus" = 1 ]; then
  cp -r "$HERE/apps/native" "$WORK/apps/native"
  cc -shared -fPIC -O2 -I"$REPO/include" -o "$WORK/apps/native/hello/hello.so" "$HERE/apps/native/hello/hello.c"
  cp -r "$HERE/apps/custom" "$WORK/apps/custom-forward"
  cp "$HERE/apps/custom-forward/host.json" "$WORK/apps/custom-forward/host.json"
  # Start-up app: NFUNC functions f01..fNN, routes f01..fNN, one shared hello.so.
  SAPP="$WORK/apps/startup"
  mkdir -p "$SAPP"
  cp "$HERE/apps/native/host.json" "$HERE/apps/native/local.settings.json" "$SAPP/"
  cp "$WORK/apps/native/hello/hello.so" "$SAPP/hello.so"
  for i in $(seq -w 1 "$NFUNC"); do
    mkdir -p "$SAPP/f$i"
    sed -e 's/"scriptFile": "hello.so"/"scriptFile": "..\/hello.so"/' -e "s/\"route\": \"hello\"/\"route\": \"f$i\"/" \
      "$HERE/apps/native/hello/function.json" >"$SAPP/f$i/function.json"
  done
  FIRST_ROUTE="/api/f$(seq -w 1 "$NFUNC" | head -1)"
fi

# ---------- one server ----------
# start_server KIND DIR -> SRV_PID, SRV_URL
start_server() {
  local kind="$1" dir="$2" port body
  port="$(free_port)"
  mkdir -p "$dir"
  case "$kind" in
    nginx)
      sed -e "s|@DIR@|$dir|g" -e "s|@PORT@|$port|g" "$HERE/nginx.conf.in" >"$dir/nginx.conf"
      setsid "$NGINX" -c "$dir/nginx.conf" -p "$dir" -e "$dir/error.log" </dev/null >"$dir/server.log" 2>&1 &
      SRV_PID=$!
      SRV_URL="http://127.0.0.1:$port/hello" ;;
    handler-direct)
      (cd "$WORK/apps/custom" && FUNCTIONS_CUSTOMHANDLER_PORT="$port" exec setsid "$PY" handler.py \
        </dev/null >"$dir/server.log" 2>&1) &
      SRV_PID=$!
      SRV_URL="http://127.0.0.1:$port/api/hello" ;;
    *)
      local app="$kind" extra=()
      # native-inproc: the same app, its functions run inside the server.
      [ "$kind" = native-inproc ] && { app=native; extra=(--native-in-process); }
      setsid "$NIMBUS" start "$WORK/apps/$app" --in-memory --port "$port" --queue-port "$(free_port)" \
        --table-port "$(free_port)" --quiet "${extra[@]}" </dev/null >"$dir/server.log" 2>&1 &
      SRV_PID=$!
      SRV_URL="http://127.0.0.1:$port/api/hello" ;;
  esac
  PIDS+=("$SRV_PID")
  # ready: nginx answers /hello; Nimbus answers /admin/host/ping
  local ready="$SRV_URL" t
  case "$kind" in nginx|handler-direct) ;; *) ready="http://127.0.0.1:$port/admin/host/ping" ;; esac
  for t in $(seq 600); do
    [ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 1 "$ready" 2>/dev/null)" = 200 ] && break
    kill -0 "$SRV_PID" 2>/dev/null || { log "   $kind exited during start-up; log:"; tail -20 "$dir/server.log" "$dir/error.log" >&2 2>/dev/null || true; return 1; }
    [ "$t" = 600 ] && { log "   $kind not ready after 30 s; log:"; tail -20 "$dir/server.log" >&2 || true; return 1; }
    sleep 0.05
  done
  # the function must really answer "hello" (the first call also starts workers/handler)
  body="$(curl -s --max-time 30 -w ' %{http_code}' "$SRV_URL" 2>/dev/null || true)"
  if [ "$body" != "hello 200" ]; then
    log "   $kind: GET $SRV_URL gave '$body' instead of 'hello 200'; log:"; tail -20 "$dir/server.log" >&2 || true
    return 1
  fi
}

bench_one() {
  local kind="$1" dir="$WORK/run$RUN-$1" res
  log "== run $RUN: $kind"
  if ! start_server "$kind" "$dir"; then
    record "$kind" "failed=start"
    [ -n "${SRV_PID:-}" ] && stop_one "$SRV_PID"
    return 0
  fi
  [ "$WARMUP" -gt 0 ] && "$WRK" -t"$THREADS" -c"$CONNS" -d"${WARMUP}s" "$SRV_URL" >/dev/null 2>&1 || true
  wait_idle
  res="$("$PY" "$WORK/measure.py" "$SRV_PID" -- "$WRK" -t"$THREADS" -c"$CONNS" -d"${DURATION}s" --latency "$SRV_URL")"
  record "$kind" "$res idle_before_pct=$IDLE_NOW"
  log "   req/s=$(kv rps "$res") p50=$(kv p50_us "$res")us p99=$(kv p99_us "$res")us errors=$(kv errors "$res") srv_cpu=$(kv server_cpu_pct "$res")% wrk_cpu=$(kv wrk_cpu_pct "$res")% nbr_cpu=$(kv others_cpu_pct "$res")% procs=$(kv server_procs "$res")"
  stop_one "$SRV_PID"
  [ "$KEEP" = 1 ] || rm -rf "$dir"
}

stop_one() {
  local pid="$1" keep=() p
  stop_group "$pid"
  for p in "${PIDS[@]}"; do [ "$p" = "$pid" ] || keep+=("$p"); done
  PIDS=("${keep[@]:-}")
}

{
  echo "# cmd=$CMDLINE"
  echo "# machine=$(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(uname -r)"
  echo "# nimbus=$(cd "$REPO" && git rev-parse --short HEAD 2>/dev/null || echo '?')$(cd "$REPO" && [ -n "$(git status --porcelain -- src include Makefile 2>/dev/null)" ] && echo ' + uncommitted changes' || true)"
  echo "# wrk=-t$THREADS -c$CONNS -d${DURATION}s --latency (after ${WARMUP}s warm-up)"
  echo "# wrk_version=$("$WRK" -v 2>&1 | head -1 | cut -d' ' -f1-2)"
  echo "# nginx_version=$("$NGINX" -v 2>&1 | sed 's/^nginx version: //')"
  echo "# python=$("$PY" --version 2>&1)"
} >>"$OUT"
log "$(sed -n 's/^# machine=/machine: /p' "$OUT")"
log "$(sed -n 's/^# nimbus=/nimbus: /p' "$OUT"); work dir $WORK"

for RUN in $(seq "$RUNS"); do
  for s in "${LIST[@]}"; do
    case "$s" in
      nginx|native|native-inproc|custom|custom-forward|handler-direct) bench_one "$s" ;;
      *) log "unknown server $s (nginx, native, native-inproc, custom, custom-forward, handler-direct)"; exit 2 ;;
    esac
  done
  if [ "$STARTS" -gt 0 ]; then
    log "== run $RUN: start-up, $NFUNC functions, $STARTS starts"
    wait_idle
    while read -r line; do
      record startup "functions=$NFUNC $line idle_before_pct=$IDLE_NOW"
      log "   $line"
    done < <("$PY" "$WORK/startup.py" "$NIMBUS" "$SAPP" "$STARTS" "$WORK/startup.pids" "$FIRST_ROUTE")
  fi
done

summary "$OUT"
log "raw results: $OUT"
