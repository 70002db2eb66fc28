"""Queue service conformance, driven by the Azure CLI (Debian azure-cli 2.45)
with `--connection-string` (the full string with QueueEndpoint; spec §0).
Every command runs in a loopback-only network namespace shared with the
server (see conftest.Netns), and we assert on its `-o json` output.

az takes about a second per call, so each test walks through a whole
workflow rather than one command.
"""
import datetime as dt
import uuid

import pytest


@pytest.fixture(scope="module")
def az(az_nimbus):
    return az_nimbus[1]


@pytest.fixture(scope="module")
def srv(az_nimbus):
    return az_nimbus[0]


def uname(prefix="cli"):
    return prefix + uuid.uuid4().hex[:12]


def ts(s):
    return dt.datetime.fromisoformat(s)


def az_fails(az, *args, **kw):
    rc, out, err = az.run(*args, expect_ok=False, **kw)
    assert rc != 0, "az %s should have failed, printed %r" % (" ".join(args), out)
    return err


def test_queue_create_exists_metadata_delete(az):
    q = uname()
    assert az("storage", "queue", "create", "-n", q, "--metadata", "a=b", "Mixed=Case") \
        == {"created": True}
    # Already there: without --fail-on-exist the CLI turns the error into false.
    assert az("storage", "queue", "create", "-n", q, "--metadata", "a=b", "Mixed=Case") \
        == {"created": False}
    assert az("storage", "queue", "create", "-n", q, "--metadata", "a=other") \
        == {"created": False}
    err = az_fails(az, "storage", "queue", "create", "-n", q, "--metadata", "a=other",
                   "--fail-on-exist")
    assert "QueueAlreadyExists" in err or "already exists" in err, err

    assert az("storage", "queue", "exists", "-n", q) == {"exists": True}
    assert az("storage", "queue", "exists", "-n", uname("nosuch")) == {"exists": False}

    assert az("storage", "queue", "metadata", "show", "-n", q) == {"a": "b", "Mixed": "Case"}
    upd = az("storage", "queue", "metadata", "update", "-n", q, "--metadata", "x=y")
    assert "updated" in upd, upd
    assert az("storage", "queue", "metadata", "show", "-n", q) == {"x": "y"}

    assert az("storage", "queue", "delete", "-n", q) == {"deleted": True}
    assert az("storage", "queue", "delete", "-n", q) == {"deleted": False}
    assert az("storage", "queue", "exists", "-n", q) == {"exists": False}
    err = az_fails(az, "storage", "queue", "delete", "-n", q, "--fail-not-exist")
    assert "QueueNotFound" in err or "does not exist" in err, err


def test_queue_list_prefix_metadata_and_marker(az):
    p = uname("ls")
    names = [p + "-a", p + "-b", p + "-c"]
    for i, n in enumerate(names):
        assert az("storage", "queue", "create", "-n", n, "--metadata", "i=%d" % i)["created"]
    other = uname("zz")
    az("storage", "queue", "create", "-n", other)

    listed = az("storage", "queue", "list", "--prefix", p)
    assert [e["name"] for e in listed] == names
    assert all(not e.get("metadata") for e in listed)

    with_md = az("storage", "queue", "list", "--prefix", p, "--include-metadata")
    assert [(e["name"], e["metadata"]) for e in with_md] == \
        [(n, {"i": str(i)}) for i, n in enumerate(names)]

    page = az("storage", "queue", "list", "--prefix", p, "--num-results", "2",
              "--show-next-marker")
    assert [e["name"] for e in page[:-1]] == names[:2]
    marker = page[-1]["nextMarker"]
    assert marker
    rest = az("storage", "queue", "list", "--prefix", p, "--num-results", "2",
              "--marker", marker, "--show-next-marker")
    assert [e.get("name") for e in rest if "name" in e] == names[2:]
    assert not rest[-1].get("nextMarker")

    everything = [e["name"] for e in az("storage", "queue", "list")]
    assert set(names + [other]) <= set(everything)
    for n in names + [other]:
        assert az("storage", "queue", "delete", "-n", n) == {"deleted": True}


def test_messages_put_peek_get_update_delete_clear(az):
    q = uname("msg")
    az("storage", "queue", "create", "-n", q)

    text = "hello <cli> & 'co' \"quoted\" caf\u00e9"
    put = az("storage", "message", "put", "-q", q, "--content", text, "--time-to-live", "120")
    uuid.UUID(put["id"])
    assert put["content"] == text
    assert put["popReceipt"]
    ins = ts(put["insertionTime"])
    assert (ts(put["expirationTime"]) - ins).total_seconds() == 120
    assert ts(put["timeNextVisible"]) == ins

    forever = az("storage", "message", "put", "-q", q, "--content", "forever",
                 "--time-to-live", "-1")
    assert ts(forever["expirationTime"]) == dt.datetime(9999, 12, 31, 23, 59, 59,
                                                        tzinfo=dt.timezone.utc)
    hidden = az("storage", "message", "put", "-q", q, "--content", "hidden",
                "--visibility-timeout", "300")
    assert (ts(hidden["timeNextVisible"]) - ts(hidden["insertionTime"])).total_seconds() == 300

    peek = az("storage", "message", "peek", "-q", q, "--num-messages", "32")
    assert [m["content"] for m in peek] == [text, "forever"]
    assert [m["id"] for m in peek] == [put["id"], forever["id"]]
    assert all(m["dequeueCount"] == 0 and m["popReceipt"] is None for m in peek)
    assert az("storage", "message", "peek", "-q", q)[0]["content"] == text

    got = az("storage", "message", "get", "-q", q, "--visibility-timeout", "60")
    assert len(got) == 1
    g = got[0]
    assert (g["id"], g["content"], g["dequeueCount"]) == (put["id"], text, 1)
    assert g["popReceipt"] and g["popReceipt"] != put["popReceipt"]
    assert (ts(g["timeNextVisible"]) - dt.datetime.now(dt.timezone.utc)).total_seconds() \
        == pytest.approx(60, abs=10)
    assert [m["content"] for m in az("storage", "message", "peek", "-q", q,
                                     "--num-messages", "32")] == ["forever"]

    upd = az("storage", "message", "update", "-q", q, "--id", g["id"], "--pop-receipt",
             g["popReceipt"], "--content", "updated", "--visibility-timeout", "0")
    assert upd["popReceipt"] and upd["popReceipt"] != g["popReceipt"]
    assert upd["content"] == "updated"
    # Order after an update is not pinned down (Azure orders by visibility
    # time, the spec says insertion order), so compare as sets.
    assert sorted(m["content"] for m in az("storage", "message", "peek", "-q", q,
                                           "--num-messages", "32")) == ["forever", "updated"]

    err = az_fails(az, "storage", "message", "delete", "-q", q, "--id", g["id"],
                   "--pop-receipt", g["popReceipt"])
    assert "PopReceiptMismatch" in err, err
    az("storage", "message", "delete", "-q", q, "--id", g["id"], "--pop-receipt",
       upd["popReceipt"])
    assert [m["content"] for m in az("storage", "message", "peek", "-q", q,
                                     "--num-messages", "32")] == ["forever"]

    two = az("storage", "message", "get", "-q", q, "--num-messages", "2",
             "--visibility-timeout", "30")
    assert [m["content"] for m in two] == ["forever"]
    assert two[0]["dequeueCount"] == 1

    az("storage", "message", "clear", "-q", q)
    assert az("storage", "message", "peek", "-q", q, "--num-messages", "32") == []
    assert az("storage", "queue", "delete", "-n", q) == {"deleted": True}
    err = az_fails(az, "storage", "message", "put", "-q", q, "--content", "x")
    assert "QueueNotFound" in err or "does not exist" in err, err


def test_policy_and_generate_sas(az, srv):
    q = uname("sas")
    az("storage", "queue", "create", "-n", q)
    az("storage", "queue", "policy", "create", "-q", q, "-n", "pol1", "--permissions", "raup",
       "--start", "2020-01-01T00:00:00Z", "--expiry", "2099-01-01T00:00:00Z")
    az("storage", "queue", "policy", "create", "-q", q, "-n", "addonly", "--permissions", "a",
       "--expiry", "2099-06-01T12:30:00Z")
    pols = az("storage", "queue", "policy", "list", "-q", q)
    assert set(pols) == {"pol1", "addonly"}
    assert pols["pol1"]["permission"] == "raup"
    assert ts(pols["pol1"]["start"]) == dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    assert ts(pols["pol1"]["expiry"]) == dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc)
    assert pols["addonly"]["permission"] == "a"
    assert ts(pols["addonly"]["expiry"]) == dt.datetime(2099, 6, 1, 12, 30,
                                                        tzinfo=dt.timezone.utc)

    expiry = (dt.datetime.now(dt.timezone.utc) + dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%MZ")
    sas = az("storage", "queue", "generate-sas", "-n", q, "--permissions", "ap",
             "--expiry", expiry)
    assert isinstance(sas, str) and "sig=" in sas and "sp=ap" in sas
    with_sas = ("--queue-endpoint", srv.queue_endpoint(), "--sas-token", sas)
    put = az("storage", "message", "put", "-q", q, "--content", "via sas", *with_sas,
             conn=False)
    assert put["content"] == "via sas"
    err = az_fails(az, "storage", "message", "peek", "-q", q, *with_sas, conn=False)
    # az replaces a 403 AuthorizationPermissionMismatch with its own advice text.
    assert "required permissions" in err or "AuthorizationPermissionMismatch" in err, err
    got = az("storage", "message", "get", "-q", q, *with_sas, conn=False)
    assert [m["content"] for m in got] == ["via sas"]

    by_policy = az("storage", "queue", "generate-sas", "-n", q, "--policy-name", "addonly")
    assert "si=addonly" in by_policy
    pol = ("--queue-endpoint", srv.queue_endpoint(), "--sas-token", by_policy)
    az("storage", "message", "put", "-q", q, "--content", "via policy", *pol, conn=False)
    az_fails(az, "storage", "message", "get", "-q", q, *pol, conn=False)

    expired = az("storage", "queue", "generate-sas", "-n", q, "--permissions", "raup",
                 "--expiry", "2001-01-01T00:00Z")
    err = az_fails(az, "storage", "message", "put", "-q", q, "--content", "late",
                   "--queue-endpoint", srv.queue_endpoint(), "--sas-token", expired,
                   conn=False)
    assert "Authentication failure" in err or "AuthenticationFailed" in err, err

    peek = az("storage", "message", "peek", "-q", q, "--num-messages", "32")
    assert [m["content"] for m in peek] == ["via policy"]
    az("storage", "queue", "delete", "-n", q)


def _split(v):
    return [x.strip() for x in v.split(",") if x.strip()]


def test_service_cors_logging_metrics(az):
    az("storage", "cors", "clear", "--services", "q")
    assert az("storage", "cors", "list", "--services", "q") == []

    az("storage", "cors", "add", "--services", "q", "--methods", "GET", "PUT",
       "--origins", "http://a.example", "http://b.example", "--allowed-headers", "x-ms-meta-*",
       "--exposed-headers", "x-ms-meta-*", "x-ms-request-id", "--max-age", "200")
    az("storage", "cors", "add", "--services", "q", "--methods", "DELETE", "--origins", "*")
    rules = az("storage", "cors", "list", "--services", "q")
    assert len(rules) == 2
    r = rules[0]
    assert r["Service"] == "queue"
    assert _split(r["AllowedOrigins"]) == ["http://a.example", "http://b.example"]
    assert _split(r["AllowedMethods"]) == ["GET", "PUT"]
    assert _split(r["AllowedHeaders"]) == ["x-ms-meta-*"]
    assert _split(r["ExposedHeaders"]) == ["x-ms-meta-*", "x-ms-request-id"]
    assert r["MaxAgeInSeconds"] == 200
    assert _split(rules[1]["AllowedOrigins"]) == ["*"]
    assert _split(rules[1]["AllowedMethods"]) == ["DELETE"]

    az("storage", "logging", "update", "--services", "q", "--log", "rd", "--retention", "5")
    lg = az("storage", "logging", "show", "--services", "q")["queue"]
    assert (lg["read"], lg["write"], lg["delete"]) == (True, False, True)
    assert lg["retentionPolicy"] == {"enabled": True, "days": 5}

    az("storage", "metrics", "update", "--services", "q", "--hour", "true", "--minute", "false",
       "--api", "true", "--retention", "3")
    m = az("storage", "metrics", "show", "--services", "q")["queue"]
    assert m["hour"]["enabled"] is True
    assert m["hour"]["includeApis"] is True
    assert m["hour"]["retentionPolicy"] == {"enabled": True, "days": 3}
    assert m["minute"]["enabled"] is False

    # Each partial update kept the other sections.
    lg = az("storage", "logging", "show", "--services", "q")["queue"]
    assert (lg["read"], lg["write"], lg["delete"]) == (True, False, True)
    assert len(az("storage", "cors", "list", "--services", "q")) == 2

    az("storage", "cors", "clear", "--services", "q")
    assert az("storage", "cors", "list", "--services", "q") == []
    m = az("storage", "metrics", "show", "--services", "q")["queue"]
    assert m["hour"]["retentionPolicy"] == {"enabled": True, "days": 3}
