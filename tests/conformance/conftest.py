"""Shared harness for the conformance suites: each suite (test module) starts
its own fresh `nimbus start` on free ports with an inline app folder and a
private data dir, and asserts what the official clients (Python SDK, az CLI)
see. Nothing here knows how the server works inside; it only speaks HTTP.

Run with /usr/bin/python3 (Debian's python3-azure lives there):
    NIMBUS_BIN=build/nimbus /usr/bin/python3 -m pytest -q tests/conformance
"""
import base64
import datetime as dt
import email.utils
import faulthandler
import hashlib
import hmac
import http.client
import json
import os
import signal
import socket
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NIMBUS_BIN = os.environ.get("NIMBUS_BIN") or str(REPO / "build" / "nimbus")

DEV_ACCOUNT = "devstoreaccount1"
DEV_KEY = ("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
           "K1SZFPTOtr/KBHBeksoGMGw==")

START_TIMEOUT = 10.0   # seconds until /admin/host/ping must answer 200
STOP_TIMEOUT = 10.0    # seconds a SIGTERM'd server gets to exit 0

# Every server started by this process; the report hook prints the stderr of
# the ones still running next to a failing test.
_LIVE = []


def free_ports(n):
    """n distinct free TCP ports on 127.0.0.1 (bind port 0, read it, close).
    All sockets stay open until every port is picked, so they differ."""
    socks, ports = [], []
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
            ports.append(s.getsockname()[1])
    finally:
        for s in socks:
            s.close()
    return ports


def make_app_dir(path):
    """The inline app folder: a function app with no functions."""
    path.mkdir(parents=True, exist_ok=True)
    (path / "host.json").write_text(json.dumps({"version": "2.0"}))
    return path


def conn_str(endpoint, account=DEV_ACCOUNT, key=DEV_KEY, table_endpoint=None):
    """The only connection-string shape the queue SDK and CLI accept for an
    emulator (spec §0: UseDevelopmentStorage=true fails client-side). With
    table_endpoint, TableEndpoint is added: that full string works for every
    client (queue and table SDKs, every az storage command)."""
    s = ("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;"
         "QueueEndpoint=%s;" % (account, key, endpoint))
    if table_endpoint:
        s += "TableEndpoint=%s;" % table_endpoint
    return s


def table_conn_str(table_endpoint, account=DEV_ACCOUNT, key=DEV_KEY):
    """A table-only connection string (TableEndpoint, no QueueEndpoint)."""
    return ("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;"
            "TableEndpoint=%s;" % (account, key, table_endpoint))


class Netns:
    """A persistent, loopback-only network namespace (`ip netns add`).

    Why: az must never reach the internet (telemetry, version checks, and
    `queue stats` defaulting to a real *.core.windows.net host), and
    `unshare -n` per command would give every az call its own empty
    namespace in which our server (listening on 127.0.0.1 elsewhere) is
    unreachable. A named namespace lets the server and every az call share one
    loopback. We are root, and iproute2 is a build dependency. `ip netns exec`
    execs the command in place (no fork), so the Popen pid is the server's own
    pid and SIGTERM / SIGKILL reach it directly."""

    def __init__(self, name):
        self.name = name
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
        subprocess.run(["ip", "netns", "add", name], check=True)
        subprocess.run(["ip", "netns", "exec", name, "ip", "link", "set", "lo", "up"],
                       check=True)

    def prefix(self):
        return ["ip", "netns", "exec", self.name]

    def delete(self):
        subprocess.run(["ip", "netns", "del", self.name], capture_output=True)

    def python(self, code, timeout=60):
        """Run `/usr/bin/python3 -c code` inside the namespace (so it can reach
        a server started there, e.g. with an official SDK) and return its
        stdout parsed as JSON. A failing child raises AssertionError with its
        stderr."""
        p = subprocess.run(self.prefix() + ["/usr/bin/python3", "-c", code],
                           capture_output=True, timeout=timeout)
        out = p.stdout.decode(errors="replace")
        if p.returncode != 0:
            raise AssertionError("python in netns failed (rc %d):\n%s\n%s"
                                 % (p.returncode, p.stderr.decode(errors="replace"), out))
        return json.loads(out) if out.strip() else None


class Nimbus:
    """One `nimbus start` process and everything a test needs to talk to it."""

    def __init__(self, workdir, data_dir=None, extra_args=(), env=None,
                 test_hooks=True, netns=None, ports=None, app_dir=None):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        # app_dir: an existing function app folder, served as it is.
        self.app_dir = Path(app_dir) if app_dir else make_app_dir(self.workdir / "app")
        self.data_dir = Path(data_dir) if data_dir else self.workdir / "data"
        self.extra_args = list(extra_args)
        self.env = dict(os.environ)
        self.env.pop("AZURITE_ACCOUNTS", None)
        self.env.update(env or {})
        self.test_hooks = test_hooks
        self.netns = netns
        self.port, self.queue_port, self.table_port = ports or free_ports(3)
        self.account, self.key = DEV_ACCOUNT, DEV_KEY
        self.proc = None
        self.starts = 0
        self.clock_offset = 0.0   # server clock minus our clock, seconds

    # -- endpoints ---------------------------------------------------------
    @property
    def host_url(self):
        return "http://127.0.0.1:%d" % self.port

    @property
    def queue_url(self):
        return "http://127.0.0.1:%d" % self.queue_port

    def queue_endpoint(self, account=DEV_ACCOUNT):
        return "%s/%s" % (self.queue_url, account)

    def conn_str(self, account=DEV_ACCOUNT, key=DEV_KEY):
        return conn_str(self.queue_endpoint(account), account, key)

    @property
    def table_url(self):
        return "http://127.0.0.1:%d" % self.table_port

    def table_endpoint(self, account=DEV_ACCOUNT):
        """Always 127.0.0.1, never localhost: azure-data-tables treats
        localhost on a port other than 10002 as Cosmos (spec §0)."""
        return "%s/%s" % (self.table_url, account)

    def table_conn_str(self, account=DEV_ACCOUNT, key=DEV_KEY):
        return table_conn_str(self.table_endpoint(account), account, key)

    def full_conn_str(self, account=DEV_ACCOUNT, key=DEV_KEY):
        """QueueEndpoint and TableEndpoint: works for every client."""
        return conn_str(self.queue_endpoint(account), account, key,
                        table_endpoint=self.table_endpoint(account))

    @property
    def stdout_path(self):
        return self.workdir / ("stdout.%d.log" % self.starts)

    @property
    def stderr_path(self):
        return self.workdir / ("stderr.%d.log" % self.starts)

    # -- lifecycle ---------------------------------------------------------
    def command(self):
        cmd = [NIMBUS_BIN, "start", str(self.app_dir), "--data", str(self.data_dir),
               "--host", "127.0.0.1",
               "--port", str(self.port), "--queue-port", str(self.queue_port),
               "--table-port", str(self.table_port)]
        if self.test_hooks:
            cmd.append("--enable-test-hooks")
        cmd += self.extra_args
        if self.netns:
            cmd = self.netns.prefix() + cmd
        return cmd

    def start(self):
        if not os.access(NIMBUS_BIN, os.X_OK):
            pytest.fail("nimbus binary %s is missing (make build/nimbus, or set NIMBUS_BIN)"
                        % NIMBUS_BIN)
        self.starts += 1
        self.clock_offset = 0.0
        self._out = open(self.stdout_path, "wb")
        self._err = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(self.command(), stdout=self._out, stderr=self._err,
                                     stdin=subprocess.DEVNULL, env=self.env)
        _LIVE.append(self)
        deadline = time.monotonic() + START_TIMEOUT
        last = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail("nimbus exited with %s during start-up\n%s"
                            % (self.proc.returncode, self.stderr_tail()))
            try:
                status, _, _ = self.host_request("GET", "/admin/host/ping", timeout=1)
                if status == 200:
                    return self
                last = "status %d" % status
            except (OSError, http.client.HTTPException, subprocess.SubprocessError) as e:
                last = repr(e)
            time.sleep(0.05)
        self.kill()
        pytest.fail("nimbus did not answer 200 on /admin/host/ping within %.0fs (last: %s)\n%s"
                    % (START_TIMEOUT, last, self.stderr_tail()))

    def stop(self):
        """SIGTERM and require a clean exit: status 0 within STOP_TIMEOUT."""
        if self.proc is None or self.proc.poll() is not None:
            rc = None if self.proc is None else self.proc.returncode
            self._forget()
            return rc
        self.proc.send_signal(signal.SIGTERM)
        try:
            rc = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            self._forget()
            raise AssertionError("nimbus did not exit within %.0fs of SIGTERM\n%s"
                                 % (STOP_TIMEOUT, self.stderr_tail()))
        self._forget()
        return rc

    def kill(self):
        """SIGKILL (kill -9): no chance to flush or clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()
        self._forget()

    def _forget(self):
        if self in _LIVE:
            _LIVE.remove(self)
        for f in (getattr(self, "_out", None), getattr(self, "_err", None)):
            if f and not f.closed:
                f.close()

    def stdout_text(self):
        try:
            return self.stdout_path.read_text(errors="replace")
        except OSError:
            return ""

    def stderr_tail(self, limit=8000):
        try:
            text = self.stderr_path.read_text(errors="replace")
        except OSError:
            return "(no stderr)"
        return "--- nimbus stderr (%s) ---\n%s" % (self.stderr_path, text[-limit:])

    # -- host listener -----------------------------------------------------
    def host_request(self, method, path, timeout=5):
        """(status, headers, body) of a request to the host listener. Inside a
        netns we cannot connect from here, so a python child in the namespace
        makes the request."""
        if self.netns is None:
            c = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
            try:
                c.request(method, path, headers={"Content-Length": "0"})
                r = c.getresponse()
                return r.status, dict(r.getheaders()), r.read()
            finally:
                c.close()
        code = ("import http.client,sys,json\n"
                "c=http.client.HTTPConnection('127.0.0.1',%d,timeout=%r)\n"
                "c.request(%r,%r,headers={'Content-Length':'0'})\n"
                "r=c.getresponse();b=r.read()\n"
                "print(json.dumps([r.status,dict(r.getheaders()),b.decode('latin-1')]))\n"
                % (self.port, timeout, method, path))
        out = subprocess.run(self.netns.prefix() + ["/usr/bin/python3", "-c", code],
                             capture_output=True, timeout=timeout + 10)
        if out.returncode != 0:
            raise OSError(out.stderr.decode(errors="replace").strip().splitlines()[-1:])
        status, headers, body = json.loads(out.stdout)
        return status, headers, body.encode("latin-1")

    def advance(self, seconds):
        """Move the server clock forward (test hook). Returns server now (s)."""
        ms = int(round(seconds * 1000))
        status, _, body = self.host_request("POST", "/admin/test/clock?advance_ms=%d" % ms)
        assert status == 200, "clock hook answered %d: %r" % (status, body)
        now_ms = json.loads(body)["now_ms"]
        assert isinstance(now_ms, int)
        self.clock_offset = now_ms / 1000.0 - time.time()
        return now_ms / 1000.0

    def server_now(self):
        """Our best estimate of the server clock, as an aware datetime."""
        return dt.datetime.fromtimestamp(time.time() + self.clock_offset, dt.timezone.utc)

    # -- raw queue requests (for what the SDK hides) ------------------------
    def queue_request(self, method, path, body=b"", headers=None, sign=True,
                      account=DEV_ACCOUNT, key=DEV_KEY, timeout=10):
        """Send one raw request to the queue listener, SharedKey-signed per
        spec §1.1 unless sign=False. path includes the account and query,
        already %-encoded. Returns (status, headers(lowercased), body)."""
        h = {"x-ms-version": "2021-02-12",
             "x-ms-date": email.utils.formatdate(usegmt=True),
             "x-ms-client-request-id": str(uuid.uuid4())}
        if body:
            h["Content-Type"] = "application/xml"
        h.update(headers or {})
        h["Content-Length"] = str(len(body))
        if sign:
            h["Authorization"] = sharedkey_queue(method, path, h, account, key)
        c = http.client.HTTPConnection("127.0.0.1", self.queue_port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()


    # -- raw table requests (for what the SDK hides) ------------------------
    def table_request(self, method, path, body=b"", headers=None, sign=True,
                      account=DEV_ACCOUNT, key=DEV_KEY, timeout=10, scheme="SharedKey",
                      accept="application/json;odata=minimalmetadata"):
        """Send one raw request to the table listener, signed per spec §1.2
        (SharedKey) or §1.3 (scheme="SharedKeyLite") unless sign=False. path
        includes the account and query, already %-encoded; a dict/list body
        is sent as JSON. Returns (status, headers(lowercased), body bytes)."""
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        date = email.utils.formatdate(usegmt=True)
        h = {"x-ms-version": "2019-02-02", "x-ms-date": date, "Date": date,
             "DataServiceVersion": "3.0", "x-ms-client-request-id": str(uuid.uuid4())}
        if accept is not None:
            h["Accept"] = accept
        if body:
            h["Content-Type"] = "application/json;odata=nometadata"
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        h["Content-Length"] = str(len(body))
        if sign:
            h["Authorization"] = sharedkey_table(method, path, h, account, key, scheme)
        c = http.client.HTTPConnection("127.0.0.1", self.table_port, timeout=timeout)
        try:
            c.request(method, path, body=body, headers=h)
            r = c.getresponse()
            return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
        finally:
            c.close()


def sharedkey_table(method, path, headers, account, key, scheme="SharedKey"):
    """Authorization header value for the table service (spec §1.2, §1.3):
    only Content-MD5, Content-Type, the date and the path (+ ?comp=) are
    signed."""
    lower = {k.lower(): str(v) for k, v in headers.items()}
    date = lower.get("x-ms-date") or lower.get("date", "")
    parsed = urllib.parse.urlsplit(path)
    resource = "/" + account + parsed.path
    for k, v in urllib.parse.parse_qsl(parsed.query, keep_blank_values=True):
        if k.lower() == "comp":
            resource += "?comp=" + v
            break
    if scheme == "SharedKeyLite":
        sts = date + "\n" + resource
    else:
        sts = "\n".join([method, lower.get("content-md5", ""), lower.get("content-type", ""),
                         date, resource])
    sig = base64.b64encode(hmac.new(base64.b64decode(key), sts.encode("utf-8"),
                                    hashlib.sha256).digest()).decode()
    return "%s %s:%s" % (scheme, account, sig)


def sharedkey_queue(method, path, headers, account, key):
    """Authorization header value for the queue service (spec §1.1)."""
    lower = {k.lower(): str(v) for k, v in headers.items()}
    std = []
    for name in ("content-encoding", "content-language", "content-length", "content-md5",
                 "content-type", "date", "if-modified-since", "if-match", "if-none-match",
                 "if-unmodified-since", "range"):
        v = lower.get(name, "")
        if name == "content-length" and v == "0":
            v = ""
        std.append(v)
    xms = sorted((k, " ".join(v.split())) for k, v in lower.items() if k.startswith("x-ms-"))
    parsed = urllib.parse.urlsplit(path)
    resource = "/" + account + parsed.path
    params = {}
    for k, v in urllib.parse.parse_qsl(parsed.query, keep_blank_values=True):
        params.setdefault(k.lower(), []).append(v)
    for k in sorted(params):
        resource += "\n%s:%s" % (k, ",".join(sorted(params[k])))
    sts = (method + "\n" + "\n".join(std) + "\n"
           + "".join("%s:%s\n" % kv for kv in xms) + resource)
    sig = base64.b64encode(hmac.new(base64.b64decode(key), sts.encode("utf-8"),
                                    hashlib.sha256).digest()).decode()
    return "SharedKey %s:%s" % (account, sig)



# --- helpers shared by the function-host suites ------------------------------------

def host_call(srv, method, path, body=None, headers=None, timeout=15):
    """(status, headers with lower-case names, body bytes) of one request to
    the host listener, on a fresh connection."""
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=dict(headers or {}))
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def wait_until(what, fn, timeout=10.0, interval=0.05):
    """Poll fn() until it returns something truthy (returned); fail after
    timeout seconds naming `what`."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %.0fs waiting for %s" % (timeout, what))
        time.sleep(interval)


# How a worker's segfault shows in the server log: the host reports the
# signal, or, in a sanitizer build (make test SAN=1), ASan reports it first.
SEGV_MARKS = ("Segmentation fault", "AddressSanitizer: SEGV")


def saw_segv(text):
    return any(m in text for m in SEGV_MARKS)


def master_key(srv):
    """The server's master key, read from its data dir with `nimbus keys`."""
    p = subprocess.run([NIMBUS_BIN, "keys", "show", "master", "--data", str(srv.data_dir)],
                       capture_output=True, text=True, timeout=30)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


def start_nimbus(tmp_path_factory, name, **kw):
    return Nimbus(tmp_path_factory.mktemp(name), **kw).start()


@pytest.fixture(scope="module")
def nimbus(request, tmp_path_factory):
    """A fresh server for this suite (module). A module may set NIMBUS_ARGS
    (extra command-line arguments), NIMBUS_ENV (extra environment) and
    NIMBUS_APP (a function app folder to serve)."""
    srv = Nimbus(tmp_path_factory.mktemp("nimbus"),
                 extra_args=getattr(request.module, "NIMBUS_ARGS", ()),
                 env=getattr(request.module, "NIMBUS_ENV", None),
                 app_dir=getattr(request.module, "NIMBUS_APP", None)).start()
    yield srv
    rc = srv.stop()
    assert rc == 0, "nimbus exited %r after SIGTERM (want 0)\n%s" % (rc, srv.stderr_tail())


class Az:
    """Runs the az CLI inside the suite's network namespace, with telemetry
    off and a private config dir (spec §5.12)."""

    def __init__(self, netns, config_dir, srv):
        self.netns = netns
        self.srv = srv
        self.env = dict(os.environ)
        self.env.update({"AZURE_CORE_COLLECT_TELEMETRY": "false",
                         "AZURE_CONFIG_DIR": str(config_dir),
                         "AZURE_CORE_NO_COLOR": "true",
                         "AZURE_CORE_ONLY_SHOW_ERRORS": "true"})
        for k in ("AZURE_STORAGE_CONNECTION_STRING", "AZURE_STORAGE_ACCOUNT",
                  "AZURE_STORAGE_KEY", "AZURE_STORAGE_SAS_TOKEN"):
            self.env.pop(k, None)

    def run(self, *args, conn=True, expect_ok=True, timeout=120):
        """Run `az <args> -o json` and return (rc, parsed stdout or None, stderr).
        conn=True passes the server's queue connection string, a str passes
        that connection string, a false value passes none."""
        cmd = self.netns.prefix() + ["az"] + list(args) + ["-o", "json"]
        if isinstance(conn, str):
            cmd += ["--connection-string", conn]
        elif conn:
            cmd += ["--connection-string", self.srv.conn_str()]
        p = subprocess.run(cmd, capture_output=True, env=self.env, timeout=timeout)
        out = p.stdout.decode(errors="replace").strip()
        err = p.stderr.decode(errors="replace")
        if expect_ok and p.returncode != 0:
            raise AssertionError("az %s failed (rc %d):\n%s\n%s"
                                 % (" ".join(args), p.returncode, err, out))
        try:
            parsed = json.loads(out) if out else None
        except ValueError:
            raise AssertionError("az %s printed non-JSON: %r" % (" ".join(args), out))
        return p.returncode, parsed, err

    def __call__(self, *args, **kw):
        return self.run(*args, **kw)[1]


@pytest.fixture(scope="module")
def az_nimbus(tmp_path_factory):
    """A fresh server inside a private loopback-only namespace, plus an `Az`
    runner in that same namespace (see Netns for why)."""
    ns = Netns("nimbus-test-%d-%d" % (os.getpid(), len(_LIVE)))
    try:
        srv = Nimbus(tmp_path_factory.mktemp("nimbus-az"), netns=ns,
                     ports=[7071, 10001, 10002])
        srv.start()
        az = Az(ns, tmp_path_factory.mktemp("azconfig"), srv)
        yield srv, az
        rc = srv.stop()
        assert rc == 0, "nimbus exited %r after SIGTERM (want 0)\n%s" % (rc, srv.stderr_tail())
    finally:
        for s in list(_LIVE):
            if s.netns is ns:
                s.kill()
        ns.delete()


@pytest.fixture(autouse=True)
def _hang_guard():
    """Dump every thread's stack if one test runs for more than 3 minutes, so
    a hung request shows where it hangs instead of a silent CI timeout."""
    faulthandler.dump_traceback_later(180, exit=False)
    yield
    faulthandler.cancel_dump_traceback_later()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.failed:
        for srv in list(_LIVE):
            rep.sections.append(("nimbus stderr (port %d)" % srv.queue_port,
                                 srv.stderr_tail(4000)))
