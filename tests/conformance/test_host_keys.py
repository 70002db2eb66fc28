"""Function keys, auth levels and the admin API of the function host
(docs/functions.md "Auth levels and keys"; Azure facts in
shared/protocols/function-host.md section 2), and the `nimbus keys` CLI.

The app is generated at test time: one function per auth level (anonymous,
function, admin) plus a second function-level one (to hold "another
function's key") and a timer function (manual runs through the admin API),
all served by the native test app (tests/conformance/apps/native, built by
`make apps`) through absolute scriptFile paths.
"""
import base64
import http.client
import json
import re
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path

import pytest
from azure.storage.queue import QueueClient

from conftest import NIMBUS_BIN, Nimbus

REPO = Path(__file__).resolve().parents[2]
NATIVE_SO = REPO / "tests" / "conformance" / "apps" / "native" / "bin" / "native.so"

KEY_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")   # 32 bytes, URL-safe base64, no padding
SYSTEM_KEY_NAME = "myext_extension"
SYSTEM_KEY = "sys-" + uuid.uuid4().hex        # 36 chars: a valid user-set value


# -- app ------------------------------------------------------------------------------

def _function(app, name, bindings, entry):
    d = app / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "function.json").write_text(json.dumps(
        {"scriptFile": str(NATIVE_SO), "entryPoint": entry, "bindings": bindings}, indent=2))


def _http(app, name, auth, entry, route=None):
    _function(app, name, [
        {"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": auth,
         "methods": ["get", "post"], "route": route or name},
        {"type": "http", "direction": "out", "name": "res"}], entry)


def build_app(app):
    if not NATIVE_SO.is_file():
        pytest.fail("%s is missing: run `make apps` first" % NATIVE_SO)
    app.mkdir(parents=True, exist_ok=True)
    (app / "host.json").write_text(json.dumps({"version": "2.0"}))
    (app / "local.settings.json").write_text(json.dumps({
        "IsEncrypted": False,
        "Values": {"AzureWebJobsStorage": "UseDevelopmentStorage=true",
                   "FUNCTIONS_WORKER_RUNTIME": "native"}}))
    _http(app, "anon", "anonymous", "echo")
    _http(app, "keyed", "function", "keyed")
    _http(app, "other", "function", "keyed")
    _http(app, "adminonly", "admin", "adminonly")
    # once a year: it only runs when asked through the admin API
    _function(app, "tick", [
        {"type": "timerTrigger", "direction": "in", "name": "t", "schedule": "0 0 0 1 1 *"},
        {"type": "queue", "direction": "out", "name": "ticks", "queueName": "ticks"}], "tick")
    return app


# -- requests -------------------------------------------------------------------------

def request(srv, method, path, body=None, key=None, code=None, headers=None, timeout=30):
    """(status, headers with lowercased names, body). key: x-functions-key
    header; code: ?code= (both sent as given, even empty)."""
    if code is not None:
        path += ("&" if "?" in path else "?") + "code=" + urllib.parse.quote(code, safe="")
    h = dict(headers or {})
    if key is not None:
        h["x-functions-key"] = key
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
        h.setdefault("Content-Type", "application/json")
    body = body or b""
    h["Content-Length"] = str(len(body))
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def status_of(srv, path, **kw):
    return request(srv, kw.pop("method", "GET"), path, **kw)[0]


def cli(*args, timeout=30):
    """`nimbus keys ARGS`: (returncode, stdout, stderr)."""
    p = subprocess.run([NIMBUS_BIN, "keys"] + [str(a) for a in args], capture_output=True,
                       text=True, timeout=timeout)
    return p.returncode, p.stdout, p.stderr


def cli_master(data_dir):
    rc, out, err = cli("show", "master", "--data", data_dir)
    assert rc == 0, err
    assert out.endswith("\n") and out.count("\n") == 1, repr(out)   # the key and nothing else
    return out.strip()


class Admin:
    """The admin API with the master key in x-functions-key."""

    def __init__(self, srv, master):
        self.srv, self.master = srv, master

    def __call__(self, method, path, body=None, expect=None):
        status, headers, raw = request(self.srv, method, path, body=body, key=self.master)
        if expect is not None:
            assert status == expect, "%s %s -> %d %r (want %d)" % (method, path, status, raw, expect)
        got = None
        if raw:
            assert headers.get("content-type", "").startswith("application/json"), headers
            got = json.loads(raw)
        return status, got

    def get(self, path, expect=200):
        return self(method="GET", path=path, expect=expect)[1]

    def key(self, path):
        """The value of one key (GET .../{name} must answer 200)."""
        got = self.get(path)
        assert got["name"] == path.rsplit("/", 1)[1] or path.endswith("/_master"), got
        return got["value"]


def wait_for(pred, timeout, what):
    """Poll pred() every 20 ms until it is true; fail after timeout s."""
    deadline = time.monotonic() + timeout
    while True:
        if pred():
            return
        if time.monotonic() >= deadline:
            pytest.fail("not within %.1fs: %s" % (timeout, what))
        time.sleep(0.02)


def new_value(tag="k"):
    return "%s-%s" % (tag, uuid.uuid4().hex)


# -- the module's server ----------------------------------------------------------------

@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    work = tmp_path_factory.mktemp("keys")
    s = Nimbus(work, app_dir=build_app(work / "app")).start()
    yield s
    rc = s.stop()
    assert rc == 0, "nimbus exited %r after SIGTERM (want 0)\n%s" % (rc, s.stderr_tail())


@pytest.fixture(scope="module")
def keys(srv):
    """The keys every test may use: master (from the CLI), the host default
    key, each function's default key, and a system key created through the
    admin API."""
    master = cli_master(srv.data_dir)
    admin = Admin(srv, master)
    status, got = admin("PUT", "/admin/host/systemkeys/" + SYSTEM_KEY_NAME,
                        {"name": SYSTEM_KEY_NAME, "value": SYSTEM_KEY})
    assert status == 201, got
    assert got["value"] == SYSTEM_KEY
    k = {"master": master, "host": admin.key("/admin/host/keys/default"),
         "system": SYSTEM_KEY}
    for fn in ("anon", "keyed", "other", "adminonly", "tick"):
        k[fn] = admin.key("/admin/functions/%s/keys/default" % fn)
    for name, v in k.items():
        assert KEY_RE.match(v) or name == "system", (name, v)
    assert len(set(k.values())) == len(k), "keys must all differ"
    return k


@pytest.fixture(scope="module")
def admin(srv, keys):
    return Admin(srv, keys["master"])


# -- auth levels ------------------------------------------------------------------------

def test_anonymous_needs_no_key(srv, keys):
    assert status_of(srv, "/api/anon") == 200
    assert status_of(srv, "/api/anon", key="wrong-key-value") == 200
    assert status_of(srv, "/api/anon", code="wrong-key-value") == 200
    assert status_of(srv, "/api/anon", key=keys["master"]) == 200


@pytest.mark.parametrize("kind", ["own", "host", "master"])
@pytest.mark.parametrize("via", ["header", "code"])
def test_function_level_accepts(srv, keys, kind, via):
    k = keys["keyed" if kind == "own" else kind]
    kw = {"key": k} if via == "header" else {"code": k}
    status, _, body = request(srv, "GET", "/api/keyed", **kw)
    assert (status, body) == (200, b"ok")
    assert status_of(srv, "/api/keyed", method="POST", **kw) == 200


@pytest.mark.parametrize("via", ["header", "code"])
def test_function_level_rejects(srv, keys, via):
    own = keys["keyed"]
    bad = {
        "another function's key": keys["other"],
        # As Azure: a system (extension) key is not a function-level key.
        "a system key": keys["system"],
        "another function's key (admin level)": keys["adminonly"],
        "wrong key": new_value("wrong"),
        "empty key": "",
        "own key, case flipped": own.swapcase(),
        "own key, truncated": own[:-1],
        "own key, extended": own + "x",
        "own key's name": "default",
    }
    for what, k in bad.items():
        kw = {"key": k} if via == "header" else {"code": k}
        status, _, body = request(srv, "GET", "/api/keyed", **kw)
        assert status == 401, "%s via %s: %d %r" % (what, via, status, body)
        assert body != b"ok"


def test_function_level_missing_key(srv, keys):
    assert status_of(srv, "/api/keyed") == 401
    assert status_of(srv, "/api/keyed", key="", code="") == 401
    # another function's own key works there, and only there
    assert status_of(srv, "/api/other", key=keys["other"]) == 200
    assert status_of(srv, "/api/other", key=keys["keyed"]) == 401


@pytest.mark.parametrize("via", ["header", "code"])
def test_admin_level_master_only(srv, keys, via):
    def st(k):
        return status_of(srv, "/api/adminonly", **({"key": k} if via == "header" else {"code": k}))
    status, _, body = request(srv, "GET", "/api/adminonly",
                              **({"key": keys["master"]} if via == "header"
                                 else {"code": keys["master"]}))
    assert (status, body) == (200, b"ok")
    for what in ("host", "adminonly", "keyed", "system"):
        assert st(keys[what]) == 401, what
    assert st("") == 401
    assert st(new_value()) == 401
    assert status_of(srv, "/api/adminonly") == 401


def test_header_wins_over_code(srv, keys):
    good, bad = keys["keyed"], new_value("bad")
    assert status_of(srv, "/api/keyed", key=good, code=bad) == 200
    assert status_of(srv, "/api/keyed", key=bad, code=good) == 401
    assert status_of(srv, "/api/adminonly", key=keys["master"], code=keys["host"]) == 200
    assert status_of(srv, "/api/adminonly", key=keys["host"], code=keys["master"]) == 401


# -- admin API: auth ------------------------------------------------------------------

def test_admin_api_needs_the_master_key(srv, keys):
    assert status_of(srv, "/admin/host/keys") == 401
    for k in ("", keys["host"], keys["keyed"], keys["system"], new_value()):
        for kw in ({"key": k}, {"code": k}):
            status, _, body = request(srv, "GET", "/admin/host/keys", **kw)
            assert status == 401, (kw, status, body)
            assert keys["host"].encode() not in body
    status, _, body = request(srv, "GET", "/admin/host/keys", code=keys["master"])
    assert status == 200
    assert json.loads(body)["keys"]
    assert status_of(srv, "/admin/host/keys", key=keys["master"], code="bad") == 200
    assert status_of(srv, "/admin/host/keys", key="bad", code=keys["master"]) == 401
    # ping stays anonymous
    assert status_of(srv, "/admin/host/ping") == 200


def test_admin_host_status(admin):
    got = admin.get("/admin/host/status")
    assert got["state"] == "Running"
    assert isinstance(got.get("version"), str) and got["version"]
    assert isinstance(got.get("processUptime"), int)


# -- admin API: host keys ----------------------------------------------------------------

def test_list_host_keys(admin, keys):
    got = admin.get("/admin/host/keys")
    pairs = {k["name"]: k["value"] for k in got["keys"]}
    assert pairs.get("default") == keys["host"]
    assert "_master" not in pairs
    assert keys["master"] not in json.dumps(got)
    assert isinstance(got["links"], list)
    assert admin.get("/admin/host/functionkeys")["keys"] == got["keys"]


def test_get_host_keys(admin, keys):
    got = admin.get("/admin/host/keys/default")
    assert (got["name"], got["value"]) == ("default", keys["host"])
    assert "links" in got
    got = admin.get("/admin/host/keys/_master")
    assert (got["name"], got["value"]) == ("_master", keys["master"])
    assert admin.get("/admin/host/keys/nosuchkey", expect=404)["code"] == "NotFound"


def test_put_host_key_create_replace_delete(srv, admin):
    v1, v2 = new_value("one"), new_value("two")
    status, got = admin("PUT", "/admin/host/keys/k1", {"name": "k1", "value": v1}, expect=201)
    assert (got["name"], got["value"]) == ("k1", v1)
    # a host key works at once, for every function-level function
    assert status_of(srv, "/api/keyed", key=v1) == 200
    assert status_of(srv, "/api/other", code=v1) == 200
    assert status_of(srv, "/api/adminonly", key=v1) == 401
    status, got = admin("PUT", "/admin/host/keys/k1", {"name": "k1", "value": v2}, expect=200)
    assert got["value"] == v2
    assert admin.key("/admin/host/keys/k1") == v2
    assert status_of(srv, "/api/keyed", key=v2) == 200
    assert status_of(srv, "/api/keyed", key=v1) == 401        # replaced: the old value is gone
    assert any(k["name"] == "k1" for k in admin.get("/admin/host/keys")["keys"])
    admin("DELETE", "/admin/host/keys/k1", expect=204)
    assert status_of(srv, "/api/keyed", key=v2) == 401        # deleted: stops working at once
    admin("DELETE", "/admin/host/keys/k1", expect=404)
    admin.get("/admin/host/keys/k1", expect=404)
    assert not any(k["name"] == "k1" for k in admin.get("/admin/host/keys")["keys"])


def test_post_generates_a_key(srv, admin):
    status, got = admin("POST", "/admin/host/keys/gen1", expect=201)
    v1 = got["value"]
    assert got["name"] == "gen1"
    assert KEY_RE.match(v1), v1
    assert len(base64.urlsafe_b64decode(v1 + "=")) == 32
    assert status_of(srv, "/api/keyed", key=v1) == 200
    status, got = admin("POST", "/admin/host/keys/gen1", expect=200)   # renewed
    v2 = got["value"]
    assert KEY_RE.match(v2) and v2 != v1
    assert status_of(srv, "/api/keyed", key=v1) == 401
    assert status_of(srv, "/api/keyed", key=v2) == 200
    admin("DELETE", "/admin/host/keys/gen1", expect=204)


def test_master_key_cannot_be_deleted(srv, admin, keys):
    got = admin("DELETE", "/admin/host/keys/_master", expect=400)[1]
    assert got["code"] == "BadRequest"
    assert admin.key("/admin/host/keys/_master") == keys["master"]
    assert status_of(srv, "/api/adminonly", key=keys["master"]) == 200


def test_put_rejects_bad_names_and_values(admin):
    admin("PUT", "/admin/host/keys/k2", {"name": "k2", "value": "short"}, expect=400)
    admin("PUT", "/admin/host/keys/k2", {"name": "k2", "value": "has space " + "x" * 20},
          expect=400)
    admin("PUT", "/admin/host/keys/k2", {"name": "k2"}, expect=400)
    status, _ = admin("PUT", "/admin/host/keys/k2", b"not json")
    assert status == 400
    admin("PUT", "/admin/host/keys/bad%20name", {"name": "bad name", "value": new_value()},
          expect=400)
    admin.get("/admin/host/keys/k2", expect=404)


def test_system_keys(srv, admin, keys):
    got = admin.get("/admin/host/systemkeys")
    pairs = {k["name"]: k["value"] for k in got["keys"]}
    assert pairs == {SYSTEM_KEY_NAME: SYSTEM_KEY}
    assert admin.key("/admin/host/systemkeys/" + SYSTEM_KEY_NAME) == SYSTEM_KEY
    # system keys are not host function keys
    assert SYSTEM_KEY_NAME not in {k["name"] for k in admin.get("/admin/host/keys")["keys"]}
    # replace, then another one generated
    v = new_value("sys2")
    admin("PUT", "/admin/host/systemkeys/" + SYSTEM_KEY_NAME,
          {"name": SYSTEM_KEY_NAME, "value": v}, expect=200)
    assert admin.key("/admin/host/systemkeys/" + SYSTEM_KEY_NAME) == v
    # a system key never opens a function-level endpoint (as on Azure)
    assert status_of(srv, "/api/keyed", key=v) == 401
    admin("PUT", "/admin/host/systemkeys/" + SYSTEM_KEY_NAME,
          {"name": SYSTEM_KEY_NAME, "value": SYSTEM_KEY}, expect=200)
    got = admin("POST", "/admin/host/systemkeys/other_extension", expect=201)[1]
    assert KEY_RE.match(got["value"])
    admin("DELETE", "/admin/host/systemkeys/other_extension", expect=204)
    admin("DELETE", "/admin/host/systemkeys/other_extension", expect=404)


# -- admin API: function keys --------------------------------------------------------------

def test_function_keys_list_and_get(admin, keys):
    got = admin.get("/admin/functions/keyed/keys")
    pairs = {k["name"]: k["value"] for k in got["keys"]}
    assert pairs == {"default": keys["keyed"]}
    assert keys["host"] not in json.dumps(got) and keys["master"] not in json.dumps(got)
    got = admin.get("/admin/functions/keyed/keys/default")
    assert (got["name"], got["value"]) == ("default", keys["keyed"])
    admin.get("/admin/functions/keyed/keys/nosuch", expect=404)
    # names are case-insensitive, as on Azure
    assert admin.key("/admin/functions/KEYED/keys/default") == keys["keyed"]


def test_function_keys_put_post_delete(srv, admin):
    v1, v2 = new_value("f1"), new_value("f2")
    got = admin("PUT", "/admin/functions/keyed/keys/fk1", {"name": "fk1", "value": v1},
                expect=201)[1]
    assert (got["name"], got["value"]) == ("fk1", v1)
    assert status_of(srv, "/api/keyed", key=v1) == 200
    assert status_of(srv, "/api/other", key=v1) == 401        # only for its own function
    assert status_of(srv, "/api/adminonly", key=v1) == 401
    admin("PUT", "/admin/functions/keyed/keys/fk1", {"name": "fk1", "value": v2}, expect=200)
    assert status_of(srv, "/api/keyed", code=v2) == 200
    assert status_of(srv, "/api/keyed", code=v1) == 401
    names = {k["name"] for k in admin.get("/admin/functions/keyed/keys")["keys"]}
    assert names == {"default", "fk1"}

    got = admin("POST", "/admin/functions/keyed/keys/fk2", expect=201)[1]
    assert KEY_RE.match(got["value"])
    assert status_of(srv, "/api/keyed", key=got["value"]) == 200
    got2 = admin("POST", "/admin/functions/keyed/keys/fk2", expect=200)[1]
    assert got2["value"] != got["value"] and KEY_RE.match(got2["value"])

    for name, v in (("fk1", v2), ("fk2", got2["value"])):
        admin("DELETE", "/admin/functions/keyed/keys/" + name, expect=204)
        assert status_of(srv, "/api/keyed", key=v) == 401
        admin("DELETE", "/admin/functions/keyed/keys/" + name, expect=404)
    names = {k["name"] for k in admin.get("/admin/functions/keyed/keys")["keys"]}
    assert names == {"default"}


def test_function_keys_unknown_function(admin):
    admin.get("/admin/functions/nosuch/keys", expect=404)
    admin.get("/admin/functions/nosuch/keys/default", expect=404)
    admin("PUT", "/admin/functions/nosuch/keys/x", {"name": "x", "value": new_value()},
          expect=404)
    admin("POST", "/admin/functions/nosuch/keys/x", expect=404)
    admin("DELETE", "/admin/functions/nosuch/keys/default", expect=404)


def test_function_keys_need_the_master_key(srv, keys):
    for k in (keys["keyed"], keys["host"]):
        assert status_of(srv, "/admin/functions/keyed/keys", key=k) == 401
        assert status_of(srv, "/admin/functions/keyed/keys/x", method="POST", key=k) == 401
    assert status_of(srv, "/admin/functions/keyed/keys") == 401


# -- admin API: functions ------------------------------------------------------------------

def test_functions_list(admin):
    got = admin.get("/admin/functions")
    byname = {f["name"]: f for f in got}
    assert set(byname) == {"anon", "keyed", "other", "adminonly", "tick"}
    assert byname["tick"]["trigger"] == "timerTrigger"
    assert byname["keyed"]["trigger"] == "httpTrigger"


def test_manual_run_of_a_timer_function(srv, admin):
    q = QueueClient.from_connection_string(srv.conn_str(), "ticks")
    status, _ = admin("POST", "/admin/functions/tick", {"input": ""})
    assert status == 202
    msgs = []

    def arrived():
        try:
            msgs.extend(q.receive_messages(messages_per_page=32, visibility_timeout=600))
        except Exception:       # the queue is created on first use
            return False
        return bool(msgs)
    wait_for(arrived, 10, "a message on queue 'ticks'")
    assert len(msgs) == 1
    # base64 (the default messageEncoding) of the manual input, ""
    assert base64.b64decode(msgs[0].content) == b""

    # a marked input comes through as given
    mark = "manual-" + uuid.uuid4().hex
    assert admin("POST", "/admin/functions/tick", {"input": mark})[0] == 202
    msgs.clear()
    wait_for(arrived, 10, "the second message on queue 'ticks'")
    assert [base64.b64decode(m.content).decode() for m in msgs] == [mark]


def test_manual_run_errors(srv, admin, keys):
    admin("POST", "/admin/functions/nosuch", {"input": ""}, expect=404)
    admin("POST", "/admin/functions/keyed", {"input": ""}, expect=400)   # HTTP: use its URL
    assert status_of(srv, "/admin/functions/tick", method="POST",
                     body={"input": ""}, key=keys["host"]) == 401
    assert status_of(srv, "/admin/functions/tick", method="POST", body={"input": ""}) == 401


# -- nimbus keys (CLI), with the server running -----------------------------------------------

def test_cli_show_master_is_the_api_master(srv, admin, keys):
    m = cli_master(srv.data_dir)
    assert m == keys["master"] == admin.key("/admin/host/keys/_master")
    rc, out, _ = cli("show", "default", "--data", srv.data_dir)
    assert (rc, out) == (0, keys["host"] + "\n")
    rc, out, _ = cli("show", "default", "--function", "keyed", "--data", srv.data_dir)
    assert (rc, out) == (0, keys["keyed"] + "\n")
    rc, out, _ = cli("show", SYSTEM_KEY_NAME, "--system", "--data", srv.data_dir)
    assert (rc, out) == (0, SYSTEM_KEY + "\n")
    rc, out, err = cli("show", "nosuch", "--data", srv.data_dir)
    assert rc == 1 and out == "" and "nosuch" in err


def test_cli_list(srv, keys):
    rc, out, err = cli("list", "--data", srv.data_dir)
    assert rc == 0, err
    lines = set(out.splitlines())
    for line in ("master - _master %s" % keys["master"],
                 "host - default %s" % keys["host"],
                 "system - %s %s" % (SYSTEM_KEY_NAME, SYSTEM_KEY),
                 "function keyed default %s" % keys["keyed"],
                 "function other default %s" % keys["other"],
                 "function adminonly default %s" % keys["adminonly"]):
        assert line in lines, (line, out)
    rc, out, _ = cli("list", "--function", "keyed", "--data", srv.data_dir)
    assert rc == 0
    assert "function keyed default %s" % keys["keyed"] in out.splitlines()
    assert keys["master"] not in out and keys["other"] not in out
    rc, out, _ = cli("list", "--host", "--data", srv.data_dir)
    assert rc == 0 and out.splitlines() == ["host - default %s" % keys["host"]]


def test_cli_set_is_seen_by_the_running_server(srv, admin):
    v = new_value("cli")
    assert status_of(srv, "/api/keyed", key=v) == 401      # a miss just before the change
    rc, out, err = cli("set", "mykey", v, "--function", "keyed", "--data", srv.data_dir)
    assert rc == 0, err
    wait_for(lambda: status_of(srv, "/api/keyed", key=v) == 200, 2.0,
             "key set by `nimbus keys set` accepted by the running server")
    assert status_of(srv, "/api/other", key=v) == 401
    assert admin.key("/admin/functions/keyed/keys/mykey") == v
    rc, out, _ = cli("list", "--function", "keyed", "--data", srv.data_dir)
    assert "function keyed mykey %s" % v in out.splitlines()

    rc, out, err = cli("delete", "mykey", "--function", "keyed", "--data", srv.data_dir)
    assert (rc, out) == (0, ""), err
    rc, out, _ = cli("list", "--function", "keyed", "--data", srv.data_dir)
    assert "mykey" not in out
    admin.get("/admin/functions/keyed/keys/mykey", expect=404)
    rc, out, err = cli("delete", "mykey", "--function", "keyed", "--data", srv.data_dir)
    assert rc == 1 and "mykey" in err


def test_cli_delete_is_seen_by_the_running_server(srv):
    """docs/functions.md: `nimbus keys ...` changes keys "with or without a
    running server. A running server sees a change within a second." A key
    deleted with the CLI must stop working within that second (2 s here).
    Nothing but the function call is made in between (no admin API read,
    which would refresh the server's cache)."""
    v = new_value("revoke")
    rc, _, err = cli("set", "gone", v, "--function", "other", "--data", srv.data_dir)
    assert rc == 0, err
    wait_for(lambda: status_of(srv, "/api/other", key=v) == 200, 2.0, "new key accepted")
    rc, _, err = cli("delete", "gone", "--function", "other", "--data", srv.data_dir)
    assert rc == 0, err
    wait_for(lambda: status_of(srv, "/api/other", key=v) == 401, 2.0,
             "key deleted by `nimbus keys delete` still accepted by the running server")


def test_cli_new(srv, admin):
    rc, out, err = cli("new", "clinew", "--data", srv.data_dir)
    assert rc == 0, err
    v = out.strip()
    assert out == v + "\n" and KEY_RE.match(v), out
    assert admin.key("/admin/host/keys/clinew") == v
    wait_for(lambda: status_of(srv, "/api/keyed", key=v) == 200, 2.0, "CLI host key accepted")
    rc, _, err = cli("delete", "clinew", "--data", srv.data_dir)
    assert rc == 0, err


def test_cli_refusals(srv, keys):
    d = srv.data_dir
    rc, _, err = cli("delete", "master", "--data", d)
    assert rc == 1 and "master" in err
    rc, _, err = cli("set", "weak", "short", "--data", d)
    assert rc == 1 and err
    rc, _, err = cli("set", "bad name", new_value(), "--data", d)
    assert rc == 1 and err
    rc, _, err = cli("show", "default", "--function", "bad/name", "--data", d)
    assert rc == 1 and err
    assert cli_master(d) == keys["master"]


def test_cli_missing_data_dir(tmp_path):
    missing = tmp_path / "nope"
    for args in (["show", "master"], ["list"], ["set", "a", new_value()], ["delete", "a"]):
        rc, out, err = cli(*args, "--data", missing)
        assert rc == 1, (args, rc, err)
        assert out == ""
        assert "no data directory" in err and str(missing) in err, err
    assert not missing.exists()            # a typo must not create a new key set


@pytest.mark.parametrize("args", [
    [], ["bogus"], ["show"], ["show", "a", "b"], ["set", "a"], ["delete"],
    ["list", "--frob"], ["list", "--function"], ["list", "--data"],
    ["list", "--function", "keyed", "--system"], ["list", "--host", "--system"],
    ["list", "--data", ""],
], ids=lambda a: " ".join(a) or "(none)")
def test_cli_bad_usage(args):
    rc, out, err = cli(*args)
    assert rc == 2, (args, rc, out, err)
    assert err.strip()


def test_cli_help():
    rc, out, _ = cli("--help")
    assert rc == 0 and "usage: nimbus keys" in out


# -- keys are never logged ------------------------------------------------------------------------

def test_keys_never_appear_in_logs(srv, admin, keys):
    secrets = dict(keys)
    wrong = new_value("wrongkey")
    secrets["wrong"] = wrong
    mark = uuid.uuid4().hex
    for name in ("keyed", "host", "master", "system"):
        want = 401 if name == "system" else 200
        assert status_of(srv, "/api/keyed?m=%s" % mark, code=keys[name]) == want
        assert status_of(srv, "/api/keyed?m=%s" % mark, key=keys[name]) == want
    assert status_of(srv, "/api/keyed?m=%s" % mark, code=wrong) == 401
    assert status_of(srv, "/api/keyed?m=%s" % mark, key=wrong) == 401
    assert status_of(srv, "/api/anon?m=%s" % mark, code=keys["keyed"]) == 200
    assert status_of(srv, "/api/adminonly?m=%s" % mark, code=keys["master"]) == 200
    assert status_of(srv, "/admin/host/keys?m=%s" % mark, code=keys["master"]) == 200
    assert status_of(srv, "/admin/host/keys?m=%s&end=1" % mark, code=wrong) == 401

    def logs():
        return srv.stdout_text() + srv.stderr_path.read_text(errors="replace")
    # the request log is written as requests finish: wait for the last one
    wait_for(lambda: "m=%s&end=1" % mark in logs(), 5, "the last request in the log")
    text = logs()
    assert "code=REDACTED" in text           # the requests were logged, their keys were not
    for name, v in secrets.items():
        assert v not in text, "the %s key appears in the server's output" % name
        assert urllib.parse.quote(v, safe="") not in text, name


# -- persistence ------------------------------------------------------------------------------

def test_keys_persist_across_restart(tmp_path):
    app = build_app(tmp_path / "app")
    data = tmp_path / "data"
    a = Nimbus(tmp_path / "a", app_dir=app, data_dir=data).start()
    try:
        master = cli_master(data)
        adm = Admin(a, master)
        assert adm.key("/admin/host/keys/_master") == master
        before = {
            "host": adm.key("/admin/host/keys/default"),
            "keyed": adm.key("/admin/functions/keyed/keys/default"),
            "other": adm.key("/admin/functions/other/keys/default"),
        }
        custom = new_value("persist")
        adm("PUT", "/admin/functions/keyed/keys/custom", {"name": "custom", "value": custom},
            expect=201)
        gen = adm("POST", "/admin/host/keys/gen", expect=201)[1]["value"]
    finally:
        rc = a.stop()
    assert rc == 0, a.stderr_tail()

    # the CLI works on the stopped server's data directory
    assert cli_master(data) == master
    rc, out, err = cli("list", "--data", data)
    assert rc == 0, err
    assert "function keyed custom %s" % custom in out.splitlines()

    b = Nimbus(tmp_path / "b", app_dir=app, data_dir=data).start()
    try:
        adm = Admin(b, master)
        assert adm.key("/admin/host/keys/_master") == master
        assert adm.key("/admin/host/keys/default") == before["host"]
        assert adm.key("/admin/functions/keyed/keys/default") == before["keyed"]
        assert adm.key("/admin/functions/other/keys/default") == before["other"]
        assert adm.key("/admin/functions/keyed/keys/custom") == custom
        assert adm.key("/admin/host/keys/gen") == gen
        assert status_of(b, "/api/keyed", key=custom) == 200
        assert status_of(b, "/api/keyed", code=before["keyed"]) == 200
        assert status_of(b, "/api/other", key=gen) == 200
        assert status_of(b, "/api/adminonly", key=master) == 200
    finally:
        rc = b.stop()
    assert rc == 0, b.stderr_tail()
