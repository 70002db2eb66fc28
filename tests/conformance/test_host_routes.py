"""HTTP routing of the function host (docs/functions.md, "HTTP routes").

Every app here is generated at test time under tmp_path: one function folder
per route, each pointing at the native test app's `echo` entry point
(tests/conformance/apps/native, built by `make apps`) by absolute scriptFile.
echo answers JSON {function, method, path, rest, params, query, headers,
body_len}, so `function` tells which function a path reached and `params`
what route values it was given.

Servers: the main one (prefix "api", many routes, Host.CORS), one with a
broken / reserved function.json set and a "{*all}" catch-all, one with an
empty prefix, one with prefix "v2", and one that takes its port from
Host.LocalHttpPort.
"""
import http.client
import json
import urllib.parse
from pathlib import Path

import pytest

from conftest import Nimbus, free_ports
from conftest import master_key

REPO = Path(__file__).resolve().parents[2]
NATIVE_APP = REPO / "tests" / "conformance" / "apps" / "native"
NATIVE_SO = NATIVE_APP / "bin" / "native.so"
HELLO_SO = NATIVE_APP / "hello" / "hello.so"

CORS_ORIGIN = "http://a.example"


# -- app generation -----------------------------------------------------------

def _require_apps():
    for so in (NATIVE_SO, HELLO_SO):
        if not so.is_file():
            pytest.fail("%s is missing: run `make apps` first" % so)


def write_function(app, name, route=None, methods=None, auth="anonymous", entry="echo",
                   http_out=True, script=None):
    """<app>/<name>/function.json: an httpTrigger on `route` (None: no route
    property, so the route is the function name) served by `entry` of the
    native test app."""
    t = {"type": "httpTrigger", "direction": "in", "name": "req", "authLevel": auth}
    if route is not None:
        t["route"] = route
    if methods is not None:
        t["methods"] = methods
    bindings = [t]
    if http_out:
        bindings.append({"type": "http", "direction": "out", "name": "res"})
    doc = {"scriptFile": str(script or NATIVE_SO), "bindings": bindings}
    if entry:
        doc["entryPoint"] = entry
    d = Path(app) / name
    d.mkdir(parents=True, exist_ok=True)
    (d / "function.json").write_text(json.dumps(doc, indent=2))


def write_app(app, host=None, settings=None):
    app = Path(app)
    app.mkdir(parents=True, exist_ok=True)
    h = {"version": "2.0"}
    h.update(host or {})
    (app / "host.json").write_text(json.dumps(h))
    if settings is not None:
        (app / "local.settings.json").write_text(json.dumps(settings))
    return app


def start_server(tmp_path_factory, name, build):
    """A fresh server on an app that build(app_dir) fills in."""
    _require_apps()
    work = tmp_path_factory.mktemp(name)
    app = work / "app"
    build(app)
    return Nimbus(work, app_dir=app).start()


def stop_server(srv):
    rc = srv.stop()
    assert rc == 0, "nimbus exited %r after SIGTERM (want 0)\n%s" % (rc, srv.stderr_tail())




# -- requests -----------------------------------------------------------------

def request(srv, method, path, body=b"", headers=None, timeout=30):
    """(status, headers with lowercased names, body) of one request."""
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=timeout)
    try:
        h = dict(headers or {})
        if method not in ("GET", "HEAD", "OPTIONS") or body:
            h.setdefault("Content-Length", str(len(body)))
        c.request(method, path, body=body or None, headers=h)
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def call(srv, path, method="GET", **kw):
    """The echo JSON of a request that must answer 200."""
    status, headers, body = request(srv, method, path, **kw)
    assert status == 200, "%s %s -> %d %r" % (method, path, status, body[:300])
    assert headers.get("content-type", "").startswith("application/json"), headers
    return json.loads(body)


def who(srv, path, method="GET"):
    """Which function answered path (echo's "function")."""
    return call(srv, path, method)["function"]


def status_of(srv, path, method="GET", **kw):
    return request(srv, method, path, **kw)[0]


# -- the main server ----------------------------------------------------------

# (name, template, values that match, values that do not). Each route is
# "c/<name>/<template>" and nothing else matches c/<name>/..., so a value that
# fails its constraint must give 404.
CONSTRAINTS = [
    ("int", "{v:int}", ["123", "-5", "+7", "2147483647", "-2147483648"],
     ["12a", "1.5", "2147483648", "-2147483649", "0x10", "abc"]),
    ("long", "{v:long}", ["9223372036854775807", "-9223372036854775808", "42"],
     ["9223372036854775808", "1.5", "x"]),
    ("double", "{v:double}", ["1.5", "-2e3", "42", "+0.25"],
     ["abc", "nan", "inf", "1.5.2", "0x1p3"]),
    ("bool", "{v:bool}", ["true", "False", "TRUE"], ["yes", "1", "truex"]),
    ("guid", "{v:guid}", ["8f9a3c2e-1b4d-4e5f-9a8b-7c6d5e4f3a2b",
                          "8F9A3C2E-1B4D-4E5F-9A8B-7C6D5E4F3A2B",
                          "%7B8f9a3c2e-1b4d-4e5f-9a8b-7c6d5e4f3a2b%7D"],
     ["8f9a3c2e", "8f9a3c2e-1b4d-4e5f-9a8b-7c6d5e4f3a2g", "8f9a3c2e1b4d4e5f9a8b7c6d5e4f3a2b0"]),
    ("datetime", "{v:datetime}", ["2024-02-29", "2024-02-29T10:20:30Z", "2024-02-29%2010:20",
                                  "2024-02-29T10:20:30.5%2B02:00"],
     ["notadate", "2024-13-01", "2023-02-29", "2024-02-29T25:00"]),
    ("alpha", "{v:alpha}", ["abcXYZ", "Q"], ["abc1", "ab-c", "%C3%A4"]),
    ("min", "{v:min(10)}", ["10", "999"], ["9", "-1", "abc"]),
    ("max", "{v:max(10)}", ["10", "-5"], ["11", "abc"]),
    ("range", "{v:range(5,10)}", ["5", "7", "10"], ["4", "11", "x"]),
    ("length", "{v:length(3)}", ["abc", "%C3%A4bc"], ["ab", "abcd"]),
    ("length2", "{v:length(2,4)}", ["ab", "abcd"], ["a", "abcde"]),
    ("minlength", "{v:minlength(3)}", ["abc", "abcdef"], ["ab", "a"]),
    ("maxlength", "{v:maxlength(3)}", ["abc", "a"], ["abcd"]),
    ("regex", "{v:regex(^ab\\d{{2}}$)}", ["ab12", "AB34"], ["ab1", "xab12", "ab123", "abxy"]),
    ("intmin", "{v:int:min(1)}", ["1", "50"], ["0", "-3", "x"]),
]

MAIN_FUNCTIONS = [
    # name, route, extra
    ("plain", "plain/{a}", {}),
    ("multi", "multi/{a}/{b}/{c}", {}),
    ("opt", "opt/{x?}", {}),
    ("optint", "optint/{x:int?}", {}),
    ("dflt", "dflt/{x=dflt}", {}),
    ("dfltint", "dfltint/{n:int=1}", {}),
    ("files", "files/{*rest}", {}),
    ("dstar", "dstar/{**rest}", {}),
    ("noroute", None, {}),
    # precedence: the function names are chosen so that name order would
    # pick the other one
    ("zzz_recent", "items/recent", {}),
    ("aaa_item", "items/{id}", {}),
    ("aaa_any", "things/{name}", {}),
    ("zzz_num", "things/{n:int}", {}),
    ("aaa_shelf_all", "shelf/{*path}", {}),
    ("mmm_shelf_one", "shelf/{id}", {}),
    ("zzz_shelf_top", "shelf/top", {}),
    ("aaa_pick_opt", "pick/{x?}", {}),
    ("zzz_pick", "pick/{x}", {}),
    ("aaa_right", "lr/{x}/b", {}),
    ("zzz_left", "lr/a/{y}", {}),
    ("aaa_long", "len/{a}/{b?}", {}),
    ("zzz_short", "len/{a}", {}),
    ("aaa_tie", "tie/{x}", {}),
    ("zzz_tie", "tie/{x}", {}),
    # methods
    ("m_get", "meth", {"methods": ["get"]}),
    ("m_post", "meth", {"methods": ["post", "PUT"]}),
    ("m_head", "mhead", {"methods": ["get", "head"]}),
    ("m_any", "many", {}),
    # no http output: 204
    ("nobody", "nobody", {"entry": "nobody", "http_out": False}),
    # hello.so's default entry point "run" (no entryPoint in function.json)
    ("hi", "hi", {"entry": None, "script": HELLO_SO}),
]


def _build_main(app):
    write_app(app, settings={"IsEncrypted": False,
                             "Values": {"FUNCTIONS_WORKER_RUNTIME": "native"},
                             "Host": {"CORS": CORS_ORIGIN}})
    for name, route, extra in MAIN_FUNCTIONS:
        write_function(app, name, route, **extra)
    for name, tmpl, _, _ in CONSTRAINTS:
        write_function(app, "c_" + name, "c/%s/%s" % (name, tmpl))


@pytest.fixture(scope="module")
def srv(tmp_path_factory):
    s = start_server(tmp_path_factory, "routes", _build_main)
    yield s
    stop_server(s)


def test_every_function_loaded_without_problems(srv):
    out = srv.stdout_text()
    assert "Problems" not in out, out
    for name, _, _ in MAIN_FUNCTIONS:
        assert "  %s: " % name in out, (name, out)


# -- prefix ---------------------------------------------------------------------

def test_default_route_prefix_is_api(srv):
    got = call(srv, "/api/plain/x")
    assert got["function"] == "plain"
    assert got["path"] == "/api/plain/x"
    assert status_of(srv, "/plain/x") == 404
    assert status_of(srv, "/apix/plain/x") == 404
    assert status_of(srv, "/") == 404


def test_route_prefix_is_case_insensitive(srv):
    assert who(srv, "/API/plain/x") == "plain"


def test_route_defaults_to_function_name(srv):
    assert who(srv, "/api/noroute") == "noroute"
    assert who(srv, "/api/NoRoute") == "noroute"


def test_native_default_entry_point_run(srv):
    status, headers, body = request(srv, "GET", "/api/hi")
    assert (status, body) == (200, b"hello")
    assert headers["content-type"] == "text/plain"


# -- parameters -------------------------------------------------------------------

def test_parameter_values(srv):
    got = call(srv, "/api/plain/Hello")
    assert got["params"] == {"a": "Hello"}
    got = call(srv, "/api/multi/1/two/3")
    assert got["function"] == "multi"
    assert got["params"] == {"a": "1", "b": "two", "c": "3"}


def test_parameter_needs_its_segment(srv):
    assert status_of(srv, "/api/plain") == 404
    assert status_of(srv, "/api/plain/a/b") == 404
    assert status_of(srv, "/api/multi/1/2") == 404
    assert status_of(srv, "/api/multi/1/2/3/4") == 404


def test_trailing_slash_ignored(srv):
    got = call(srv, "/api/plain/x/")
    assert (got["function"], got["params"]) == ("plain", {"a": "x"})


def test_literal_is_case_insensitive_value_keeps_case(srv):
    got = call(srv, "/api/PLAIN/MiXeD")
    assert got["function"] == "plain"
    assert got["params"] == {"a": "MiXeD"}
    assert who(srv, "/api/Items/RECENT") == "zzz_recent"


def test_optional_absent_and_present(srv):
    got = call(srv, "/api/opt")
    assert got["function"] == "opt"
    assert got["params"] == {}                # absent: no value at all
    got = call(srv, "/api/opt/7")
    assert got["params"] == {"x": "7"}
    assert status_of(srv, "/api/opt/7/8") == 404


def test_constrained_optional(srv):
    assert call(srv, "/api/optint")["params"] == {}
    assert call(srv, "/api/optint/42")["params"] == {"x": "42"}
    assert status_of(srv, "/api/optint/abc") == 404


def test_default_absent_and_present(srv):
    assert call(srv, "/api/dflt")["params"] == {"x": "dflt"}
    assert call(srv, "/api/dflt/other")["params"] == {"x": "other"}


def test_constrained_default(srv):
    assert call(srv, "/api/dfltint")["params"] == {"n": "1"}
    assert call(srv, "/api/dfltint/5")["params"] == {"n": "5"}
    assert status_of(srv, "/api/dfltint/x") == 404


@pytest.mark.parametrize("name,tmpl,good,bad", CONSTRAINTS, ids=[c[0] for c in CONSTRAINTS])
def test_constraint(srv, name, tmpl, good, bad):
    for v in good:
        got = call(srv, "/api/c/%s/%s" % (name, v))
        assert got["function"] == "c_" + name, (v, got)
        assert got["params"] == {"v": urllib.parse.unquote(v)}, (v, got)
    for v in bad:
        st = status_of(srv, "/api/c/%s/%s" % (name, v))
        assert st == 404, "%s: %r should fail %s, got %d" % (name, v, tmpl, st)


def test_catch_all_several_segments_and_empty(srv):
    got = call(srv, "/api/files/a/b/c.txt")
    assert got["function"] == "files"
    assert got["rest"] == "a/b/c.txt"
    got = call(srv, "/api/files/one")
    assert got["rest"] == "one"
    got = call(srv, "/api/files")
    assert got["function"] == "files"
    assert got["rest"] is None and got["params"] == {}
    got = call(srv, "/api/files/")
    assert got["function"] == "files"
    assert got["params"] == {}


def test_double_star_catch_all(srv):
    got = call(srv, "/api/dstar/x/y")
    assert (got["function"], got["params"]) == ("dstar", {"rest": "x/y"})


def test_percent_encoded_segments_are_decoded(srv):
    got = call(srv, "/api/plain/a%20b")
    assert got["params"] == {"a": "a b"}
    assert got["path"] == "/api/plain/a%20b"        # the path stays as sent
    assert call(srv, "/api/plain/%E2%82%AC")["params"] == {"a": "\u20ac"}
    # %2F is data inside one segment, not a separator
    got = call(srv, "/api/plain/a%2Fb")
    assert (got["function"], got["params"]) == ("plain", {"a": "a/b"})
    # an encoded literal still matches the literal
    assert who(srv, "/api/%70lain/x") == "plain"
    got = call(srv, "/api/files/dir%20one/f%C3%A9.txt")
    assert got["rest"] == "dir one/f\u00e9.txt"


def test_malformed_escapes_match_nothing(srv):
    assert status_of(srv, "/api/plain/%zz") == 404
    assert status_of(srv, "/api/plain/a%00b") == 404
    assert status_of(srv, "/api/plain/a%2") == 404


def test_query_is_decoded_for_the_function(srv):
    got = call(srv, "/api/plain/q?x=1%202&y=%C3%A9&empty=")
    assert got["query"] == {"x": "1 2", "y": "\u00e9", "empty": ""}


# -- precedence -------------------------------------------------------------------

def test_literal_beats_parameter_whatever_the_names(srv):
    assert who(srv, "/api/items/recent") == "zzz_recent"
    got = call(srv, "/api/items/42")
    assert (got["function"], got["params"]) == ("aaa_item", {"id": "42"})


def test_constrained_beats_plain(srv):
    assert who(srv, "/api/things/5") == "zzz_num"
    assert who(srv, "/api/things/five") == "aaa_any"


def test_catch_all_loses(srv):
    assert who(srv, "/api/shelf/top") == "zzz_shelf_top"       # literal
    assert who(srv, "/api/shelf/x") == "mmm_shelf_one"         # parameter
    got = call(srv, "/api/shelf/x/y")                          # only the catch-all
    assert (got["function"], got["params"]) == ("aaa_shelf_all", {"path": "x/y"})
    assert who(srv, "/api/shelf") == "aaa_shelf_all"


def test_parameter_beats_optional(srv):
    assert who(srv, "/api/pick/1") == "zzz_pick"
    assert who(srv, "/api/pick") == "aaa_pick_opt"


def test_first_differing_segment_decides(srv):
    # lr/a/{y} and lr/{x}/b both match lr/a/b: segment 2 (literal vs
    # parameter) decides, not segment 3
    assert who(srv, "/api/lr/a/b") == "zzz_left"
    assert who(srv, "/api/lr/c/b") == "aaa_right"
    assert who(srv, "/api/lr/a/c") == "zzz_left"
    assert status_of(srv, "/api/lr/c/c") == 404


def test_shorter_route_wins_over_absent_optional(srv):
    # len/{a} and len/{a}/{b?} both match len/1: the shorter one wins (as in
    # ASP.NET; see route.h). docs/functions.md says "the route with more
    # segments wins" for this case: the doc and the code disagree.
    assert who(srv, "/api/len/1") == "zzz_short"
    got = call(srv, "/api/len/1/2")
    assert (got["function"], got["params"]) == ("aaa_long", {"a": "1", "b": "2"})


def test_full_tie_goes_to_first_function_name(srv):
    assert who(srv, "/api/tie/1") == "aaa_tie"


# -- methods ----------------------------------------------------------------------

def test_methods_list_is_honoured(srv):
    assert who(srv, "/api/meth") == "m_get"
    assert who(srv, "/api/meth", "POST") == "m_post"
    assert who(srv, "/api/meth", "put") == "m_post"         # method names any case in function.json
    for m in ("DELETE", "PATCH", "OPTIONS"):
        assert status_of(srv, "/api/meth", m) == 405, m


def test_no_methods_means_every_method(srv):
    for m in ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        got = call(srv, "/api/many", m)
        assert (got["function"], got["method"]) == ("m_any", m)


def test_head(srv):
    # HEAD on a route listing it: 200, headers, no body. The GET after it
    # on the same connection would misparse if any body had been sent.
    c = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=30)
    try:
        c.request("HEAD", "/api/mhead")
        r = c.getresponse()
        assert r.status == 200
        assert r.read() == b""
        assert r.getheader("Content-Type", "").startswith("application/json")
        c.request("GET", "/api/mhead")
        r = c.getresponse()
        assert r.status == 200
        assert json.loads(r.read())["method"] == "GET"
        c.request("HEAD", "/api/many")        # no methods list: HEAD too
        r = c.getresponse()
        assert (r.status, r.read()) == (200, b"")
    finally:
        c.close()
    # GET alone does not imply HEAD
    assert status_of(srv, "/api/meth", "HEAD") == 405


def test_unknown_path_404(srv):
    for p in ("/api/nothing", "/api/nothing/here", "/api/items", "/api/items/1/2",
              "/nothere", "/api"):
        assert status_of(srv, p) == 404, p
    assert status_of(srv, "/api/nothing", "POST") == 404


# -- bodies ---------------------------------------------------------------------------

def test_binary_body_round_trip(srv):
    payload = b"\x00\xff\x00nul\r\n\xfe\x80" + bytes(range(256))
    status, headers, body = request(srv, "POST", "/api/files/bin?raw=1", body=payload,
                                    headers={"Content-Type": "application/octet-stream"})
    assert status == 200
    assert body == payload
    assert headers["content-type"] == "application/octet-stream"
    assert int(headers["content-length"]) == len(payload)


def test_one_mib_body(srv):
    payload = bytes(range(256)) * 4096
    assert len(payload) == 1 << 20
    status, _, body = request(srv, "PUT", "/api/files/big?raw=1", body=payload,
                              headers={"Content-Type": "application/x-test"})
    assert status == 200
    assert len(body) == len(payload) and body == payload
    got = call(srv, "/api/files/big", "POST", body=payload)
    assert got["body_len"] == 1 << 20


def test_no_http_output_is_204(srv):
    status, headers, body = request(srv, "GET", "/api/nobody")
    assert (status, body) == (204, b"")


# -- CORS ----------------------------------------------------------------------------

def test_cors_preflight(srv):
    status, headers, body = request(srv, "OPTIONS", "/api/plain/x", headers={
        "Origin": CORS_ORIGIN, "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "x-test"})
    assert status == 204, (status, body)
    assert headers.get("access-control-allow-origin") == CORS_ORIGIN
    assert "GET" in headers.get("access-control-allow-methods", "")
    assert "x-test" in headers.get("access-control-allow-headers", "").lower()


def test_cors_simple_request(srv):
    status, headers, body = request(srv, "GET", "/api/plain/x", headers={"Origin": CORS_ORIGIN})
    assert status == 200
    assert headers.get("access-control-allow-origin") == CORS_ORIGIN
    assert json.loads(body)["function"] == "plain"      # the function still ran


def test_cors_other_origin_gets_no_header(srv):
    status, headers, _ = request(srv, "GET", "/api/plain/x",
                                 headers={"Origin": "http://b.example"})
    assert status == 200
    assert "access-control-allow-origin" not in headers
    status, headers, _ = request(srv, "OPTIONS", "/api/plain/x", headers={
        "Origin": "http://b.example", "Access-Control-Request-Method": "GET"})
    assert "access-control-allow-origin" not in headers
    status, headers, _ = request(srv, "GET", "/api/plain/x")
    assert "access-control-allow-origin" not in headers


# -- a broken app: reserved routes, a syntax error, a catch-all ------------------------

BROKEN_JSON = '{"bindings": [ {"type": "httpTrigger",, } ]'


def _build_problems(app):
    write_app(app)
    write_function(app, "okfn", "ok")
    write_function(app, "bad_admin", "admin/x")
    write_function(app, "bad_runtime", "Runtime/y")
    write_function(app, "everything", "{*all}")
    (app / "broken").mkdir()
    (app / "broken" / "function.json").write_text(BROKEN_JSON)


@pytest.fixture(scope="module")
def psrv(tmp_path_factory):
    s = start_server(tmp_path_factory, "routes-problems", _build_problems)
    yield s
    stop_server(s)


def _problems_section(out):
    assert "Problems" in out, out
    return out[out.index("Problems"):]


def test_reserved_routes_reported_and_skipped(psrv):
    probs = _problems_section(psrv.stdout_text())
    for name, route in (("bad_admin", "admin/x"), ("bad_runtime", "Runtime/y")):
        line = next((l for l in probs.splitlines() if "%s/function.json" % name in l), None)
        assert line, (name, probs)
        assert route in line and "reserved" in line, line
    listed = psrv.stdout_text()[:psrv.stdout_text().index("Problems")]
    assert "bad_admin:" not in listed and "bad_runtime:" not in listed


def test_broken_function_json_reported_with_reason(psrv):
    probs = _problems_section(psrv.stdout_text())
    line = next((l for l in probs.splitlines() if "broken/function.json" in l), None)
    assert line, probs
    assert "line 1" in line                  # where the syntax error is
    assert "expected" in line                 # and jansson's reason


def test_other_functions_still_run(psrv):
    assert who(psrv, "/api/ok") == "okfn"
    key = master_key(psrv)
    status, _, body = request(psrv, "GET", "/admin/functions", headers={"x-functions-key": key})
    assert status == 200
    names = {f["name"] for f in json.loads(body)}
    assert names == {"okfn", "everything"}, names


def test_catch_all_gets_everything_under_the_prefix(psrv):
    got = call(psrv, "/api/anything")
    assert (got["function"], got["params"]) == ("everything", {"all": "anything"})
    got = call(psrv, "/api/admin/x")          # under the prefix it is an ordinary path
    assert (got["function"], got["params"]) == ("everything", {"all": "admin/x"})
    assert who(psrv, "/api/runtime/y") == "everything"
    assert who(psrv, "/api/") == "everything"


def test_admin_paths_never_reach_a_function(psrv):
    key = master_key(psrv)
    status, headers, body = request(psrv, "GET", "/admin/nope", headers={"x-functions-key": key})
    assert status == 404
    assert json.loads(body)["code"] == "NotFound"      # the admin API's answer, not echo's
    status, _, body = request(psrv, "GET", "/admin/nope")
    assert status == 401
    assert "function" not in json.loads(body)
    assert status_of(psrv, "/admin/host/ping") == 200
    # outside the prefix, nothing matches at all
    assert status_of(psrv, "/runtime/y") == 404
    assert status_of(psrv, "/anything") == 404


# A route template the router cannot compile. docs/functions.md: "a segment
# that mixes literal text and a parameter is rejected at load" and "A broken
# function.json is reported on start with its path and the reason; that
# function is skipped". The app loader (src/host/app.c, parse_binding) does not
# compile the route, so such a function is listed in the banner and by
# GET /admin/functions as if served, and only src/host/host.c build_router
# logs an error to stderr when it fails to add it.
def _build_bad_template(app):
    write_app(app)
    write_function(app, "okfn", "ok")
    write_function(app, "bad_mixed", "file{n}")
    write_function(app, "bad_syntax", "x/{")
    write_function(app, "bad_constraint", "y/{v:nosuch}")


def test_unparsable_route_is_a_load_problem(tmp_path_factory):
    """Routes the router cannot compile are reported under "Problems" with
    their function.json and skipped; the rest of the app is served."""
    s = start_server(tmp_path_factory, "routes-badtmpl", _build_bad_template)
    try:
        assert who(s, "/api/ok") == "okfn"
        out = s.stdout_text()
        key = master_key(s)
        status, _, body = request(s, "GET", "/admin/functions", headers={"x-functions-key": key})
        names = {f["name"] for f in json.loads(body)}
    finally:
        stop_server(s)
    problems = out[out.index("Problems"):] if "Problems" in out else ""
    for name in ("bad_mixed", "bad_syntax", "bad_constraint"):
        assert "%s/function.json" % name in problems, \
            "%s (unparsable route) not reported under Problems:\n%s" % (name, out)
    assert names == {"okfn"}, "functions with unparsable routes listed as served: %s" % names


# -- route prefixes "" and "v2" ---------------------------------------------------------

def _build_empty_prefix(app):
    write_app(app, host={"extensions": {"http": {"routePrefix": ""}}})
    write_function(app, "rootfn", "x/{id}")
    write_function(app, "everything", "{*all}")


@pytest.fixture(scope="module")
def esrv(tmp_path_factory):
    s = start_server(tmp_path_factory, "routes-empty", _build_empty_prefix)
    yield s
    stop_server(s)


def test_empty_prefix(esrv):
    got = call(esrv, "/x/1")
    assert (got["function"], got["params"]) == ("rootfn", {"id": "1"})
    got = call(esrv, "/api/x/1")
    assert (got["function"], got["params"]) == ("everything", {"all": "api/x/1"})
    got = call(esrv, "/")
    assert (got["function"], got["params"]) == ("everything", {})
    assert "http://127.0.0.1:%d/x/{id}" % esrv.port in esrv.stdout_text()


def test_empty_prefix_catch_all_cannot_take_admin(esrv):
    assert status_of(esrv, "/admin/host/ping") == 200
    key = master_key(esrv)
    status, _, body = request(esrv, "GET", "/admin/nope", headers={"x-functions-key": key})
    assert status == 404 and json.loads(body)["code"] == "NotFound"
    status, _, body = request(esrv, "GET", "/admin/host/status", headers={"x-functions-key": key})
    assert status == 200 and json.loads(body)["state"] == "Running"
    assert status_of(esrv, "/admin/nope") == 401
    assert status_of(esrv, "/runtime/webhooks/x") == 404


def _build_v2(app):
    write_app(app, host={"extensions": {"http": {"routePrefix": "v2"}}})
    write_function(app, "vfn", "x/{id}")


@pytest.fixture(scope="module")
def v2srv(tmp_path_factory):
    s = start_server(tmp_path_factory, "routes-v2", _build_v2)
    yield s
    stop_server(s)


def test_custom_prefix(v2srv):
    got = call(v2srv, "/v2/x/1")
    assert (got["function"], got["params"]) == ("vfn", {"id": "1"})
    assert who(v2srv, "/V2/x/1") == "vfn"
    for p in ("/api/x/1", "/x/1", "/v2x/x/1", "/v2", "/v2/x"):
        assert status_of(v2srv, p) == 404, p
    assert "http://127.0.0.1:%d/v2/x/{id}" % v2srv.port in v2srv.stdout_text()


# -- Host.LocalHttpPort -------------------------------------------------------------

class _NoPortNimbus(Nimbus):
    """A server started without --port: the host port must come from
    local.settings.json (self.port is set to that value for requests)."""

    def command(self):
        cmd = super().command()
        i = cmd.index("--port")
        return cmd[:i] + cmd[i + 2:]


def test_local_http_port_used_without_port_option(tmp_path):
    _require_apps()
    port = free_ports(1)[0]
    app = write_app(tmp_path / "app", settings={"IsEncrypted": False, "Values": {},
                                               "Host": {"LocalHttpPort": port}})
    write_function(app, "fn", "here")
    s = _NoPortNimbus(tmp_path, app_dir=app)
    s.port = port
    s.start()
    try:
        assert who(s, "/api/here") == "fn"
        assert "http://127.0.0.1:%d" % port in s.stdout_text()
    finally:
        stop_server(s)
