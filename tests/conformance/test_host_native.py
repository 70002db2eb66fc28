"""The function host with native (C) functions: requests reach the function
as documented, and a crash, a hang or a failure fails that one invocation
only (docs/functions.md "Workers", docs/functions-in-c.md "Isolation").

Serves tests/conformance/apps/native (build it with `make apps`) as it is:
host.json sets functionTimeout to 2 s. The server's data dir is in tmp; a
test that needs a changed app copies it to tmp first.
"""
import concurrent.futures
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import NIMBUS_BIN, Nimbus
from conftest import host_call as request, master_key, saw_segv

APP = Path(__file__).resolve().parent / "apps" / "native"
NIMBUS_APP = str(APP)
FUNCTION_TIMEOUT = 2.0   # host.json functionTimeout of the app


@pytest.fixture(scope="module", autouse=True)
def _app_built():
    for so in ("hello/hello.so", "bin/native.so"):
        if not (APP / so).is_file():
            pytest.fail("%s is missing: run `make apps` first" % (APP / so))






def hello_ok(srv):
    status, headers, body = request(srv, "GET", "/api/hello")
    assert (status, body) == (200, b"hello"), (status, body)
    return headers


# --- requests -------------------------------------------------------------------

def test_hello_get(nimbus):
    headers = hello_ok(nimbus)
    assert headers["content-type"] == "text/plain"


def test_hello_post(nimbus):
    status, headers, body = request(nimbus, "POST", "/api/hello", body=b"ignored",
                                    headers={"Content-Type": "text/plain"})
    assert (status, body) == (200, b"hello")
    assert headers["content-type"] == "text/plain"


def test_hello_other_method_is_405(nimbus):
    status, _, _ = request(nimbus, "DELETE", "/api/hello")
    assert status == 405


def test_echo_get_fields(nimbus):
    status, headers, body = request(
        nimbus, "GET", "/api/echo/a/b%20c?x=1&y=two%20words&e=%C3%A9",
        headers={"X-Test": "hi there"})
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    got = json.loads(body)
    assert got["method"] == "GET"
    assert got["path"] == "/api/echo/a/b%20c"          # still %-encoded
    assert got["rest"] == "a/b c"                       # route values are decoded
    assert got["query"] == {"x": "1", "y": "two words", "e": "\u00e9"}
    assert got["headers"] == {"x-test": "hi there"}     # header names case-insensitive
    assert got["body_len"] == 0


def test_echo_query_plus_is_a_space(nimbus):
    """As ASP.NET Core parses a query (QueryHelpers: '+' -> ' ', then
    %-decoding), so Azure's req.Query sees "a b" for ?y=a+b; %2B is a '+'."""
    status, _, body = request(nimbus, "GET", "/api/echo/p?y=a+b&z=%2B&w=1+%2B+1")
    assert status == 200, body
    assert json.loads(body)["query"] == {"y": "a b", "z": "+", "w": "1 + 1"}


def test_echo_post_body_and_method(nimbus):
    payload = b'{"k": "v", "n": [1, 2, 3]}'
    status, _, body = request(nimbus, "PUT", "/api/echo/items/7", body=payload,
                              headers={"Content-Type": "application/json"})
    assert status == 200, body
    got = json.loads(body)
    assert got["method"] == "PUT"
    assert got["rest"] == "items/7"
    assert got["query"] == {}
    assert got["headers"] == {}
    assert got["body_len"] == len(payload)


def test_echo_raw_binary_roundtrip(nimbus):
    payload = bytes(range(256)) * 64 + b"\x00\x00\xff"   # every byte value, NULs inside
    status, headers, body = request(nimbus, "POST", "/api/echo/bin?raw=1", body=payload,
                                    headers={"Content-Type": "application/octet-stream"})
    assert status == 200
    assert headers["content-type"] == "application/octet-stream"
    assert body == payload


def test_no_http_output_is_204(nimbus):
    status, _, body = request(nimbus, "GET", "/api/nobody")
    assert (status, body) == (204, b"")


# --- failures stay contained ---------------------------------------------------------

def test_crash_is_500_and_host_keeps_serving(nimbus):
    status, _, body = request(nimbus, "GET", "/api/crash")
    assert (status, body) == (500, b"")
    hello_ok(nimbus)
    # the reason is in the log, not in the answer
    deadline = time.monotonic() + 5
    while not saw_segv(nimbus.stderr_path.read_text(errors="replace")):
        assert time.monotonic() < deadline, nimbus.stderr_tail()
        time.sleep(0.05)


def test_crashes_in_a_row_then_burst(nimbus):
    for _ in range(5):
        status, _, body = request(nimbus, "GET", "/api/crash")
        assert (status, body) == (500, b"")
    with concurrent.futures.ThreadPoolExecutor(50) as pool:
        results = list(pool.map(lambda _: request(nimbus, "GET", "/api/hello"), range(50)))
    assert [(s, b) for s, _, b in results] == [(200, b"hello")] * 50


def test_concurrent_crashes_and_hellos(nimbus):
    """Crashes in some workers while others serve: only the crashes fail."""
    paths = ["/api/crash" if i % 4 == 0 else "/api/hello" for i in range(40)]
    with concurrent.futures.ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda p: request(nimbus, "GET", p), paths))
    for p, (status, _, body) in zip(paths, results):
        assert (status, body) == ((500, b"") if p == "/api/crash" else (200, b"hello")), p
    hello_ok(nimbus)


def test_hang_times_out_then_host_serves(nimbus):
    t0 = time.monotonic()
    status, _, body = request(nimbus, "GET", "/api/hang", timeout=30)
    elapsed = time.monotonic() - t0
    assert (status, body) == (500, b"")
    assert FUNCTION_TIMEOUT - 0.2 <= elapsed < 10, elapsed
    t1 = time.monotonic()
    hello_ok(nimbus)
    assert time.monotonic() - t1 < 2
    assert "timed out" in nimbus.stderr_path.read_text(errors="replace")


def test_hang_does_not_block_others(nimbus):
    """While one worker hangs, other requests are served at once."""
    with concurrent.futures.ThreadPoolExecutor(2) as pool:
        hung = pool.submit(request, nimbus, "GET", "/api/hang", None, None, 30)
        time.sleep(0.2)
        t0 = time.monotonic()
        for _ in range(5):
            hello_ok(nimbus)
        assert time.monotonic() - t0 < FUNCTION_TIMEOUT - 0.5
        status, _, _ = hung.result()
    assert status == 500


def test_fail_is_500_with_empty_body(nimbus):
    status, _, body = request(nimbus, "GET", "/api/fail")
    assert (status, body) == (500, b"")
    assert "failing on purpose" in nimbus.stderr_path.read_text(errors="replace")
    hello_ok(nimbus)


def test_32_parallel_requests(nimbus):
    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        results = list(pool.map(lambda _: request(nimbus, "GET", "/api/hello"), range(32)))
    assert [(s, b) for s, _, b in results] == [(200, b"hello")] * 32


def test_32_parallel_echoes_do_not_mix(nimbus):
    def one(i):
        status, _, body = request(nimbus, "POST", "/api/echo/n/%d?i=%d" % (i, i),
                                  body=b"x" * i, headers={"X-Test": "t%d" % i})
        assert status == 200, body
        return json.loads(body)

    with concurrent.futures.ThreadPoolExecutor(32) as pool:
        got = list(pool.map(one, range(32)))
    for i, g in enumerate(got):
        assert (g["rest"], g["query"], g["headers"], g["body_len"]) == \
            ("n/%d" % i, {"i": str(i)}, {"x-test": "t%d" % i}, i)


# --- auth levels ------------------------------------------------------------------------

def test_function_and_admin_auth_levels(nimbus):
    assert request(nimbus, "GET", "/api/keyed")[0] == 401
    p = subprocess.run([NIMBUS_BIN, "keys", "show", "default", "--function", "keyed",
                        "--data", str(nimbus.data_dir)], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 0, p.stderr
    fkey = p.stdout.strip()
    status, _, body = request(nimbus, "GET", "/api/keyed", headers={"x-functions-key": fkey})
    assert (status, body) == (200, b"ok")
    assert request(nimbus, "GET", "/api/keyed?code=" + fkey)[0] == 200
    assert request(nimbus, "GET", "/api/adminonly", headers={"x-functions-key": fkey})[0] == 401
    status, _, body = request(nimbus, "GET", "/api/adminonly",
                              headers={"x-functions-key": master_key(nimbus)})
    assert (status, body) == (200, b"ok")


# --- a function whose shared object is missing -----------------------------------------

def set_function_json(app, fn, **changes):
    p = app / fn / "function.json"
    doc = json.loads(p.read_text())
    doc.update(changes)
    p.write_text(json.dumps(doc))


def test_missing_so_is_reported_and_skipped(tmp_path):
    app = tmp_path / "app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns(".nimbus", "src", "Makefile"))
    (app / "hello" / "hello.so").unlink()
    # found at start but unusable at run time: those invocations fail alone
    set_function_json(app, "crash", entryPoint="does_not_exist")
    (app / "fail" / "bad.so").write_text("not a shared object\n")
    set_function_json(app, "fail", scriptFile="bad.so")
    srv = Nimbus(tmp_path / "srv", app_dir=app).start()
    try:
        out = srv.stdout_text()
        problems = out[out.find("Problems"):]
        assert "Problems" in out, out
        assert "hello/function.json" in problems and "hello.so" in problems, out
        # hello is left out; everything else runs
        assert "hello: [" not in out.split("Problems")[0], out
        assert request(srv, "GET", "/api/hello")[0] == 404
        status, _, body = request(srv, "GET", "/api/echo/x")
        assert status == 200 and json.loads(body)["rest"] == "x"
        status, _, body = request(srv, "GET", "/admin/host/status",
                                  headers={"x-functions-key": master_key(srv)})
        assert status == 200, body
        assert json.loads(body)["problemCount"] >= 1
        for fn in ("crash", "fail", "crash"):
            status, _, body = request(srv, "GET", "/api/" + fn)
            assert (status, body) == (500, b""), fn
            assert request(srv, "GET", "/api/echo/y")[0] == 200
        log = srv.stderr_path.read_text(errors="replace")
        assert "does_not_exist" in log and "bad.so" in log, log
    finally:
        rc = srv.stop()
    assert rc == 0, srv.stderr_tail()


# --- --native-in-process ------------------------------------------------------------

def test_native_in_process_mode(tmp_path):
    """The opt-in speed mode runs the same shared objects inside the server:
    same answers, bindings and logs, and no worker processes."""
    srv = Nimbus(tmp_path / "srv", app_dir=APP, extra_args=["--native-in-process"]).start()
    try:
        hello_ok(srv)
        status, _, body = request(srv, "POST", "/api/echo/a/b?x=1", body=b"\x00\xffz",
                                  headers={"X-Test": "t"})
        assert status == 200, body
        got = json.loads(body)
        assert (got["method"], got["rest"], got["query"], got["body_len"]) == \
            ("POST", "a/b", {"x": "1"}, 3)
        status, _, body = request(srv, "POST", "/api/echo/raw?raw=1", body=b"\x00\x01bin\xff",
                                  headers={"Content-Type": "application/octet-stream"})
        assert (status, body) == (200, b"\x00\x01bin\xff")
        assert request(srv, "GET", "/api/nobody")[0] == 204
        status, _, body = request(srv, "GET", "/api/fail")
        assert (status, body) == (500, b"")
        assert request(srv, "GET", "/api/keyed")[0] == 401
        # No `nimbus worker` process was started for this server.
        children = subprocess.run(["pgrep", "-P", str(srv.proc.pid)], capture_output=True,
                                  text=True).stdout.split()
        assert children == [], children
        assert "--native-in-process" in srv.stderr_path.read_text(errors="replace")
    finally:
        rc = srv.stop()
    assert rc == 0, srv.stderr_tail()


def test_sigterm_with_a_hung_function_is_bounded(tmp_path):
    """With functionTimeout -1 a hung function never times out; SIGTERM still
    stops the server: 10 s of grace, then the invocation is failed."""
    app = tmp_path / "app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns(".nimbus", "src", "Makefile"))
    host = json.loads((app / "host.json").read_text())
    host["functionTimeout"] = "-1"
    (app / "host.json").write_text(json.dumps(host))
    srv = Nimbus(tmp_path / "srv", app_dir=app).start()
    result = {}

    def hang():
        result["status"] = request(srv, "GET", "/api/hang", timeout=60)[0]

    t = concurrent.futures.ThreadPoolExecutor(1)
    fut = t.submit(hang)
    time.sleep(0.5)                     # the invocation is running
    started = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)   # conftest's stop() allows only 10 s
    srv.proc.wait(30)
    took = time.monotonic() - started
    rc = srv.stop()
    fut.result(timeout=30)
    t.shutdown()
    assert rc == 0, srv.stderr_tail()
    assert took < 20, "shutdown took %.1fs" % took
    assert result["status"] == 500
