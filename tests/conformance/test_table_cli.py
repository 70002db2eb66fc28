"""Table service conformance, driven by the Azure CLI (Debian azure-cli 2.45,
which uses the system azure-data-tables) with `--connection-string` holding
QueueEndpoint and TableEndpoint (spec §0). Every command runs in a
loopback-only network namespace shared with the server (conftest.Netns),
whose table port there is 10002, so `UseDevelopmentStorage=true` reaches it
too. Values written by the CLI are read back with the Python SDK (run inside
the same namespace) to check the types survive (spec §3.2: the CLI sends
typed values as strings with @odata.type annotations).

az takes about a second per call, so each test walks through a workflow.
"""
import datetime as dt
import textwrap
import uuid

import pytest


@pytest.fixture(scope="module")
def srv(az_nimbus):
    return az_nimbus[0]


class TableAz:
    """The suite's az runner with the full connection string by default."""

    def __init__(self, az, conn):
        self.az, self.conn = az, conn

    def run(self, *args, conn=None, **kw):
        return self.az.run(*args, conn=self.conn if conn is None else conn, **kw)

    def __call__(self, *args, **kw):
        return self.run(*args, **kw)[1]


@pytest.fixture(scope="module")
def az(az_nimbus):
    srv, base = az_nimbus
    assert srv.table_port == 10002
    return TableAz(base, srv.full_conn_str())


def tname(prefix="cli"):
    return prefix + uuid.uuid4().hex[:12]


def az_fails(az, *args, **kw):
    rc, out, err = az.run(*args, expect_ok=False, **kw)
    assert rc != 0, "az %s should have failed, printed %r" % (" ".join(args), out)
    return err


def ts(s):
    return dt.datetime.fromisoformat(s.replace("Z", "+00:00"))


# Runs inside the namespace: SDK helpers that print JSON with explicit types.
SDK_PRELUDE = textwrap.dedent('''
    import base64, datetime, json, math, uuid
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.data.tables import (EdmType, EntityProperty, TableClient, TableServiceClient,
                                   UpdateMode)
    CONN = %r
    KW = dict(retry_total=0, connection_timeout=5, read_timeout=30)

    def enc(v):
        if isinstance(v, EntityProperty):
            t = v.edm_type.value if hasattr(v.edm_type, "value") else v.edm_type
            return {"edm": t, "value": enc(v.value)}
        if isinstance(v, bool):
            return {"bool": v}
        if isinstance(v, int):
            return {"int": v}
        if isinstance(v, float):
            return {"float": repr(v)}
        if isinstance(v, datetime.datetime):
            return {"datetime": v.isoformat()}
        if isinstance(v, uuid.UUID):
            return {"guid": str(v)}
        if isinstance(v, bytes):
            return {"bytes": base64.b64encode(v).decode()}
        if isinstance(v, str):
            return {"str": v}
        return {"other": repr(v)}

    def table(name):
        return TableClient.from_connection_string(CONN, name, **KW)
''')


def sdk(srv, body):
    """Run SDK code (Python source using the prelude) inside the namespace;
    it must print one JSON document."""
    return srv.netns.python(SDK_PRELUDE % srv.full_conn_str() + textwrap.dedent(body))


# ---------------------------------------------------------------- tables


def test_table_create_exists_delete(az):
    t = tname()
    assert az("storage", "table", "create", "-n", t) == {"created": True}
    # Already there: create-if-not-exists semantics unless --fail-on-exist.
    assert az("storage", "table", "create", "-n", t) == {"created": True}
    err = az_fails(az, "storage", "table", "create", "-n", t, "--fail-on-exist")
    assert "TableAlreadyExists" in err or "already exists" in err, err
    assert az("storage", "table", "exists", "-n", t) == {"exists": True}
    assert az("storage", "table", "exists", "-n", tname("nosuch")) == {"exists": False}
    assert t in [x["name"] for x in az("storage", "table", "list")]

    assert az("storage", "table", "delete", "-n", t) == {"deleted": True}
    assert az("storage", "table", "exists", "-n", t) == {"exists": False}
    assert az("storage", "table", "delete", "-n", t) == {"deleted": False}
    err = az_fails(az, "storage", "table", "delete", "-n", t, "--fail-not-exist")
    assert "not exist" in err or "ResourceNotFound" in err, err
    assert t not in [x["name"] for x in az("storage", "table", "list")]


def test_table_list_paging_with_marker(az):
    p = tname("pg")
    names = [p + c for c in "abc"]
    for n in names:
        az("storage", "table", "create", "-n", n)
    everything = [x["name"] for x in az("storage", "table", "list")]
    assert set(names) <= set(everything)
    assert everything == sorted(everything)

    seen, marker = [], None
    for _ in range(len(everything) + 2):
        args = ["storage", "table", "list", "--num-results", "2", "--show-next-marker"]
        if marker:
            args += ["--marker", marker]
        page = az(*args)
        items = [x["name"] for x in page if "name" in x]
        assert len(items) <= 2
        seen += items
        marker = page[-1].get("nextMarker") if page and "nextMarker" in page[-1] else None
        if not marker:
            break
    assert seen == everything
    for n in names:
        az("storage", "table", "delete", "-n", n)


def test_table_stats_with_development_storage(az):
    out = az("storage", "table", "stats", conn="UseDevelopmentStorage=true")
    assert out["geoReplication"]["status"] == "live"
    assert out["geoReplication"]["lastSyncTime"]


def test_table_policy_create_list_and_sdk_view(az, srv):
    t = tname("pol")
    az("storage", "table", "create", "-n", t)
    az("storage", "table", "policy", "create", "-t", t, "-n", "pol1", "--permissions", "raud",
       "--start", "2020-01-01T00:00:00Z", "--expiry", "2099-01-01T00:00:00Z")
    # The short form the CLI passes through verbatim (spec §2.1): must be
    # normalized on GET or `policy list` crashes in the SDK parser.
    az("storage", "table", "policy", "create", "-t", t, "-n", "short", "--permissions", "r",
       "--expiry", "2030-01-01T00:00Z")
    pols = az("storage", "table", "policy", "list", "-t", t)
    assert set(pols) == {"pol1", "short"}, pols
    assert pols["pol1"]["permission"] == "raud"
    assert ts(pols["pol1"]["start"]) == dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc)
    assert ts(pols["pol1"]["expiry"]) == dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc)
    assert pols["short"]["permission"] == "r"
    assert ts(pols["short"]["expiry"]) == dt.datetime(2030, 1, 1, tzinfo=dt.timezone.utc)
    assert not pols["short"].get("start")
    got = sdk(srv, '''
        p = table(%r).get_table_access_policy()
        print(json.dumps({k: [v.permission, v.start.isoformat() if v.start else None,
                              v.expiry.isoformat()] for k, v in p.items()}))
    ''' % t)
    assert got == {"pol1": ["raud", "2020-01-01T00:00:00+00:00", "2099-01-01T00:00:00+00:00"],
                   "short": ["r", None, "2030-01-01T00:00:00+00:00"]}
    az("storage", "table", "delete", "-n", t)


# ---------------------------------------------------------------- entities


TYPED = ["Name=Some Name \u00e9 'q'", "Age=30", "Ratio=0.25",
         "Score=1.5", "Score@odata.type=Edm.Double",
         "Whole=2.0", "Whole@odata.type=Edm.Double",
         "Flag=true", "Flag@odata.type=Edm.Boolean",
         "Off=false", "Off@odata.type=Edm.Boolean",
         "Big=12345678901", "Big@odata.type=Edm.Int64",
         "Small=7", "Small@odata.type=Edm.Int32",
         "Txt=42", "Txt@odata.type=Edm.String",
         "Id=c9da6455-213d-42c9-9a79-3e9149a57833", "Id@odata.type=Edm.Guid",
         "When=2023-05-06T07:08:09Z", "When@odata.type=Edm.DateTime"]


def test_entity_insert_typed_values_read_by_sdk(az, srv):
    t = tname("ent")
    az("storage", "table", "create", "-n", t)
    az("storage", "entity", "insert", "-t", t, "-e", "PartitionKey=p1", "RowKey=r1", *TYPED)

    shown = az("storage", "entity", "show", "-t", t, "--partition-key", "p1", "--row-key", "r1")
    assert shown["PartitionKey"] == "p1" and shown["RowKey"] == "r1"
    assert shown["Name"] == "Some Name \u00e9 'q'"
    assert shown["Age"] == 30 and shown["Small"] == 7
    assert shown["Score"] == 1.5 and shown["Ratio"] == 0.25
    assert shown["Whole"] == 2.0 and isinstance(shown["Whole"], float)
    assert shown["Flag"] is True and shown["Off"] is False
    assert shown["Big"] == {"value": 12345678901, "edm_type": "Edm.Int64"}
    assert shown["Txt"] == "42"
    assert shown["Id"] == "c9da6455-213d-42c9-9a79-3e9149a57833"
    assert ts(shown["When"]) == dt.datetime(2023, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
    assert shown["etag"].startswith("W/\"datetime'")
    assert shown["Timestamp"]

    got = sdk(srv, '''
        e = table(%r).get_entity("p1", "r1")
        print(json.dumps({k: enc(v) for k, v in e.items()}))
    ''' % t)
    assert got["Flag"] == {"bool": True} and got["Off"] == {"bool": False}
    assert got["Score"] == {"float": "1.5"} and got["Ratio"] == {"float": "0.25"}
    assert got["Whole"] == {"float": "2.0"}            # stays a double (spec §3.2)
    assert got["Big"] == {"edm": "Edm.Int64", "value": {"int": 12345678901}}
    assert got["Age"] == {"int": 30} and got["Small"] == {"int": 7}
    assert got["Txt"] == {"str": "42"}
    assert got["Id"] == {"guid": "c9da6455-213d-42c9-9a79-3e9149a57833"}
    assert got["When"] == {"datetime": "2023-05-06T07:08:09+00:00"}
    assert got["Name"] == {"str": "Some Name \u00e9 'q'"}

    # Plain insert of an existing entity is refused (the CLI checks with a GET).
    err = az_fails(az, "storage", "entity", "insert", "-t", t, "-e", "PartitionKey=p1",
                   "RowKey=r1", "Age=31")
    assert "already exists" in err, err
    assert az("storage", "entity", "show", "-t", t, "--partition-key", "p1",
              "--row-key", "r1")["Age"] == 30
    az("storage", "entity", "insert", "-t", t, "--if-exists", "merge",
       "-e", "PartitionKey=p1", "RowKey=r1", "Age=31", "New=1")
    e = az("storage", "entity", "show", "-t", t, "--partition-key", "p1", "--row-key", "r1")
    assert (e["Age"], e["New"], e["Flag"]) == (31, 1, True)
    az("storage", "entity", "insert", "-t", t, "--if-exists", "replace",
       "-e", "PartitionKey=p1", "RowKey=r1", "Only=x")
    e = az("storage", "entity", "show", "-t", t, "--partition-key", "p1", "--row-key", "r1")
    assert {k for k in e if k not in ("etag", "Timestamp")} == {"PartitionKey", "RowKey", "Only"}
    az("storage", "table", "delete", "-n", t)


def test_entity_merge_replace_delete_with_etags(az):
    t = tname("mrd")
    az("storage", "table", "create", "-n", t)
    key = ("--partition-key", "p", "--row-key", "r")
    az("storage", "entity", "insert", "-t", t, "-e", "PartitionKey=p", "RowKey=r", "A=1", "B=b")
    first = az("storage", "entity", "show", "-t", t, *key)

    az("storage", "entity", "merge", "-t", t, "-e", "PartitionKey=p", "RowKey=r", "C=3")
    e = az("storage", "entity", "show", "-t", t, *key)
    assert (e["A"], e["B"], e["C"]) == (1, "b", 3)
    assert e["etag"] != first["etag"] and ts(e["Timestamp"]) > ts(first["Timestamp"])

    err = az_fails(az, "storage", "entity", "merge", "-t", t, "-e", "PartitionKey=p",
                   "RowKey=r", "D=4", "--if-match", first["etag"])
    assert "UpdateConditionNotSatisfied" in err or "condition" in err.lower(), err
    az("storage", "entity", "replace", "-t", t, "-e", "PartitionKey=p", "RowKey=r", "Z=26",
       "--if-match", e["etag"])
    e2 = az("storage", "entity", "show", "-t", t, *key)
    assert {k for k in e2 if k not in ("etag", "Timestamp")} == {"PartitionKey", "RowKey", "Z"}
    assert e2["Z"] == 26

    err = az_fails(az, "storage", "entity", "replace", "-t", t, "-e", "PartitionKey=p",
                   "RowKey=missing", "Z=1")
    assert "ResourceNotFound" in err or "not exist" in err, err
    err = az_fails(az, "storage", "entity", "delete", "-t", t, *key, "--if-match", e["etag"])
    assert "UpdateConditionNotSatisfied" in err or "condition" in err.lower(), err
    assert az("storage", "entity", "delete", "-t", t, *key, "--if-match", e2["etag"]) \
        == {"deleted": None}
    rc, out, err = az.run("storage", "entity", "show", "-t", t, *key, expect_ok=False)
    assert rc == 3, (rc, out, err)                  # az's "not found" exit status
    assert "ResourceNotFound" in err or "not exist" in err, err
    # Deleting a missing entity is not an error for the SDK (404 swallowed).
    assert az("storage", "entity", "delete", "-t", t, *key) == {"deleted": None}
    az("storage", "table", "delete", "-n", t)


def test_entity_query_filter_select_marker(az, srv):
    t = tname("qry")
    az("storage", "table", "create", "-n", t)
    # Seed through the SDK (one process instead of one az call per entity),
    # with every type, to check that the CLI shows SDK-written values.
    sdk(srv, '''
        tc = table(%r)
        for i in range(5):
            tc.create_entity({"PartitionKey": "p%%d" %% (i // 3), "RowKey": "r%%d" %% i,
                              "Age": i, "Name": "n%%d" %% i,
                              "Big": EntityProperty(2 ** 40 + i, EdmType.INT64),
                              "Bin": b"\\x00\\x01", "Id": uuid.UUID(int=i),
                              "When": datetime.datetime(2020, 1, 1, i,
                                                        tzinfo=datetime.timezone.utc),
                              "Dbl": 2.0})
        print("null")
    ''' % t)
    res = az("storage", "entity", "query", "-t", t)
    items = res["items"]
    assert [(e["PartitionKey"], e["RowKey"]) for e in items] == \
        [("p0", "r0"), ("p0", "r1"), ("p0", "r2"), ("p1", "r3"), ("p1", "r4")]
    e = items[3]
    assert e["Age"] == 3 and e["Name"] == "n3" and e["Dbl"] == 2.0
    assert e["Big"] == {"value": 2 ** 40 + 3, "edm_type": "Edm.Int64"}
    assert e["Bin"] == "AAE="
    assert e["Id"] == str(uuid.UUID(int=3))
    assert ts(e["When"]) == dt.datetime(2020, 1, 1, 3, tzinfo=dt.timezone.utc)
    assert not res["nextMarker"]

    res = az("storage", "entity", "query", "-t", t, "--filter", "Age gt 1 and Age lt 4")
    assert [x["RowKey"] for x in res["items"]] == ["r2", "r3"]
    res = az("storage", "entity", "query", "-t", t, "--filter", "Big ge 1099511627777L",
             "--select", "Name", "Age")
    assert [{k: v for k, v in x.items() if k not in ("etag", "Timestamp")}
            for x in res["items"]] == [{"Name": "n%d" % i, "Age": i} for i in range(1, 5)]

    page = az("storage", "entity", "query", "-t", t, "--num-results", "2")
    assert [x["RowKey"] for x in page["items"]] == ["r0", "r1"]
    mk = page["nextMarker"]
    assert set(mk) == {"nextpartitionkey", "nextrowkey"} and all(mk.values()), mk
    rest = []
    for _ in range(5):
        page = az("storage", "entity", "query", "-t", t, "--num-results", "2", "--marker",
                  "nextpartitionkey=%s" % mk["nextpartitionkey"],
                  "nextrowkey=%s" % mk["nextrowkey"])
        rest += [x["RowKey"] for x in page["items"]]
        mk = page["nextMarker"]
        if not mk:
            break
    assert rest == ["r2", "r3", "r4"]

    err = az_fails(az, "storage", "entity", "query", "-t", t, "--filter", "Age eqq 1")
    assert "InvalidInput" in err or "invalid" in err.lower(), err
    az("storage", "table", "delete", "-n", t)


def test_sdk_with_use_development_storage(srv):
    """UseDevelopmentStorage=true expands to http://127.0.0.1:10002 in the
    tables SDK (spec §0): it must work end to end, stats included."""
    t = tname("dev")
    got = sdk(srv, '''
        svc = TableServiceClient.from_connection_string("UseDevelopmentStorage=true", **KW)
        tc = svc.create_table(%r)
        tc.create_entity({"PartitionKey": "p", "RowKey": "r", "V": 1.0})
        tc.upsert_entity({"PartitionKey": "p", "RowKey": "r", "W": True})
        e = tc.get_entity("p", "r")
        names = [t.name for t in svc.query_tables("TableName eq @n", parameters={"n": %r})]
        stats = svc.get_service_stats()
        svc.delete_table(%r)
        print(json.dumps({"e": {k: enc(v) for k, v in e.items()}, "names": names,
                          "status": stats["geo_replication"]["status"]}))
    ''' % (t, t, t))
    assert got["names"] == [t]
    assert got["e"]["V"] == {"float": "1.0"} and got["e"]["W"] == {"bool": True}
    assert got["status"] == "live"


# ---------------------------------------------------------------- service properties


def _split(v):
    return [x.strip() for x in v.split(",") if x.strip()]


def test_service_cors_logging_metrics_table(az):
    az("storage", "cors", "clear", "--services", "t")
    assert az("storage", "cors", "list", "--services", "t") == []

    az("storage", "cors", "add", "--services", "t", "--methods", "GET", "PUT",
       "--origins", "http://a.example", "http://b.example", "--allowed-headers", "x-ms-meta-*",
       "--exposed-headers", "x-ms-meta-*", "x-ms-request-id", "--max-age", "200")
    az("storage", "cors", "add", "--services", "t", "--methods", "DELETE", "MERGE",
       "--origins", "*")
    rules = az("storage", "cors", "list", "--services", "t")
    assert len(rules) == 2, rules
    r = rules[0]
    assert r["Service"] == "table"
    assert _split(r["AllowedOrigins"]) == ["http://a.example", "http://b.example"]
    assert _split(r["AllowedMethods"]) == ["GET", "PUT"]
    assert _split(r["AllowedHeaders"]) == ["x-ms-meta-*"]
    assert _split(r["ExposedHeaders"]) == ["x-ms-meta-*", "x-ms-request-id"]
    assert r["MaxAgeInSeconds"] == 200
    assert _split(rules[1]["AllowedOrigins"]) == ["*"]
    assert _split(rules[1]["AllowedMethods"]) == ["DELETE", "MERGE"]
    # The queue service's properties are separate.
    both = az("storage", "cors", "list", "--services", "qt")
    assert [x["Service"] for x in both] == ["table", "table"], both

    az("storage", "logging", "update", "--services", "t", "--log", "rd", "--retention", "5")
    lg = az("storage", "logging", "show", "--services", "t")["table"]
    assert (lg["read"], lg["write"], lg["delete"]) == (True, False, True)
    assert lg["retentionPolicy"] == {"enabled": True, "days": 5}

    az("storage", "metrics", "update", "--services", "t", "--hour", "true", "--minute", "false",
       "--api", "true", "--retention", "3")
    m = az("storage", "metrics", "show", "--services", "t")["table"]
    assert m["hour"]["enabled"] is True
    assert m["hour"]["includeApis"] is True
    assert m["hour"]["retentionPolicy"] == {"enabled": True, "days": 3}
    assert m["minute"]["enabled"] is False

    # Each partial update kept the other sections.
    lg = az("storage", "logging", "show", "--services", "t")["table"]
    assert (lg["read"], lg["write"], lg["delete"]) == (True, False, True)
    assert len(az("storage", "cors", "list", "--services", "t")) == 2

    az("storage", "cors", "clear", "--services", "t")
    assert az("storage", "cors", "list", "--services", "t") == []
    m = az("storage", "metrics", "show", "--services", "t")["table"]
    assert m["hour"]["retentionPolicy"] == {"enabled": True, "days": 3}
