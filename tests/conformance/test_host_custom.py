"""The function host with a custom handler (the Azure custom-handler
protocol, docs/functions.md "Workers"): what the handler is sent, what the
host does with its answer (HTTP response, queue outputs, logs), queue
triggers, a handler that dies, and forwarding mode.

Serves tests/conformance/apps/custom (Python handler.py) as it is, and
apps/custom_fwd (enableForwardingHttpRequest) on a second server.
"""
import base64
import datetime as dt
import http.client
import json
import os
import re
import signal
import uuid
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import (QueueClient, QueueServiceClient, TextBase64DecodePolicy,
                                 TextBase64EncodePolicy)

from conftest import Nimbus
from conftest import host_call as request, wait_until as wait_for

APPS = Path(__file__).resolve().parent / "apps"
NIMBUS_APP = str(APPS / "custom")
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)




def queue(srv, name, **kw):
    return QueueClient.from_connection_string(srv.full_conn_str(), name, **kw)


def b64_queue(srv, name):
    """Messages base64 both ways, as host.json's default messageEncoding."""
    return queue(srv, name, message_encode_policy=TextBase64EncodePolicy(),
                 message_decode_policy=TextBase64DecodePolicy())


def parse_iso(s):
    """'2026-01-05T09:15:00.1230000Z' or '...+00:00' -> aware datetime."""
    m = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]00:00)$", s)
    assert m, s
    t = dt.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc)
    return t + dt.timedelta(microseconds=int(((m.group(2) or "") + "000000")[:6]))




def peek_texts(srv, name, decode=False):
    """The text of every visible message of a queue, base64-decoded with
    decode ([] when the queue does not exist)."""
    q = b64_queue(srv, name) if decode else queue(srv, name)
    try:
        return [m.content for m in q.peek_messages(max_messages=32)]
    except Exception as e:
        if getattr(e, "status_code", None) == 404:
            return []
        raise


def ci(d, name):
    """d[name] with a case-insensitive name (None when absent)."""
    for k, v in (d or {}).items():
        if k.lower() == name.lower():
            return v
    return None


def echo(srv):
    status, _, body = request(srv, "GET", "/api/echo/1")
    assert status == 200, body
    return json.loads(body)


# --- HTTP ------------------------------------------------------------------------------

def test_hello(nimbus):
    status, headers, body = request(nimbus, "GET", "/api/hello")
    assert (status, body) == (200, b"hello")
    assert headers["content-type"] == "text/plain"


def test_echo_request_as_the_handler_sees_it(nimbus):
    status, headers, body = request(
        nimbus, "POST", "/api/echo/42?a=1&b=two%20words",
        body=b"payload text", headers={"X-Test": "hi", "Content-Type": "text/plain"})
    assert status == 200, body
    assert headers["content-type"] == "application/json"
    got = json.loads(body)
    req = got["req"]
    assert req["Url"] == "http://127.0.0.1:%d/api/echo/42?a=1&b=two%%20words" % nimbus.port
    assert req["Method"] == "POST"
    assert req["Query"] == {"a": "1", "b": "two words"}
    # headers: name -> array of values
    assert all(isinstance(v, list) for v in req["Headers"].values()), req["Headers"]
    assert ci(req["Headers"], "X-Test") == ["hi"]
    assert ci(req["Headers"], "Content-Type") == ["text/plain"]
    assert req["Params"] == {"id": "42"}
    assert req["Body"] == "payload text"
    assert got["Metadata"]["sys"]["MethodName"] == "echo"
    assert GUID.match(got["Metadata"]["sys"]["RandGuid"])
    # the invocation request itself
    host = got["HostRequest"]
    assert host["Method"] == "POST"
    assert host["Path"] == "/echo"
    inv = ci(host["Headers"], "X-Azure-Functions-InvocationId")
    assert inv and GUID.match(inv), host["Headers"]
    assert ci(host["Headers"], "X-Azure-Functions-HostVersion")
    assert "application/json" in (ci(host["Headers"], "Content-Type") or "")


def test_echo_query_plus_is_a_space(nimbus):
    """Data.req.Query as Azure builds it from ASP.NET Core's parsed query:
    '+' is a space, %2B a '+'; repeated names are joined with ','."""
    status, _, body = request(nimbus, "GET", "/api/echo/3?y=a+b&z=%2B&r=1&r=2")
    assert status == 200, body
    assert json.loads(body)["req"]["Query"] == {"y": "a b", "z": "+", "r": "1,2"}


def test_handler_environment(nimbus):
    """App settings plus what the host adds: the handler's port, where the host
    listens, and a usable storage connection string for this server."""
    env = echo(nimbus)["Env"]
    assert env["FUNCTIONS_WORKER_RUNTIME"] == "custom"          # from local.settings.json
    assert int(env["FUNCTIONS_CUSTOMHANDLER_PORT"]) > 0
    assert env["WEBSITE_HOSTNAME"] == "127.0.0.1:%d" % nimbus.port
    conn = env["AzureWebJobsStorage"]
    assert "UseDevelopmentStorage" not in conn
    assert "QueueEndpoint=http://127.0.0.1:%d/devstoreaccount1" % nimbus.queue_port in conn
    assert "TableEndpoint=http://127.0.0.1:%d/devstoreaccount1" % nimbus.table_port in conn
    # the official SDK works with it as it is
    name = "envcheck" + uuid.uuid4().hex[:8]
    QueueClient.from_connection_string(conn, name).create_queue()
    assert name in [q.name for q in
                    QueueServiceClient.from_connection_string(nimbus.full_conn_str())
                    .list_queues()]


def test_echo_invocation_ids_differ(nimbus):
    ids = {ci(echo(nimbus)["HostRequest"]["Headers"], "X-Azure-Functions-InvocationId")
           for _ in range(3)}
    assert len(ids) == 3


def test_enqueue_two_messages_and_log(nimbus):
    text = "msg-" + uuid.uuid4().hex
    status, _, body = request(nimbus, "POST", "/api/enqueue", body=text.encode(),
                              headers={"Content-Type": "text/plain"})
    assert (status, body) == (200, b"enqueued 2")
    raw = [t for t in peek_texts(nimbus, "chout")
           if base64.b64decode(t).decode().startswith(text)]
    # messageEncoding base64 (the default): the stored text is base64
    assert sorted(base64.b64decode(t).decode() for t in raw) == [text, text + "!"]
    decoded = peek_texts(nimbus, "chout", decode=True)
    assert text in decoded and text + "!" in decoded
    wait_for("the handler's Logs line in the server log",
             lambda: "[enqueue] enqueued 2" in nimbus.stderr_path.read_text(errors="replace"), 5)


def test_queue_trigger_qfn(nimbus):
    text = "item-" + uuid.uuid4().hex
    q = b64_queue(nimbus, "chin")
    try:
        q.create_queue()
    except ResourceExistsError:
        pass
    q.send_message(text)
    wait_for("seen:%s on chresult" % text,
             lambda: "seen:" + text in peek_texts(nimbus, "chresult", decode=True), 5)
    # done: the trigger message is deleted
    wait_for("chin to be empty", lambda: not peek_texts(nimbus, "chin"), 5)


def test_queue_trigger_metadata(nimbus):
    text = "meta-" + uuid.uuid4().hex
    q = b64_queue(nimbus, "chin")
    try:
        q.create_queue()
    except ResourceExistsError:
        pass
    sent = q.send_message(text)

    def meta():
        for m in peek_texts(nimbus, "chresult", decode=True):
            if m.startswith("meta:"):
                md = json.loads(m[len("meta:"):])
                if md.get("Id") == sent.id:
                    return md
        return None
    md = wait_for("the metadata message on chresult", meta, 5)
    assert "seen:" + text in peek_texts(nimbus, "chresult", decode=True)
    assert md["DequeueCount"] == 1
    for k in ("InsertionTime", "ExpirationTime", "NextVisibleTime", "PopReceipt"):
        assert md.get(k), (k, md)
    inserted = parse_iso(md["InsertionTime"])
    assert parse_iso(md["ExpirationTime"]) - inserted == dt.timedelta(days=7)  # default TTL
    assert parse_iso(md["NextVisibleTime"]) > inserted       # held while the function runs
    assert md["sys"]["MethodName"] == "qfn"
    assert GUID.match(md["sys"]["RandGuid"])


# --- a handler that dies ------------------------------------------------------------------

def test_die_is_500_then_handler_restarted(nimbus):
    pid_before = echo(nimbus)["HostRequest"]["Pid"]
    status, _, body = request(nimbus, "GET", "/api/die")
    assert (status, body) == (500, b"")

    def hello_ok():
        try:
            status, _, body = request(nimbus, "GET", "/api/hello", timeout=5)
        except (OSError, http.client.HTTPException):
            return False
        return (status, body) == (200, b"hello")

    wait_for("hello after the handler died", hello_ok, 10)
    assert echo(nimbus)["HostRequest"]["Pid"] != pid_before


def test_handler_killed_between_invocations_is_restarted(nimbus):
    """A handler that dies outside any invocation (here: SIGKILL) is
    restarted too; requests are served again within a deadline (a handler
    that keeps dying young is restarted after a growing delay: 1 s here)."""
    pid = echo(nimbus)["HostRequest"]["Pid"]
    os.kill(pid, signal.SIGKILL)   # the handler our server started

    def new_pid():
        try:
            got = echo(nimbus)
        except (AssertionError, OSError, http.client.HTTPException):
            return None
        return got["HostRequest"]["Pid"] != pid and got["HostRequest"]["Pid"]

    wait_for("a restarted handler", new_pid, 10)
    assert request(nimbus, "GET", "/api/hello")[2] == b"hello"


# --- forwarding mode ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def fwd(tmp_path_factory):
    srv = Nimbus(tmp_path_factory.mktemp("fwd"), app_dir=APPS / "custom_fwd").start()
    yield srv
    rc = srv.stop()
    assert rc == 0, "nimbus exited %r after SIGTERM (want 0)\n%s" % (rc, srv.stderr_tail())


def test_forwarding_relays_reply_verbatim(fwd):
    status, headers, body = request(fwd, "GET", "/api/hello?x=1&y=2")
    assert status == 201
    assert headers.get("x-handler") == "fwd"
    assert body == b"fwd:x=1&y=2"


def test_forwarding_unknown_route_is_404_from_host(fwd):
    status, _, _ = request(fwd, "GET", "/api/nothere")
    assert status == 404
