"""examples/twofactor end to end (its README.md): getcode calls the keyed
number function by itself, the watcher stores the code in table validcodes
and re-queues it for CODE_VALID_SECONDS, verify answers while it is there.

The app is copied to tmp (its settings are changed there: CODE_VALID_SECONDS
30) and served on free ports, with no WEBSITE_HOSTNAME given: the host must
tell the functions where it listens. Expiry is reached by moving the server
clock, not by waiting.
"""
import collections
import datetime as dt
import http.client
import json
import re
import select
import shutil
import socket
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import TableServiceClient
from azure.storage.queue import (QueueClient, QueueServiceClient, TextBase64DecodePolicy,
                                 TextBase64EncodePolicy)

from conftest import NIMBUS_BIN, Nimbus
from conftest import wait_until as wait_for

APP = Path(__file__).resolve().parents[2] / "examples" / "twofactor"
VALID_SECONDS = 30
CODE = re.compile(r"^[A-Za-z]{3}-\d+-[A-Za-z]{3}$")


def copy_app(dest, **settings):
    """The example in dest, with these Values changed in local.settings.json."""
    if not (APP / "bin" / "twofactor.so").is_file():
        pytest.fail("%s is missing: run `make apps` first" % (APP / "bin" / "twofactor.so"))
    shutil.copytree(APP, dest, ignore=shutil.ignore_patterns(".nimbus"))
    ls = dest / "local.settings.json"
    doc = json.loads(ls.read_text())
    doc["Values"].update(settings)
    ls.write_text(json.dumps(doc, indent=2))
    return dest


def start(workdir, app):
    srv = Nimbus(workdir, app_dir=app)
    srv.env.pop("WEBSITE_HOSTNAME", None)     # the host provides it
    return srv.start()


def request(srv, method, path, headers=None, timeout=15):
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
    try:
        c.request(method, path, headers=dict(headers or {}))
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def get_json(srv, path, headers=None):
    status, h, body = request(srv, "GET", path, headers)
    assert status == 200, (path, status, body)
    assert h["content-type"] == "application/json"
    return json.loads(body)


def verify(srv, code):
    return get_json(srv, "/api/v1/verify?code=" + urllib.parse.quote(code))




def validcodes(srv):
    svc = TableServiceClient.from_connection_string(srv.full_conn_str())
    return svc.get_table_client("validcodes")


def number_key(srv):
    p = subprocess.run([NIMBUS_BIN, "keys", "show", "default", "--function", "number",
                        "--data", str(srv.data_dir)], capture_output=True, text=True,
                       timeout=10)
    assert p.returncode == 0, p.stderr
    return p.stdout.strip()


@pytest.fixture(scope="module")
def tf(tmp_path_factory):
    base = tmp_path_factory.mktemp("twofactor")
    app = copy_app(base / "app", CODE_VALID_SECONDS=str(VALID_SECONDS))
    srv = start(base / "srv", app)
    yield srv
    rc = srv.stop()
    assert rc == 0, "nimbus exited %r after SIGTERM (want 0)\n%s" % (rc, srv.stderr_tail())


def test_app_copy_names_no_host(tf):
    settings = json.loads((tf.app_dir / "local.settings.json").read_text())["Values"]
    assert "WEBSITE_HOSTNAME" not in settings
    assert settings["NUMBER_API_KEY"] == "@Nimbus.FunctionKey(number)"
    assert tf.port != 7071


def test_getcode_answers_a_code(tf):
    got = get_json(tf, "/api/v1/getcode")
    assert set(got) == {"code", "timestamp"}, got
    assert CODE.match(got["code"]), got
    assert 100 <= int(got["code"].split("-")[1]) <= 999
    ts = dt.datetime.strptime(got["timestamp"], "%Y-%m-%d %H:%M:%S.%f")
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    assert abs((ts - now).total_seconds()) < 60
    codes = {get_json(tf, "/api/v1/getcode")["code"] for _ in range(5)}
    assert len(codes) == 5


def test_code_lifecycle(tf):
    got = get_json(tf, "/api/v1/getcode")
    code = got["code"]
    # valid once the watcher has seen the queue message
    wait_for("verify to say valid", lambda: verify(tf, code) == {"valid": True}, 10)
    entity = validcodes(tf).get_entity("codes", code)
    assert entity["PartitionKey"] == "codes" and entity["RowKey"] == code
    assert entity["IssuedAt"] == got["timestamp"]

    # still valid before CODE_VALID_SECONDS have passed
    tf.advance(VALID_SECONDS - 5)
    time.sleep(0.5)
    assert verify(tf, code) == {"valid": True}

    # past it: the re-queued message is visible, the watcher removes the code
    tf.advance(6)
    wait_for("verify to say invalid", lambda: verify(tf, code) == {"valid": False}, 10)
    with pytest.raises(ResourceNotFoundError):
        validcodes(tf).get_entity("codes", code)
    # and the message is gone for good (no poison, nothing left to retry)
    tf.advance(VALID_SECONDS + 5)
    time.sleep(0.3)
    assert verify(tf, code) == {"valid": False}
    assert "codes-poison" not in queue_names(tf)


def queue_names(srv):
    svc = QueueServiceClient.from_connection_string(srv.full_conn_str())
    return [q.name for q in svc.list_queues()]


def table_names(srv):
    svc = TableServiceClient.from_connection_string(srv.full_conn_str())
    return [t.name for t in svc.list_tables()]


def test_malformed_message_goes_to_codes_poison(tf):
    """The watcher fails on a message that is not {"code": ...}; after
    maxDequeueCount (5) attempts it is in codes-poison."""
    q = QueueClient.from_connection_string(
        tf.full_conn_str(), "codes", message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy())
    q.send_message('{"nocode": 1}')
    poison = QueueClient.from_connection_string(
        tf.full_conn_str(), "codes-poison", message_decode_policy=TextBase64DecodePolicy())

    def poisoned():
        if "codes-poison" not in queue_names(tf):
            return False
        return [m.content for m in poison.peek_messages(max_messages=32)]

    deadline = time.monotonic() + 15
    while not poisoned():
        assert time.monotonic() < deadline, "never poisoned\n" + tf.stderr_tail()
        tf.advance(5.5)          # past visibilityTimeout (5 s in host.json)
        time.sleep(0.1)
    assert poisoned() == ['{"nocode": 1}']
    assert len(re.findall(r"function watcher failed on message", tf.stderr_path.read_text(
        errors="replace"))) >= 4
    assert "moved to codes-poison" in tf.stderr_path.read_text(errors="replace")


def burst(port, path, n, deadline):
    """Send n requests on n connections at once (one thread, so they really
    arrive together); (Counter of statuses, seconds until the last answer,
    or None when some had not answered by the deadline)."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(n)]
    try:
        req = ("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
               % path).encode()
        t0 = time.monotonic()
        for s in socks:
            s.sendall(req)
        got = {s: b"" for s in socks}
        open_ = set(socks)
        while open_ and time.monotonic() - t0 < deadline:
            ready, _, _ = select.select(list(open_), [], [], 0.5)
            for s in ready:
                data = s.recv(65536)
                if data:
                    got[s] += data
                else:
                    open_.discard(s)
        took = None if open_ else time.monotonic() - t0
        return collections.Counter(v.split(b" ", 2)[1].decode() if v else "none"
                                   for v in got.values()), took
    finally:
        for s in socks:
            s.close()


def test_getcode_burst_does_not_starve_workers(tmp_path):
    """getcode calls number through the host while it holds a worker
    (functions-in-c.md: "that call runs in another worker"). A burst larger
    than the worker pool must not leave every worker holding a getcode whose
    number call waits for a free worker (each would then fail after
    getcode's 10 s client timeout with "Could not get you a code.")."""
    app = copy_app(tmp_path / "app", CODE_VALID_SECONDS=str(VALID_SECONDS))
    srv = start(tmp_path / "srv", app)
    ok = False
    try:
        statuses, took = burst(srv.port, "/api/v1/getcode", 100, 12)
        ok = statuses == {"200": 100} and took is not None and took < 5
        assert ok, "answers %s, all in %s s" % (dict(statuses), took)
    finally:
        if ok:
            rc = srv.stop()
        else:
            srv.kill()   # stuck invocations would hold up a clean stop
    assert rc == 0, srv.stderr_tail()


def test_verify_unknown_and_missing_code(tf):
    assert verify(tf, "abc-123-def") == {"valid": False}
    assert verify(tf, "") == {"valid": False}
    assert get_json(tf, "/api/v1/verify") == {"valid": False}


def test_number_needs_its_key(tf):
    assert request(tf, "GET", "/api/v1/number")[0] == 401
    assert request(tf, "GET", "/api/v1/number", {"x-functions-key": "wrong"})[0] == 401
    key = number_key(tf)
    got = get_json(tf, "/api/v1/number", {"x-functions-key": key})
    assert isinstance(got["value"], int) and 100 <= got["value"] <= 999, got
    got = get_json(tf, "/api/v1/number?code=" + urllib.parse.quote(key))
    assert 100 <= got["value"] <= 999


def test_wrong_number_key_gives_no_code(tmp_path):
    app = copy_app(tmp_path / "app", NUMBER_API_KEY="not-the-key")
    srv = start(tmp_path / "srv", app)
    try:
        status, headers, body = request(srv, "GET", "/api/v1/getcode")
        assert (status, body) == (401, b"Could not get you a code.")
        assert headers["content-type"] == "text/plain"
        # nothing was queued, so nothing becomes valid
        assert "codes" not in queue_names(srv)
        assert "validcodes" not in table_names(srv)
    finally:
        rc = srv.stop()
    assert rc == 0, srv.stderr_tail()

