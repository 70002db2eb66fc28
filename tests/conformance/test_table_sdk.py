"""Table service conformance, driven by the official Python SDK
(azure.data.tables 12.4.2) and, for what the SDK hides, raw HTTP signed with
the table SharedKey scheme (conftest.sharedkey_table).
Spec: shared/protocols/storage-queue-table.md §0, §1, §3, §4, §5.

Clients are built with endpoint http://127.0.0.1:<table port>/devstoreaccount1
and an AzureNamedKeyCredential (or a connection string with TableEndpoint):
never `localhost`, which azure-data-tables treats as Cosmos on any port but
10002 (one test uses exactly that on purpose, to drive X-HTTP-Method). The
suite's port is random, so `UseDevelopmentStorage=true` (fixed to 10002) is
exercised in test_table_cli.py, whose namespaced server listens on 10002.
"""
import base64
import datetime as dt
import json
import math
import re
import threading
import urllib.parse
import uuid
import xml.etree.ElementTree as ET

import pytest
from azure.core import MatchConditions
from azure.core.credentials import AzureNamedKeyCredential, AzureSasCredential
from azure.core.exceptions import (ClientAuthenticationError, HttpResponseError,
                                   ResourceExistsError, ResourceModifiedError,
                                   ResourceNotFoundError)
from azure.data.tables import (AccountSasPermissions, EdmType, EntityProperty, ResourceTypes,
                               TableAccessPolicy, TableAnalyticsLogging, TableClient,
                               TableCorsRule, TableMetrics, TableRetentionPolicy,
                               TableSasPermissions, TableServiceClient, TableTransactionError,
                               UpdateMode, generate_account_sas, generate_table_sas)
from azure.data.tables._deserialize import TablesEntityDatetime
from azure.data.tables._table_batch import TableBatchOperations

from conftest import DEV_ACCOUNT, DEV_KEY, Nimbus

# Fail fast: the SDK retries 5xx/408 with long backoffs by default.
SDK_KW = dict(retry_total=0, connection_timeout=5, read_timeout=30)
CRED = AzureNamedKeyCredential(DEV_ACCOUNT, DEV_KEY)
UTC = dt.timezone.utc

TS7 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")
ETAG = re.compile(r"^W/\"datetime'\d{4}-\d\d-\d\dT\d\d%3A\d\d%3A\d\d\.\d{7}Z'\"$")
RFC1123 = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|"
                     r"Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$")
ERR_TIME = re.compile(r"Time:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


def tname(prefix="t"):
    return prefix + uuid.uuid4().hex[:16]


@pytest.fixture(scope="module")
def tsc(nimbus):
    return TableServiceClient(endpoint=nimbus.table_endpoint(), credential=CRED, **SDK_KW)


def client(nimbus, name, credential=CRED, endpoint=None):
    return TableClient(endpoint=endpoint or nimbus.table_endpoint(), table_name=name,
                       credential=credential, **SDK_KW)


@pytest.fixture
def table(nimbus, tsc):
    name = tname()
    tsc.create_table(name)
    tc = client(nimbus, name)
    yield tc
    try:
        tsc.delete_table(name)
    except Exception:
        pass


def ent(pk, rk, **props):
    d = {"PartitionKey": pk, "RowKey": rk}
    d.update(props)
    return d


def keys(entities):
    return [(e["PartitionKey"], e["RowKey"]) for e in entities]


def err_code(e):
    """The service error code as the SDK surfaces it. TableClient.create_entity
    (12.4.2) re-raises azure-core's exception, which has no error_code
    attribute; the x-ms-error-code header is then the only place it is."""
    code = getattr(e, "error_code", None)
    if code is None and getattr(e, "response", None) is not None:
        code = e.response.headers.get("x-ms-error-code")
    return code


def raises(exc, code, call, status=None):
    """call() must raise exc with this error_code (and status)."""
    with pytest.raises(exc) as ei:
        call()
    assert err_code(ei.value) == code, (err_code(ei.value), ei.value)
    if status is not None:
        assert ei.value.status_code == status, ei.value
    return ei.value


def forbidden(call, code=None):
    """The call must fail with 403 (and the given x-ms-error-code). The SDK
    raises ClientAuthenticationError only for AuthenticationFailed; other 403
    codes arrive as HttpResponseError."""
    with pytest.raises(HttpResponseError) as ei:
        call()
    assert ei.value.status_code == 403, ei.value
    if code:
        assert err_code(ei.value) == code, ei.value
    if getattr(ei.value, "error_code", None) == "AuthenticationFailed":
        assert isinstance(ei.value, ClientAuthenticationError)
    return ei.value


def expiry(nimbus, seconds=3600):
    return nimbus.server_now() + dt.timedelta(seconds=seconds)


# ---------------------------------------------------------------- raw helpers


def kq(k):
    """A key as it goes in a URL literal: quotes doubled, then %-encoded."""
    return urllib.parse.quote(k.replace("'", "''"), safe="")


def epath(table_name, pk, rk):
    return "%s(PartitionKey='%s',RowKey='%s')" % (table_name, kq(pk), kq(rk))


def raw(nimbus, method, path, **kw):
    """Raw table request to /devstoreaccount1/<path>."""
    return nimbus.table_request(method, "/%s/%s" % (DEV_ACCOUNT, path), **kw)


def odata_error(resp, status, code):
    """The exact error shape of spec §3.7."""
    st, h, body = resp
    assert st == status, (st, body)
    assert h.get("x-ms-error-code") == code, (h, body)
    assert h.get("content-type", "").startswith("application/json"), h
    doc = json.loads(body)
    assert list(doc) == ["odata.error"], doc
    err = doc["odata.error"]
    assert sorted(err) == ["code", "message"], err
    assert err["code"] == code
    assert isinstance(err["message"], dict), err
    assert sorted(err["message"]) == ["lang", "value"], err
    assert err["message"]["lang"] == "en-US"
    value = err["message"]["value"]
    assert "RequestId:" + h.get("x-ms-request-id", "?") in value, value
    assert ERR_TIME.search(value), value
    return value


def annotations(doc):
    return {k[:-len("@odata.type")]: v for k, v in doc.items() if k.endswith("@odata.type")}


# ---------------------------------------------------------------- clients / connection strings


def test_from_connection_string_full_and_table_only(nimbus):
    name = tname("cs")
    full = TableServiceClient.from_connection_string(nimbus.full_conn_str(), **SDK_KW)
    assert full.url.startswith(nimbus.table_endpoint())
    full.create_table(name)
    try:
        only = TableClient.from_connection_string(nimbus.table_conn_str(), name, **SDK_KW)
        only.create_entity(ent("p", "r", V=1))
        svc = TableServiceClient.from_connection_string(nimbus.table_conn_str(), **SDK_KW)
        assert name in [t.name for t in svc.query_tables("TableName eq @n",
                                                         parameters={"n": name})]
        assert svc.get_table_client(name).get_entity("p", "r")["V"] == 1
    finally:
        full.delete_table(name)


def test_from_table_url_with_sas(nimbus, table):
    table.create_entity(ent("p", "r", V=7))
    sas = generate_table_sas(CRED, table.table_name, permission="r", expiry=expiry(nimbus))
    url = "%s/%s?%s" % (nimbus.table_endpoint(), table.table_name, sas)
    tc = TableClient.from_table_url(url, **SDK_KW)
    assert tc.table_name == table.table_name
    assert tc.get_entity("p", "r")["V"] == 7


def test_localhost_cosmos_mode_tunnels_merge(nimbus, table):
    """With host `localhost` on a port other than 10002 the SDK switches to
    Cosmos mode and sends every PATCH as POST + X-HTTP-Method: MERGE (spec
    §0). The server must treat that exactly like a merge."""
    if nimbus.table_port == 10002:
        pytest.skip("port 10002 is not Cosmos mode")
    tc = client(nimbus, table.table_name,
                endpoint="http://localhost:%d/%s" % (nimbus.table_port, DEV_ACCOUNT))
    assert tc._cosmos_endpoint            # sanity: we really are in Cosmos mode
    tc.upsert_entity(ent("p", "r", A=1))  # insert-or-merge, tunnelled
    tc.upsert_entity(ent("p", "r", B=2))
    tc.update_entity(ent("p", "r", C=3), mode=UpdateMode.MERGE)
    got = table.get_entity("p", "r")
    assert (got["A"], got["B"], got["C"]) == (1, 2, 3)
    tc.upsert_entity(ent("p", "r", D=4), mode=UpdateMode.REPLACE)   # PUT: not tunnelled
    got = table.get_entity("p", "r")
    assert "A" not in got and got["D"] == 4


# ---------------------------------------------------------------- tables


def test_create_table_and_already_exists(nimbus, tsc):
    name = tname("cr")
    tc = tsc.create_table(name)
    assert tc.table_name == name
    try:
        raises(ResourceExistsError, "TableAlreadyExists", lambda: tsc.create_table(name), 409)
        raises(ResourceExistsError, "TableAlreadyExists",
               lambda: client(nimbus, name).create_table(), 409)
        assert name in [t.name for t in tsc.list_tables()]
    finally:
        tsc.delete_table(name)


def test_table_client_create_table_returns_item(nimbus):
    name = tname("tci")
    tc = client(nimbus, name)
    item = tc.create_table()
    assert item.name == name
    tc.delete_table()
    tc.delete_table()         # missing: swallowed by the SDK


def test_create_table_if_not_exists(tsc):
    name = tname("ine")
    a = tsc.create_table_if_not_exists(name)
    a.create_entity(ent("p", "r", V=1))
    b = tsc.create_table_if_not_exists(name)       # exists: no error, data kept
    assert b.get_entity("p", "r")["V"] == 1
    tsc.delete_table(name)


def test_delete_table_and_missing(nimbus, tsc):
    name = tname("del")
    tc = tsc.create_table(name)
    tc.create_entity(ent("p", "r"))
    tc.set_table_access_policy({"pol": TableAccessPolicy(
        permission="r", expiry=dt.datetime(2099, 1, 1, tzinfo=UTC))})
    tsc.delete_table(name)
    assert name not in [t.name for t in tsc.query_tables("TableName eq @n",
                                                         parameters={"n": name})]
    tsc.delete_table(name)                         # missing: swallowed
    raises(ResourceNotFoundError, "TableNotFound", lambda: tc.get_entity("p", "r"), 404)
    odata_error(raw(nimbus, "DELETE", "Tables('%s')" % name), 404, "ResourceNotFound")
    # A re-created table starts empty.
    tsc.create_table(name)
    try:
        assert list(client(nimbus, name).list_entities()) == []
        assert client(nimbus, name).get_table_access_policy() == {}      # ACL went too
    finally:
        tsc.delete_table(name)


def test_table_names_case_insensitive_case_preserving(nimbus, tsc):
    name = "Mixed" + uuid.uuid4().hex[:10] + "CaseX"
    tsc.create_table(name)
    try:
        raises(ResourceExistsError, "TableAlreadyExists", lambda: tsc.create_table(name.lower()))
        listed = [t.name for t in tsc.list_tables() if t.name.lower() == name.lower()]
        assert listed == [name]
        client(nimbus, name.upper()).create_entity(ent("p", "r", V=1))
        assert client(nimbus, name.lower()).get_entity("p", "r")["V"] == 1
    finally:
        tsc.delete_table(name.lower())
    assert not [t for t in tsc.list_tables() if t.name.lower() == name.lower()]


def test_list_tables_paging_and_continuation(tsc):
    p = "pg" + uuid.uuid4().hex[:10]
    names = [p + c for c in "abcde"]
    for n in reversed(names):
        tsc.create_table(n)
    try:
        pages = [[t.name for t in page] for page in tsc.list_tables(results_per_page=2).by_page()]
        assert all(1 <= len(pg) <= 2 for pg in pages), pages
        assert all(len(pg) == 2 for pg in pages[:-1]), pages
        flat = [n for pg in pages for n in pg]
        assert len(flat) == len(set(flat))
        assert flat == sorted(flat)
        assert [n for n in flat if n.startswith(p)] == names

        flt = "TableName ge @lo and TableName lt @hi"
        params = {"lo": p, "hi": p + "{"}
        it = tsc.query_tables(flt, parameters=params, results_per_page=2).by_page()
        first = [t.name for t in next(it)]
        token = it.continuation_token
        assert first == names[:2]
        assert token
        resumed = tsc.query_tables(flt, parameters=params, results_per_page=2).by_page(
            continuation_token=token)
        rest = [[t.name for t in page] for page in resumed]
        assert [pg for pg in rest if pg] == [names[2:4], names[4:]]   # see test_query_select_and_paging
        assert resumed.continuation_token is None
    finally:
        for n in names:
            tsc.delete_table(n)


def test_query_tables_filters(tsc):
    p = "qt" + uuid.uuid4().hex[:10]
    names = [p + "x1", p + "x2", p + "y1"]
    for n in names:
        tsc.create_table(n)
    try:
        assert [t.name for t in tsc.query_tables("TableName eq @n",
                                                 parameters={"n": names[1]})] == [names[1]]
        assert [t.name for t in tsc.query_tables("TableName eq '%s'" % names[2])] == [names[2]]
        got = [t.name for t in tsc.query_tables(
            "TableName ge @a and TableName lt @b", parameters={"a": p + "x", "b": p + "y"})]
        assert got == names[:2]
        got = [t.name for t in tsc.query_tables(
            "TableName eq @a or TableName eq @b", parameters={"a": names[0], "b": names[2]})]
        assert got == [names[0], names[2]]
        assert list(tsc.query_tables("TableName eq @n", parameters={"n": p + "zzz"})) == []
        raises(HttpResponseError, "InvalidInput",
               lambda: list(tsc.query_tables("TableName eqq 'x'")), 400)
    finally:
        for n in names:
            tsc.delete_table(n)


@pytest.mark.parametrize("bad", ["1abc", "a-bc", "ab", "a" * 64, "abc_d", "tab le"])
def test_bad_table_names_sdk_raises_value_error(nimbus, bad):
    """The SDK turns the server's InvalidResourceName / OutOfRangeInput into
    ValueError (it matches the message text, spec §3.5)."""
    with pytest.raises(ValueError):
        client(nimbus, bad).create_table()


@pytest.mark.parametrize("bad,codes", [
    ("1abc", {"InvalidResourceName"}),
    ("a-bc", {"InvalidResourceName"}),
    ("abc_d", {"InvalidResourceName"}),
    ("ab", {"InvalidResourceName", "OutOfRangeInput"}),
    ("a" * 64, {"InvalidResourceName", "OutOfRangeInput"}),
    ("tables", {"InvalidResourceName"}),
])
def test_bad_table_names_raw(nimbus, bad, codes):
    st, h, body = raw(nimbus, "POST", "Tables", body={"TableName": bad})
    assert st == 400, (st, body)
    assert h.get("x-ms-error-code") in codes, (h, body)
    odata_error((st, h, body), 400, h["x-ms-error-code"])


def test_good_table_name_edges(tsc):
    for n in ("abc", "A" + "b" * 61 + "9"):
        tsc.create_table(n)
        assert [t.name for t in tsc.query_tables("TableName eq @n", parameters={"n": n})] == [n]
        tsc.delete_table(n)


def test_missing_table_errors(nimbus):
    tc = client(nimbus, tname("nosuch"))
    raises(ResourceNotFoundError, "TableNotFound", lambda: tc.get_entity("p", "r"), 404)
    raises(ResourceNotFoundError, "TableNotFound", lambda: tc.create_entity(ent("p", "r")), 404)
    raises(ResourceNotFoundError, "TableNotFound", lambda: list(tc.list_entities()), 404)
    raises(ResourceNotFoundError, "TableNotFound",
           lambda: tc.upsert_entity(ent("p", "r")), 404)
    with pytest.raises(ResourceNotFoundError):
        tc.get_table_access_policy()


# ---------------------------------------------------------------- service level


def test_service_properties_defaults_complete(tsc):
    props = tsc.get_service_properties()
    assert set(props) == {"analytics_logging", "hour_metrics", "minute_metrics", "cors"}
    assert props["analytics_logging"].version == "1.0"
    assert isinstance(props["cors"], list)


def test_service_properties_partial_sets_merge(nimbus, tsc):
    tsc.set_service_properties(analytics_logging=TableAnalyticsLogging(
        read=True, write=False, delete=True,
        retention_policy=TableRetentionPolicy(enabled=True, days=5)))
    lg = tsc.get_service_properties()["analytics_logging"]
    assert (lg.read, lg.write, lg.delete) == (True, False, True)
    assert (lg.retention_policy.enabled, lg.retention_policy.days) == (True, 5)

    rules = [TableCorsRule(["http://a.example", "http://b.example"], ["GET", "PUT"],
                           allowed_headers=["x-ms-meta-*"],
                           exposed_headers=["x-ms-meta-*", "x-ms-request-id"],
                           max_age_in_seconds=200),
             TableCorsRule(["*"], ["DELETE"], max_age_in_seconds=0)]
    tsc.set_service_properties(cors=rules)                 # only <Cors> is sent
    p = tsc.get_service_properties()
    lg = p["analytics_logging"]
    assert (lg.read, lg.write, lg.delete, lg.retention_policy.days) == (True, False, True, 5)
    assert len(p["cors"]) == 2
    r0, r1 = p["cors"]
    assert r0.allowed_origins == ["http://a.example", "http://b.example"]
    assert r0.allowed_methods == ["GET", "PUT"]
    assert r0.allowed_headers == ["x-ms-meta-*"]
    assert r0.exposed_headers == ["x-ms-meta-*", "x-ms-request-id"]
    assert r0.max_age_in_seconds == 200
    assert (r1.allowed_origins, r1.allowed_methods) == (["*"], ["DELETE"])

    tsc.set_service_properties(
        hour_metrics=TableMetrics(enabled=True, include_apis=True,
                                  retention_policy=TableRetentionPolicy(enabled=True, days=3)),
        minute_metrics=TableMetrics(enabled=False))
    p = tsc.get_service_properties()
    hm, mm = p["hour_metrics"], p["minute_metrics"]
    assert (hm.enabled, hm.include_apis) == (True, True)
    assert (hm.retention_policy.enabled, hm.retention_policy.days) == (True, 3)
    assert mm.enabled is False
    assert len(p["cors"]) == 2
    assert p["analytics_logging"].read is True

    # The XML always carries all four sections.
    st, _, body = raw(nimbus, "GET", "?restype=service&comp=properties",
                      accept="application/xml")
    assert st == 200, body
    root = ET.fromstring(body)
    assert root.tag == "StorageServiceProperties"
    for section in ("Logging", "HourMetrics", "MinuteMetrics", "Cors"):
        assert root.find(section) is not None, section

    # Table properties are the table service's own: queue CORS is untouched.
    st, _, qbody = nimbus.queue_request("GET", "/%s/?restype=service&comp=properties"
                                        % DEV_ACCOUNT)
    assert st == 200, qbody
    qorigins = [e.text for e in ET.fromstring(qbody).iter("AllowedOrigins")]
    assert "http://a.example,http://b.example" not in qorigins


def test_service_properties_at_most_five_cors_rules(tsc):
    before = tsc.get_service_properties()["cors"]
    six = [TableCorsRule(["http://h%d.example" % i], ["GET"]) for i in range(6)]
    with pytest.raises(HttpResponseError) as ei:
        tsc.set_service_properties(cors=six)
    assert ei.value.status_code == 400
    after = tsc.get_service_properties()["cors"]
    assert [r.allowed_origins for r in after] == [r.allowed_origins for r in before]


def test_service_stats(nimbus, tsc):
    stats = tsc.get_service_stats()
    geo = stats["geo_replication"]
    assert geo["status"] == "live"
    assert geo["last_sync_time"] is not None
    # Raw: sent to the secondary path, signed over the primary one (spec §1.2).
    st, h, body = nimbus.table_request(
        "GET", "/%s-secondary/%s/?restype=service&comp=stats" % (DEV_ACCOUNT, DEV_ACCOUNT),
        accept="application/xml")
    assert st == 200, body
    root = ET.fromstring(body)
    assert root.tag == "StorageServiceStats"
    assert root.findtext("GeoReplication/Status") == "live"
    assert RFC1123.match(root.findtext("GeoReplication/LastSyncTime") or "")


# ---------------------------------------------------------------- entities: CRUD


def test_create_entity_and_conflict(table):
    md = table.create_entity(ent("p", "r", V=1))
    assert ETAG.match(md["etag"]), md
    raises(ResourceExistsError, "EntityAlreadyExists",
           lambda: table.create_entity(ent("p", "r", V=2)), 409)
    assert table.get_entity("p", "r")["V"] == 1
    # Keys are case-sensitive: this is a different entity.
    table.create_entity(ent("P", "r", V=3))
    assert table.get_entity("P", "r")["V"] == 3
    assert table.get_entity("p", "r")["V"] == 1


def test_get_entity_select_and_missing(table):
    table.create_entity(ent("p", "r", A="a", B=2, C=3.5))
    e = table.get_entity("p", "r", select=["A", "C"])
    assert dict(e) == {"A": "a", "C": 3.5}
    assert ETAG.match(e.metadata["etag"])
    e = table.get_entity("p", "r", select="PartitionKey,B")
    assert dict(e) == {"PartitionKey": "p", "B": 2}
    full = table.get_entity("p", "r")
    assert dict(full) == {"PartitionKey": "p", "RowKey": "r", "A": "a", "B": 2, "C": 3.5}
    raises(ResourceNotFoundError, "ResourceNotFound", lambda: table.get_entity("p", "nope"), 404)


def test_upsert_merge_and_replace(table):
    table.upsert_entity(ent("p", "m", A=1))                       # creates
    table.upsert_entity(ent("p", "m", B=2))                       # merges
    assert dict(table.get_entity("p", "m")) == ent("p", "m", A=1, B=2)
    table.upsert_entity(ent("p", "m", A=10), mode=UpdateMode.MERGE)
    assert dict(table.get_entity("p", "m")) == ent("p", "m", A=10, B=2)

    table.upsert_entity(ent("p", "x", A=1), mode=UpdateMode.REPLACE)    # creates
    table.upsert_entity(ent("p", "x", B=2), mode=UpdateMode.REPLACE)    # replaces
    assert dict(table.get_entity("p", "x")) == ent("p", "x", B=2)


def test_update_merge_replace_unconditional(table):
    table.create_entity(ent("p", "u", A=1, B=2))
    table.update_entity(ent("p", "u", B=20, C=30), mode=UpdateMode.MERGE)
    assert dict(table.get_entity("p", "u")) == ent("p", "u", A=1, B=20, C=30)
    table.update_entity(ent("p", "u", D=4), mode=UpdateMode.REPLACE)
    assert dict(table.get_entity("p", "u")) == ent("p", "u", D=4)
    raises(ResourceNotFoundError, "ResourceNotFound",
           lambda: table.update_entity(ent("p", "missing", A=1)), 404)
    raises(ResourceNotFoundError, "ResourceNotFound",
           lambda: table.update_entity(ent("p", "missing", A=1), mode=UpdateMode.REPLACE), 404)
    with pytest.raises(ResourceNotFoundError):
        table.get_entity("p", "missing")          # update never creates


@pytest.mark.parametrize("mode", [UpdateMode.MERGE, UpdateMode.REPLACE])
def test_update_if_not_modified(table, mode):
    table.create_entity(ent("p", "c", V=1))
    e = table.get_entity("p", "c")
    old = e.metadata["etag"]
    md = table.update_entity(ent("p", "c", V=2), mode=mode, etag=old,
                             match_condition=MatchConditions.IfNotModified)
    assert md["etag"] != old and ETAG.match(md["etag"])
    err = raises(ResourceModifiedError, "UpdateConditionNotSatisfied",
                 lambda: table.update_entity(ent("p", "c", V=3), mode=mode, etag=old,
                                             match_condition=MatchConditions.IfNotModified),
                 412)
    assert err is not None
    assert table.get_entity("p", "c")["V"] == 2
    # The entity's own metadata etag is used when none is passed.
    cur = table.get_entity("p", "c")
    cur["V"] = 4
    table.update_entity(cur, mode=mode, match_condition=MatchConditions.IfNotModified)
    assert table.get_entity("p", "c")["V"] == 4
    with pytest.raises(ResourceModifiedError):
        table.update_entity(cur, mode=mode, match_condition=MatchConditions.IfNotModified)
    # If-Match on a missing entity: 404, not 412.
    raises(ResourceNotFoundError, "ResourceNotFound",
           lambda: table.update_entity(ent("p", "gone", V=1), mode=mode, etag=old,
                                       match_condition=MatchConditions.IfNotModified))


def test_delete_entity_conditions(nimbus, table):
    table.create_entity(ent("p", "d", V=1))
    old = table.get_entity("p", "d").metadata["etag"]
    table.update_entity(ent("p", "d", V=2))
    raises(ResourceModifiedError, "UpdateConditionNotSatisfied",
           lambda: table.delete_entity("p", "d", etag=old,
                                       match_condition=MatchConditions.IfNotModified), 412)
    cur = table.get_entity("p", "d")
    table.delete_entity(cur, match_condition=MatchConditions.IfNotModified)
    with pytest.raises(ResourceNotFoundError):
        table.get_entity("p", "d")
    table.delete_entity("p", "d")                   # missing: swallowed by the SDK
    table.delete_entity(partition_key="p", row_key="never")
    odata_error(raw(nimbus, "DELETE", epath(table.table_name, "p", "d"),
                    headers={"If-Match": "*"}), 404, "ResourceNotFound")


@pytest.mark.parametrize("pk,rk", [
    ("a b'c&\u00e9", "r%20+=x"),
    ("'quoted'", "it''s"),
    ("a,b)", "(x='y',z)"),
    ("sp ace", " lead and trail "),
    ("\u2603\u00e9\u4e2d", "~!@$^*()_-[]{}:;.<>|`"),
])
def test_special_key_characters(table, pk, rk):
    table.create_entity(ent(pk, rk, V=1))
    e = table.get_entity(pk, rk)
    assert (e["PartitionKey"], e["RowKey"], e["V"]) == (pk, rk, 1)
    table.update_entity(ent(pk, rk, V=2), mode=UpdateMode.MERGE)
    table.upsert_entity(ent(pk, rk, W=3), mode=UpdateMode.MERGE)
    e = table.get_entity(pk, rk)
    assert (e["V"], e["W"]) == (2, 3)
    got = list(table.query_entities("PartitionKey eq @p and RowKey eq @r",
                                    parameters={"p": pk, "r": rk}))
    assert keys(got) == [(pk, rk)]
    # The same keys inside a transaction (absolute sub-request URLs).
    table.submit_transaction([("update", ent(pk, rk, X=4), {"mode": UpdateMode.REPLACE}),
                              ("upsert", ent(pk, rk + "2", Y=5))])
    assert dict(table.get_entity(pk, rk)) == ent(pk, rk, X=4)
    table.submit_transaction([("delete", ent(pk, rk + "2"))])
    table.delete_entity(pk, rk)
    with pytest.raises(ResourceNotFoundError):
        table.get_entity(pk, rk)
    assert list(table.list_entities()) == []


def test_same_keys_in_two_tables_are_independent(nimbus, tsc, table):
    other = tsc.create_table(tname())
    try:
        table.create_entity(ent("p", "r", V=1))
        other.create_entity(ent("p", "r", V=2))
        assert table.get_entity("p", "r")["V"] == 1
        assert other.get_entity("p", "r")["V"] == 2
    finally:
        tsc.delete_table(other.table_name)
    assert table.get_entity("p", "r")["V"] == 1


# ---------------------------------------------------------------- Edm types


NAN, INF = float("nan"), float("inf")
GUID = uuid.UUID("c9da6455-213d-42c9-9a79-3e9149a57833")
ROUND_TRIP = {
    "Str": "text 'single' \"double\" caf\u00e9 \u2603 \U0001F600 <&> \\ / %2B+ tab\t nl\n end",
    "Empty": "",
    "I32": 42, "I32Min": -2 ** 31, "I32Max": 2 ** 31 - 1, "Zero": 0, "Neg": -7,
    "I64": EntityProperty(5, EdmType.INT64),
    "I64Big": EntityProperty(2 ** 53 + 1, EdmType.INT64),
    "I64Max": EntityProperty(2 ** 63 - 1, EdmType.INT64),
    "I64Min": EntityProperty(-2 ** 63, EdmType.INT64),
    "I64Mid": EntityProperty(3000000000, EdmType.INT64),
    "Dbl": 3.5, "DblWhole": 2.0, "DblWholeNeg": -17.0, "DblZero": 0.0, "DblNeg": -0.1,
    "DblThird": 1 / 3, "DblBig": 1.7976931348623157e308, "DblTiny": 5e-324,
    "DblWholeBig": 1e20, "DblSmall": 1.5e-10,
    "NaN": NAN, "Inf": INF, "NInf": -INF,
    "T": True, "F": False,
    "When": dt.datetime(2023, 5, 6, 7, 8, 9, 123456, tzinfo=UTC),
    "WhenWhole": dt.datetime(2001, 2, 3, 4, 5, 6, tzinfo=UTC),
    "WhenMin": dt.datetime(1601, 1, 1, tzinfo=UTC),
    "WhenMax": dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    "WhenOffset": dt.datetime(2020, 2, 29, 23, 30, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
    "Id": GUID,
    "Bin": b"\x00\x01binary\xff",
    "BinAll": bytes(range(256)),
    "BinEmpty": b"",
}


def assert_same(name, sent, got):
    if isinstance(sent, EntityProperty):
        assert isinstance(got, EntityProperty), (name, got)
        assert got.edm_type == sent.edm_type and got.value == sent.value, (name, sent, got)
    elif isinstance(sent, bool):
        assert got is sent, (name, got)
    elif isinstance(sent, int):
        assert type(got) is int and got == sent, (name, got)
    elif isinstance(sent, float):
        assert type(got) is float, (name, type(got), got)
        assert got == sent or (math.isnan(sent) and math.isnan(got)), (name, sent, got)
    elif isinstance(sent, dt.datetime):
        assert isinstance(got, TablesEntityDatetime), (name, type(got))
        assert got == sent, (name, sent, got)
        assert got.tzinfo is not None and got.utcoffset() == dt.timedelta(0), (name, got)
    elif isinstance(sent, uuid.UUID):
        assert got == sent, (name, got)
    elif isinstance(sent, bytes):
        assert type(got) is bytes and got == sent, (name, got)
    else:
        assert type(got) is str and got == sent, (name, got)


def check_round_trip(e, props):
    assert set(e) == set(props) | {"PartitionKey", "RowKey"}, set(e) ^ set(props)
    for k, v in props.items():
        assert_same(k, v, e[k])


def test_every_edm_type_round_trips(table):
    table.create_entity(ent("types", "create", **ROUND_TRIP))
    check_round_trip(table.get_entity("types", "create"), ROUND_TRIP)
    table.upsert_entity(ent("types", "upsert", **ROUND_TRIP), mode=UpdateMode.REPLACE)
    table.upsert_entity(ent("types", "merge", **ROUND_TRIP), mode=UpdateMode.MERGE)
    table.submit_transaction([("create", ent("types", "batch", **ROUND_TRIP))])
    got = {e["RowKey"]: e for e in table.query_entities("PartitionKey eq 'types'")}
    assert sorted(got) == ["batch", "create", "merge", "upsert"]
    for e in got.values():
        check_round_trip(e, ROUND_TRIP)
    # A read-modify-write through the SDK keeps every type.
    e = table.get_entity("types", "create")
    table.update_entity(e, mode=UpdateMode.REPLACE)
    check_round_trip(table.get_entity("types", "create"), ROUND_TRIP)


def test_datetime_service_value_and_precision(nimbus, table):
    table.create_entity(ent("dt", "1", When=dt.datetime(2023, 5, 6, 7, 8, 9, 123456,
                                                        tzinfo=UTC)))
    w = table.get_entity("dt", "1")["When"]
    assert re.match(r"^2023-05-06T07:08:09\.1234560?Z$", w.tables_service_value), \
        w.tables_service_value
    # 100 ns precision is stored and returned (raw, 7 digits).
    st, _, body = raw(nimbus, "POST", table.table_name, body={
        "PartitionKey": "dt", "RowKey": "2", "When": "2023-05-06T07:08:09.1234567Z",
        "When@odata.type": "Edm.DateTime",
        "Off": "2023-05-06T09:08:09+02:00", "Off@odata.type": "Edm.DateTime"})
    assert st == 201, body
    st, _, body = raw(nimbus, "GET", epath(table.table_name, "dt", "2"))
    doc = json.loads(body)
    assert doc["When"] == "2023-05-06T07:08:09.1234567Z"
    assert doc["When@odata.type"] == "Edm.DateTime"
    assert re.match(r"^2023-05-06T07:08:09(\.0{1,7})?Z$", doc["Off"]), doc["Off"]


def test_explicit_entity_property_types(table):
    cases = {
        "S": (EntityProperty("abc", EdmType.STRING), "abc"),
        "S2": (EntityProperty("123", EdmType.STRING), "123"),
        "I32": (EntityProperty(7, EdmType.INT32), 7),
        "I32s": (EntityProperty("8", EdmType.INT32), 8),
        "I64s": (EntityProperty("12345678901", EdmType.INT64),
                 EntityProperty(12345678901, EdmType.INT64)),
        "I64small": (EntityProperty(1, EdmType.INT64), EntityProperty(1, EdmType.INT64)),
        "D": (EntityProperty(1.5, EdmType.DOUBLE), 1.5),
        "Ds": (EntityProperty("2.5", EdmType.DOUBLE), 2.5),
        "Dint": (EntityProperty(3, EdmType.DOUBLE), 3.0),
        "Dnan": (EntityProperty("NaN", EdmType.DOUBLE), NAN),
        "Dinf": (EntityProperty("-Infinity", EdmType.DOUBLE), -INF),
        "B": (EntityProperty(True, EdmType.BOOLEAN), True),
        "Bs": (EntityProperty("false", EdmType.BOOLEAN), False),
        "DT": (EntityProperty("2020-02-29T12:00:00Z", EdmType.DATETIME),
               dt.datetime(2020, 2, 29, 12, tzinfo=UTC)),
        "G": (EntityProperty(str(GUID).upper(), EdmType.GUID), GUID),
        "Bin": (EntityProperty(b"\x01\x02", EdmType.BINARY), b"\x01\x02"),
    }
    table.create_entity(ent("x", "1", **{k: v[0] for k, v in cases.items()}))
    e = table.get_entity("x", "1")
    for k, (_, want) in cases.items():
        assert_same(k, want, e[k])


@pytest.mark.parametrize("prop", [
    EntityProperty("yes", EdmType.BOOLEAN),
    EntityProperty("1.5x", EdmType.DOUBLE),
    EntityProperty("2020-13-45T00:00:00Z", EdmType.DATETIME),
    EntityProperty("not-a-guid", EdmType.GUID),
])
def test_bad_typed_values_invalid_input(table, prop):
    raises(HttpResponseError, "InvalidInput",
           lambda: table.create_entity(ent("bad", "1", V=prop)), 400)
    with pytest.raises(ResourceNotFoundError):
        table.get_entity("bad", "1")


@pytest.mark.parametrize("body", [
    {"N": 2147483648, "N@odata.type": "Edm.Int32"},
    {"N": "abc", "N@odata.type": "Edm.Int64"},
    {"N": "9223372036854775808", "N@odata.type": "Edm.Int64"},
    {"N": "!!not base64!!", "N@odata.type": "Edm.Binary"},
    {"N": "x", "N@odata.type": "Edm.Unknown"},
])
def test_bad_typed_values_raw(nimbus, table, body):
    b = ent("bad", "raw")
    b.update(body)
    odata_error(raw(nimbus, "POST", table.table_name, body=b), 400, "InvalidInput")


def test_untyped_json_input_rules(nimbus, table):
    """Types come from JSON when there is no annotation (spec §3.2); an
    integer outside Int32 becomes Int64 or is refused."""
    st, _, body = raw(nimbus, "POST", table.table_name, body={
        "PartitionKey": "u", "RowKey": "1", "S": "s", "I": 5, "D": 2.5, "B": True,
        "Timestamp": "2000-01-01T00:00:00Z", "odata.etag": "W/\"bogus\""})
    assert st == 201, body
    e = table.get_entity("u", "1")
    assert dict(e) == ent("u", "1", S="s", I=5, D=2.5, B=True)
    assert e.metadata["timestamp"].year != 2000
    st, _, body = raw(nimbus, "POST", table.table_name,
                      body={"PartitionKey": "u", "RowKey": "2", "Big": 3000000000})
    if st == 201:
        assert_same("Big", EntityProperty(3000000000, EdmType.INT64),
                    table.get_entity("u", "2")["Big"])
    else:
        odata_error((st, _, body), 400, "InvalidInput")


def test_cli_style_string_typed_values(nimbus, table):
    """The CLI sends typed values as strings with annotations (spec §3.2)."""
    st, _, body = raw(nimbus, "POST", table.table_name, body={
        "PartitionKey": "cli", "RowKey": "1",
        "Flag": "true", "Flag@odata.type": "Edm.Boolean",
        "Score": "1.5", "Score@odata.type": "Edm.Double",
        "Whole": "2", "Whole@odata.type": "Edm.Double",
        "Big": "12345678901", "Big@odata.type": "Edm.Int64",
        "Small": "7", "Small@odata.type": "Edm.Int32",
        "Txt": "42", "Txt@odata.type": "Edm.String"})
    assert st == 201, body
    e = table.get_entity("cli", "1")
    assert_same("Flag", True, e["Flag"])
    assert_same("Score", 1.5, e["Score"])
    assert_same("Whole", 2.0, e["Whole"])
    assert_same("Big", EntityProperty(12345678901, EdmType.INT64), e["Big"])
    assert_same("Small", 7, e["Small"])
    assert_same("Txt", "42", e["Txt"])


def test_datetime_before_1601_rejected(table):
    with pytest.raises(HttpResponseError) as ei:
        table.create_entity(ent("old", "1", When=dt.datetime(1600, 12, 31, tzinfo=UTC)))
    assert ei.value.status_code == 400


# ---------------------------------------------------------------- Timestamp / ETag


def test_timestamp_set_by_service_and_etag_format(nimbus, table):
    md = table.create_entity(ent("ts", "1", V=0,
                                 Timestamp=dt.datetime(2000, 1, 1, tzinfo=UTC)))
    e = table.get_entity("ts", "1")
    assert "Timestamp" not in e
    ts = e.metadata["timestamp"]
    assert isinstance(ts, TablesEntityDatetime)
    assert abs((ts - nimbus.server_now()).total_seconds()) < 60, ts
    raw_ts = ts.tables_service_value
    assert TS7.match(raw_ts), raw_ts
    etag = e.metadata["etag"]
    assert etag == "W/\"datetime'%s'\"" % urllib.parse.quote(raw_ts), (etag, raw_ts)
    assert md["etag"] == etag


def test_timestamp_strictly_increases_on_every_write(table):
    table.create_entity(ent("inc", "1", V=0))
    seen = [table.get_entity("inc", "1").metadata]
    writes = [
        lambda i: table.update_entity(ent("inc", "1", V=i), mode=UpdateMode.MERGE),
        lambda i: table.update_entity(ent("inc", "1", V=i), mode=UpdateMode.REPLACE),
        lambda i: table.upsert_entity(ent("inc", "1", V=i), mode=UpdateMode.MERGE),
        lambda i: table.upsert_entity(ent("inc", "1", V=i), mode=UpdateMode.REPLACE),
        lambda i: table.submit_transaction([("upsert", ent("inc", "1", V=i))]),
    ]
    for i in range(20):                       # back-to-back, faster than the clock ticks
        ret = writes[i % len(writes)](i + 1)
        md = table.get_entity("inc", "1").metadata
        if isinstance(ret, dict):
            assert ret["etag"] == md["etag"]
        elif isinstance(ret, list):
            assert ret[0]["etag"] == md["etag"]
        seen.append(md)
    stamps = [m["timestamp"].tables_service_value for m in seen]
    assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps), stamps
    etags = [m["etag"] for m in seen]
    assert len(set(etags)) == len(etags)
    for m in seen:
        assert m["etag"] == "W/\"datetime'%s'\"" % urllib.parse.quote(
            m["timestamp"].tables_service_value)
    assert table.get_entity("inc", "1")["V"] == 20


def test_optimistic_concurrency_under_contention(nimbus, table):
    """Read-modify-write with If-Match from several threads: every increment
    lands exactly once (If-Match must be checked atomically with the write)."""
    table.create_entity(ent("cc", "1", N=0))
    threads_n, per_thread = 6, 8
    errors = []

    def worker():
        tc = client(nimbus, table.table_name)
        try:
            for _ in range(per_thread):
                for _attempt in range(200):
                    e = tc.get_entity("cc", "1")
                    try:
                        tc.update_entity(ent("cc", "1", N=e["N"] + 1), mode=UpdateMode.MERGE,
                                         etag=e.metadata["etag"],
                                         match_condition=MatchConditions.IfNotModified)
                        break
                    except ResourceModifiedError:
                        continue
                else:
                    errors.append("no progress")
        except Exception as ex:          # a thread failure must fail the test
            errors.append(repr(ex))

    ts = [threading.Thread(target=worker) for _ in range(threads_n)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    assert not errors, errors
    assert table.get_entity("cc", "1")["N"] == threads_n * per_thread


# ---------------------------------------------------------------- query / list


QTIME = {}
U1, U2, U3 = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
QROWS = [
    ent("p1", "r1", Name="alpha", Num=1, Big=EntityProperty(3000000000, EdmType.INT64),
        Dbl=1.5, Flag=True, When=dt.datetime(2020, 1, 1, tzinfo=UTC), Id=U1,
        Bin=b"\x00\x01", Mixed=5),
    ent("p1", "r2", Name="beta", Num=2, Big=EntityProperty(2 ** 40, EdmType.INT64),
        Dbl=2.5, Flag=False, When=dt.datetime(2021, 6, 1, 12, 30, tzinfo=UTC), Id=U2,
        Bin=b"\x00\x02", Mixed="5"),
    ent("p1", "r3", Name="gamma 'q'", Num=3, Big=EntityProperty(-5, EdmType.INT64),
        Dbl=-1.0, Flag=True, When=dt.datetime(2022, 3, 4, 5, 6, 7, 890000, tzinfo=UTC), Id=U3,
        Bin=b"\xff", Mixed=5.5),
    ent("p2", "r1", Name="Delta", Num=40, Dbl=100.25, Flag=False,
        When=dt.datetime(2019, 12, 31, 23, 59, 59, tzinfo=UTC)),
    ent("p2", "r2", Other="x"),
]


@pytest.fixture(scope="module")
def qtable(nimbus, tsc):
    name = tname("q")
    tc = tsc.create_table(name)
    QTIME["before"] = nimbus.server_now() - dt.timedelta(seconds=5)
    for r in QROWS:
        tc.create_entity(r)
    QTIME["after"] = nimbus.server_now() + dt.timedelta(seconds=60)
    yield client(nimbus, name)
    tsc.delete_table(name)


QUERIES = [
    ("PartitionKey eq @pk and RowKey ge @rk", {"pk": "p1", "rk": "r2"}, ["p1r2", "p1r3"]),
    ("Name eq @n", {"n": "gamma 'q'"}, ["p1r3"]),
    ("Name eq 'gamma ''q'''", None, ["p1r3"]),
    ("Num gt @n", {"n": 2}, ["p1r3", "p2r1"]),
    ("Num gt 1.5", None, ["p1r2", "p1r3", "p2r1"]),
    ("Num eq 1L", None, ["p1r1"]),
    ("40 eq Num", None, ["p2r1"]),
    ("Big eq @b", {"b": 2 ** 40}, ["p1r2"]),
    ("Big eq @b", {"b": 3000000000}, ["p1r1"]),       # sent plain: bit_length() == 32
    ("Big lt 0L", None, ["p1r3"]),
    ("Big gt 5", None, ["p1r1", "p1r2"]),
    ("Dbl ge @d", {"d": 2.5}, ["p1r2", "p2r1"]),
    ("Dbl lt 0.0", None, ["p1r3"]),
    ("Dbl eq 1e2", None, []),
    ("Dbl gt 1e2", None, ["p2r1"]),
    ("Flag eq @f", {"f": True}, ["p1r1", "p1r3"]),
    ("Flag eq false", None, ["p1r2", "p2r1"]),
    ("When lt @t", {"t": dt.datetime(2021, 1, 1, tzinfo=UTC)}, ["p1r1", "p2r1"]),
    ("When ge datetime'2021-06-01T12:30:00Z'", None, ["p1r2", "p1r3"]),
    ("When eq datetime'2022-03-04T05:06:07.8900000Z'", None, ["p1r3"]),
    ("Id eq @g", {"g": U2}, ["p1r2"]),
    ("Id eq guid'%s'" % str(U3).upper(), None, ["p1r3"]),
    ("Bin eq @b", {"b": b"\x00\x02"}, ["p1r2"]),
    ("Bin eq binary'ff'", None, ["p1r3"]),
    ("Bin eq X'0001'", None, ["p1r1"]),
    ("Mixed eq 5", None, ["p1r1"]),
    ("Mixed eq '5'", None, ["p1r2"]),
    ("Other ne 'y'", None, ["p2r2"]),
    ("Name ne 'alpha'", None, ["p1r2", "p1r3", "p2r1"]),
    ("Name gt 'a'", None, ["p1r1", "p1r2", "p1r3"]),
    ("Name lt 'a'", None, ["p2r1"]),
    ("not (Num eq 1) and PartitionKey eq 'p1'", None, ["p1r2", "p1r3"]),
    ("(Num eq 1 or Num eq 40) and Flag eq false", None, ["p2r1"]),
    ("RowKey eq 'r1'", None, ["p1r1", "p2r1"]),
    ("PartitionKey eq 'p2' or RowKey eq 'r3'", None, ["p1r3", "p2r1", "p2r2"]),
    ("PartitionKey gt 'p1' and PartitionKey le 'p2' and RowKey lt 'r2'", None, ["p2r1"]),
    ("Nope eq 1", None, []),
]


@pytest.mark.parametrize("flt,params,want", QUERIES, ids=[q[0] for q in QUERIES])
def test_query_entities_filters(qtable, flt, params, want):
    got = list(qtable.query_entities(flt, parameters=params))
    assert ["%s%s" % k for k in keys(got)] == want


def test_query_timestamp_filter(qtable):
    everything = list(qtable.query_entities("Timestamp ge @t", parameters={"t": QTIME["before"]}))
    assert len(everything) == len(QROWS)
    assert list(qtable.query_entities("Timestamp lt @t",
                                      parameters={"t": QTIME["before"]})) == []
    assert len(list(qtable.query_entities("Timestamp lt @t",
                                          parameters={"t": QTIME["after"]}))) == len(QROWS)


@pytest.mark.parametrize("flt", [
    "PartitionKey eq", "PartitionKey eqq 'a'", "startswith(PartitionKey,'p')",
    "Name eq 'unterminated", "Num gt", "and", "Num eq 1 1", "(Num eq 1", "Num eq guid'xyz'",
])
def test_bad_filter_invalid_input(qtable, flt):
    raises(HttpResponseError, "InvalidInput", lambda: list(qtable.query_entities(flt)), 400)


def test_query_select_and_paging(qtable):
    got = list(qtable.query_entities("PartitionKey eq 'p1'", select=["Name", "Num"]))
    assert [dict(e) for e in got] == [{"Name": r["Name"], "Num": r["Num"]} for r in QROWS[:3]]
    assert all(ETAG.match(e.metadata["etag"]) for e in got)
    # A filtered query may legally end with an empty page (continuation
    # while unmatched rows remain), so empty pages are dropped.
    pages = [keys(p) for p in qtable.query_entities("Num ge 1", results_per_page=2).by_page()]
    pages = [p for p in pages if p]
    assert pages == [[("p1", "r1"), ("p1", "r2")], [("p1", "r3"), ("p2", "r1")]]


def test_list_entities_order_select_and_paging(table):
    rows = [ent(pk, rk, V=i) for i, (pk, rk) in enumerate(
        [("b", "2"), ("a", "10"), ("a", "9"), ("B", "x"), ("a", "A"), ("\u00e9", "1"),
         ("a", "a")])]
    for r in rows:
        table.create_entity(r)
    want = sorted(keys(rows))                        # ordinal (code point) order
    assert keys(table.list_entities()) == want
    pages = [keys(p) for p in table.list_entities(results_per_page=3).by_page()]
    assert pages == [want[0:3], want[3:6], want[6:7]]
    sel = list(table.list_entities(select=["V"]))
    assert sorted(e["V"] for e in sel) == list(range(len(rows)))
    assert all(set(e) == {"V"} for e in sel)


def test_list_entities_continuation_stable_across_writes(table):
    for i in (1, 3, 5, 7, 9):
        table.create_entity(ent("s", "r%02d" % i))
    it = table.list_entities(results_per_page=2).by_page()
    first = keys(next(it))
    assert first == [("s", "r01"), ("s", "r03")]
    token = it.continuation_token
    assert token and set(token) == {"PartitionKey", "RowKey"}

    table.create_entity(ent("s", "r02"))   # behind the cursor: not seen
    table.create_entity(ent("s", "r08"))   # ahead of the cursor: seen
    table.delete_entity("s", "r05")        # the next row itself disappears
    rest = [k for page in it for k in keys(page)]
    assert rest == [("s", "r07"), ("s", "r08"), ("s", "r09")]

    resumed = table.list_entities(results_per_page=2).by_page(continuation_token=token)
    assert [k for page in resumed for k in keys(page)] == rest


def test_default_and_max_page_is_1000(nimbus, table):
    for b in range(11):
        table.submit_transaction([("create", ent("big", "%05d" % (b * 100 + i)))
                                  for i in range(100)])
    table.create_entity(ent("big", "99999"))
    pages = [len(list(p)) for p in table.list_entities().by_page()]
    assert pages == [1000, 101]
    assert [len(list(p)) for p in table.list_entities(results_per_page=1000).by_page()] \
        == [1000, 101]
    with pytest.raises(HttpResponseError) as ei:
        list(table.list_entities(results_per_page=1001))
    assert ei.value.status_code == 400


# ---------------------------------------------------------------- transactions


def test_transaction_mixed_operations(table):
    pk = "tx"
    table.create_entity(ent(pk, "upd", A=1, Keep="k"))
    table.create_entity(ent(pk, "del", A=1))
    table.create_entity(ent(pk, "rep", A=1, Gone="g"))
    table.create_entity(ent(pk, "mrg", A=1))
    etag = table.get_entity(pk, "upd").metadata["etag"]
    ops = [
        ("create", ent(pk, "new", V=1)),
        ("upsert", ent(pk, "ups", V=2)),
        ("upsert", ent(pk, "rep", V=3), {"mode": UpdateMode.REPLACE}),
        ("update", ent(pk, "upd", V=4), {"mode": UpdateMode.MERGE, "etag": etag,
                                          "match_condition": MatchConditions.IfNotModified}),
        ("update", ent(pk, "mrg", V=5), {"mode": UpdateMode.REPLACE}),
        ("delete", ent(pk, "del")),
    ]
    result = table.submit_transaction(ops)
    assert len(result) == len(ops)
    after = {e["RowKey"]: e for e in table.list_entities()}
    assert sorted(after) == ["mrg", "new", "rep", "upd", "ups"]
    assert dict(after["new"]) == ent(pk, "new", V=1)
    assert dict(after["ups"]) == ent(pk, "ups", V=2)
    assert dict(after["rep"]) == ent(pk, "rep", V=3)
    assert dict(after["upd"]) == ent(pk, "upd", A=1, Keep="k", V=4)
    assert dict(after["mrg"]) == ent(pk, "mrg", V=5)
    for (op, e, *_), md in zip(ops, result):
        if op == "delete":
            assert "etag" not in md
        else:
            assert md["etag"] == after[e["RowKey"]].metadata["etag"], (op, md)


@pytest.mark.parametrize("bad_index,bad_op,code,status", [
    (1, ("create", ent("f", "exists", V=9)), "EntityAlreadyExists", 409),
    (2, ("update", ent("f", "missing", V=9)), "ResourceNotFound", 404),
    (0, ("delete", ent("f", "missing")), "ResourceNotFound", 404),
    (3, "stale", "UpdateConditionNotSatisfied", 412),
])
def test_transaction_failure_is_atomic(table, bad_index, bad_op, code, status):
    table.create_entity(ent("f", "exists", V=1))
    old = table.get_entity("f", "exists").metadata["etag"]
    table.update_entity(ent("f", "exists", V=2))
    if bad_op == "stale":
        bad_op = ("update", ent("f", "exists", V=9),
                  {"etag": old, "match_condition": MatchConditions.IfNotModified})
    good = [("create", ent("f", "n%d" % i, V=i)) for i in range(4)]
    good[bad_index] = bad_op
    good.append(("upsert", ent("f", "other", V=7)))
    err = raises(TableTransactionError, code, lambda: table.submit_transaction(good), status)
    assert err.index == bad_index, err
    assert keys(table.list_entities()) == [("f", "exists")]
    assert table.get_entity("f", "exists")["V"] == 2


def test_transaction_100_ok_101_rejected(table):
    table.submit_transaction([("create", ent("h", "%03d" % i)) for i in range(100)])
    assert len(list(table.list_entities())) == 100
    with pytest.raises(HttpResponseError) as ei:
        table.submit_transaction([("upsert", ent("h", "x%03d" % i)) for i in range(101)])
    assert ei.value.status_code in (400, 413), ei.value
    assert len(list(table.list_entities())) == 100


def test_transaction_two_partitions(table, monkeypatch):
    ops = [("create", ent("a", "1")), ("create", ent("b", "1"))]
    with pytest.raises(ValueError):                 # the SDK refuses client-side
        table.submit_transaction(ops)
    # Bypass the client-side check to see what the server says.
    monkeypatch.setattr(TableBatchOperations, "_verify_partition_key", lambda self, e: None)
    err = raises(HttpResponseError, "CommandsInBatchActOnDifferentPartitions",
                 lambda: table.submit_transaction(ops), 400)
    assert err is not None
    assert list(table.list_entities()) == []


def test_transaction_duplicate_row(table):
    ops = [("create", ent("d", "1", V=1)), ("upsert", ent("d", "1", V=2))]
    raises(HttpResponseError, "InvalidDuplicateRow", lambda: table.submit_transaction(ops), 400)
    assert list(table.list_entities()) == []


def test_transaction_missing_table(nimbus):
    tc = client(nimbus, tname("nobatch"))
    with pytest.raises(HttpResponseError) as ei:
        tc.submit_transaction([("create", ent("p", "1"))])
    assert ei.value.status_code == 404
    assert err_code(ei.value) == "TableNotFound"


def test_transaction_bad_entity_reports_index(table):
    ops = [("create", ent("v", "1")), ("create", ent("v", "2")),
           ("create", ent("v", "3", Bad=EntityProperty("nope", EdmType.BOOLEAN)))]
    err = raises(TableTransactionError, "InvalidInput", lambda: table.submit_transaction(ops),
                 400)
    assert err.index == 2
    assert list(table.list_entities()) == []


def test_transaction_raw_response_shape(nimbus, table):
    """202 multipart/mixed with one application/http part per operation."""
    tn = table.table_name
    url = nimbus.table_endpoint()
    bb, cb = "batch_" + str(uuid.uuid4()), "changeset_" + str(uuid.uuid4())
    parts = []
    for i, rk in enumerate(("1", "2")):
        body = json.dumps(ent("raw", rk, V=i))
        parts.append("--%s\r\nContent-Type: application/http\r\nContent-Transfer-Encoding: "
                     "binary\r\nContent-ID: %d\r\n\r\nPOST %s/%s HTTP/1.1\r\n"
                     "Content-Type: application/json;odata=nometadata\r\n"
                     "Accept: application/json;odata=minimalmetadata\r\n"
                     "Prefer: return-no-content\r\nDataServiceVersion: 3.0\r\n"
                     "Content-Length: %d\r\n\r\n%s\r\n" % (cb, i, url, tn, len(body), body))
    payload = ("--%s\r\nContent-Type: multipart/mixed; boundary=%s\r\n\r\n%s--%s--\r\n\r\n--%s--\r\n"
               % (bb, cb, "".join(parts), cb, bb))
    st, h, body = nimbus.table_request(
        "POST", "/%s/$batch" % DEV_ACCOUNT, body=payload,
        headers={"Content-Type": "multipart/mixed; boundary=%s" % bb,
                 "MaxDataServiceVersion": "3.0;NetFx"}, accept="application/json")
    assert st == 202, body
    m = re.match(r"multipart/mixed;\s*boundary=(\S+)", h.get("content-type", ""))
    assert m, h
    text = body.decode()
    assert text.count("HTTP/1.1 204") == 2, text
    assert len(re.findall(r"(?i)^ETag: W/\"datetime'", text, re.M)) == 2, text
    assert "--%s--" % m.group(1) in text
    assert keys(table.list_entities()) == [("raw", "1"), ("raw", "2")]


# ---------------------------------------------------------------- limits


def test_252_properties_ok_253_rejected(table):
    props = {"P%03d" % i: i for i in range(252)}
    table.create_entity(ent("lim", "252", **props))
    e = table.get_entity("lim", "252")
    assert len(e) == 254 and all(e["P%03d" % i] == i for i in range(252))
    props["P252"] = 252
    raises(HttpResponseError, "TooManyProperties",
           lambda: table.create_entity(ent("lim", "253", **props)), 400)
    with pytest.raises(ResourceNotFoundError):
        table.get_entity("lim", "253")
    # A merge that would push the stored entity past the limit fails too.
    raises(HttpResponseError, "TooManyProperties",
           lambda: table.update_entity(ent("lim", "252", Extra=1), mode=UpdateMode.MERGE), 400)
    assert "Extra" not in table.get_entity("lim", "252")


def test_property_value_size_limits(table):
    table.create_entity(ent("sz", "s", S="x" * 32768))             # 64 KiB as UTF-16
    assert table.get_entity("sz", "s")["S"] == "x" * 32768
    table.create_entity(ent("sz", "b", B=b"\xab" * 65536))
    assert table.get_entity("sz", "b")["B"] == b"\xab" * 65536
    for rk, props in (("s2", {"S": "x" * 65537}), ("s3", {"S": "x" * 32769}),
                      ("b2", {"B": b"\xab" * 65537})):
        raises(HttpResponseError, "PropertyValueTooLarge",
               lambda: table.create_entity(ent("sz", rk, **props)), 400)
    raises(HttpResponseError, "PropertyValueTooLarge",
           lambda: table.upsert_entity(ent("sz", "s", S="y" * 40000)), 400)
    assert table.get_entity("sz", "s")["S"] == "x" * 32768


def test_entity_size_limit(table):
    ok = {"P%02d" % i: chr(65 + i) * 32000 for i in range(16)}          # ~1,024,000 bytes
    table.create_entity(ent("big", "ok", **ok))
    assert table.get_entity("big", "ok")["P15"] == "P" * 32000
    too = {"P%02d" % i: chr(65 + i) * 32000 for i in range(17)}         # ~1,088,000 bytes
    raises(HttpResponseError, "EntityTooLarge",
           lambda: table.create_entity(ent("big", "no", **too)), 400)
    raises(HttpResponseError, "EntityTooLarge",
           lambda: table.update_entity(ent("big", "ok", P16="Q" * 32000),
                                       mode=UpdateMode.MERGE), 400)
    assert "P16" not in table.get_entity("big", "ok")


@pytest.mark.parametrize("name,code", [
    ("bad name", "PropertyNameInvalid"),
    ("1abc", "PropertyNameInvalid"),
    ("a-b", "PropertyNameInvalid"),
    ("n" * 256, "PropertyNameTooLong"),
])
def test_bad_property_names(table, name, code):
    raises(HttpResponseError, code,
           lambda: table.create_entity(ent("pn", "1", **{name: 1})), 400)
    with pytest.raises(ResourceNotFoundError):
        table.get_entity("pn", "1")


def test_good_property_name_edges(table):
    props = {"n" * 255: 1, "_under": 2, "CamelCase9": 3, "\u00e9t\u00e9": 4}
    table.create_entity(ent("pn", "ok", **props))
    e = table.get_entity("pn", "ok")
    assert all(e[k] == v for k, v in props.items())


def test_duplicate_property_raw(nimbus, table):
    body = ('{"PartitionKey": "dup", "RowKey": "1", "A": 1, "A": 2}').encode()
    odata_error(raw(nimbus, "POST", table.table_name, body=body), 400,
                "DuplicatePropertiesSpecified")


@pytest.mark.parametrize("bad", ["a/b", "a\\b", "a#b", "a?b", "a\x01b", "\x1f", "a\x7fb",
                                 "a\u0085b"])
def test_bad_key_characters(table, bad):
    for e in (ent(bad, "r"), ent("p", bad)):
        with pytest.raises(HttpResponseError) as ei:
            table.create_entity(e)
        assert ei.value.status_code == 400, ei.value
        assert err_code(ei.value) in ("InvalidInput", "OutOfRangeInput"), ei.value
    with pytest.raises(HttpResponseError) as ei:
        table.upsert_entity(ent(bad, "r"))
    assert ei.value.status_code == 400, ei.value
    assert list(table.list_entities()) == []


def test_key_length_limit(table):
    table.create_entity(ent("k" * 500, "r" * 500))
    assert table.get_entity("k" * 500, "r" * 500)["RowKey"] == "r" * 500
    for e in (ent("k" * 2000, "r"), ent("p", "r" * 2000)):
        with pytest.raises(HttpResponseError) as ei:
            table.create_entity(e)
        assert ei.value.status_code == 400


def test_missing_keys_raw(nimbus, table):
    st, h, body = raw(nimbus, "POST", table.table_name, body={"RowKey": "r", "V": 1})
    assert st == 400, body
    st, h, body = raw(nimbus, "POST", table.table_name, body=b"{not json")
    odata_error((st, h, body), 400, "InvalidInput")
    st, h, body = raw(nimbus, "POST", table.table_name, body=b"[1, 2]")
    assert st == 400, body


# ---------------------------------------------------------------- ACL and SAS


def test_table_access_policy_round_trip(nimbus, table):
    assert table.get_table_access_policy() == {}
    start = dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC)
    exp1 = dt.datetime(2099, 1, 1, 12, 30, tzinfo=UTC)
    exp2 = dt.datetime(2031, 6, 7, 8, 9, 10, tzinfo=UTC)
    table.set_table_access_policy({
        "pol1": TableAccessPolicy(start=start, expiry=exp1, permission="raud"),
        "readonly": TableAccessPolicy(expiry=exp2, permission="r"),
        "empty": None,
    })
    got = table.get_table_access_policy()
    assert set(got) == {"pol1", "readonly", "empty"}
    assert (got["pol1"].permission, got["pol1"].start, got["pol1"].expiry) == \
        ("raud", start, exp1)
    assert (got["readonly"].permission, got["readonly"].expiry) == ("r", exp2)
    assert not got["readonly"].start
    e = got["empty"]
    assert e is None or not (e.start or e.expiry or e.permission)
    # Dates come back normalized to 7 fractional digits (spec §2.1).
    st, _, body = raw(nimbus, "GET", "%s?comp=acl" % table.table_name, accept="application/xml")
    assert st == 200, body
    root = ET.fromstring(body)
    assert root.tag == "SignedIdentifiers"
    starts = [s.text for s in root.iter("Start")]
    assert starts == ["2020-01-02T03:04:05.0000000Z"], starts
    table.set_table_access_policy({})
    assert table.get_table_access_policy() == {}


def test_table_access_policy_at_most_five(table):
    exp = dt.datetime(2031, 1, 1, tzinfo=UTC)
    six = {"p%d" % i: TableAccessPolicy(permission="r", expiry=exp) for i in range(6)}
    with pytest.raises((ValueError, HttpResponseError)) as ei:
        table.set_table_access_policy(six)
    if isinstance(ei.value, HttpResponseError):
        assert ei.value.status_code == 400
    assert table.get_table_access_policy() == {}


def sas_client(nimbus, name, sas):
    return client(nimbus, name, credential=AzureSasCredential(sas))


def test_table_sas_permissions(nimbus, table):
    name = table.table_name
    table.create_entity(ent("p", "r", V=1))
    gen = lambda perm: sas_client(nimbus, name, generate_table_sas(
        CRED, name, permission=perm, expiry=expiry(nimbus)))
    r = gen("r")
    assert r.get_entity("p", "r")["V"] == 1
    assert keys(r.list_entities()) == [("p", "r")]
    assert keys(r.query_entities("V eq 1")) == [("p", "r")]
    forbidden(lambda: r.create_entity(ent("p", "x")))
    forbidden(lambda: r.update_entity(ent("p", "r", V=2)))
    forbidden(lambda: r.delete_entity("p", "r"))

    a = gen("a")
    a.create_entity(ent("p", "a1"))
    forbidden(lambda: a.get_entity("p", "r"))
    forbidden(lambda: a.upsert_entity(ent("p", "a2")))          # upsert needs a + u
    forbidden(lambda: a.update_entity(ent("p", "r", V=5)))

    u = gen("u")
    u.update_entity(ent("p", "r", V=3))
    forbidden(lambda: u.create_entity(ent("p", "u1")))
    au = gen("au")
    au.upsert_entity(ent("p", "a2", V=4))
    au.upsert_entity(ent("p", "a2", W=5), mode=UpdateMode.REPLACE)

    d = gen("d")
    d.delete_entity("p", "a1")
    forbidden(lambda: d.get_entity("p", "r"))

    raud = gen(TableSasPermissions(read=True, add=True, update=True, delete=True))
    raud.submit_transaction([("create", ent("p", "b1")), ("delete", ent("p", "a2"))])
    assert keys(table.list_entities()) == [("p", "b1"), ("p", "r")]
    assert table.get_entity("p", "r")["V"] == 3

    # A table SAS cannot read the ACL, and does not open another table.
    forbidden(lambda: raud.get_table_access_policy())
    other = tname()
    TableServiceClient(endpoint=nimbus.table_endpoint(), credential=CRED,
                       **SDK_KW).create_table(other)
    try:
        sas = generate_table_sas(CRED, name, permission="raud", expiry=expiry(nimbus))
        forbidden(lambda: sas_client(nimbus, other, sas).get_entity("p", "r"))
        forbidden(lambda: list(TableServiceClient(
            endpoint=nimbus.table_endpoint(), credential=AzureSasCredential(sas),
            **SDK_KW).list_tables()))
    finally:
        client(nimbus, other).delete_table()


def test_table_sas_mixed_case_name(nimbus, tsc):
    name = "SasCase" + uuid.uuid4().hex[:8]
    tsc.create_table(name)
    try:
        sas = generate_table_sas(CRED, name, permission="ra", expiry=expiry(nimbus))
        c = sas_client(nimbus, name, sas)
        c.create_entity(ent("p", "r", V=1))
        assert c.get_entity("p", "r")["V"] == 1
    finally:
        tsc.delete_table(name)


def test_table_sas_key_ranges(nimbus, table):
    name = table.table_name
    for pk in ("pk0", "pk1", "pk2", "pk3", "pk4"):
        table.submit_transaction([("create", ent(pk, rk)) for rk in ("r4", "r5", "r6", "r7",
                                                                    "r8")])
    pks = sas_client(nimbus, name, generate_table_sas(
        CRED, name, permission="raud", expiry=expiry(nimbus), start_pk="pk1", end_pk="pk3"))
    for pk, rk in (("pk1", "r4"), ("pk2", "r6"), ("pk3", "r8")):
        assert pks.get_entity(pk, rk)["RowKey"] == rk
    for pk, rk in (("pk0", "r5"), ("pk4", "r5")):
        forbidden(lambda: pks.get_entity(pk, rk))
    pks.create_entity(ent("pk2", "new"))
    forbidden(lambda: pks.create_entity(ent("pk9", "new")))
    forbidden(lambda: pks.delete_entity("pk4", "r4"))
    forbidden(lambda: pks.update_entity(ent("pk0", "r4", V=1)))

    rows = sas_client(nimbus, name, generate_table_sas(
        CRED, name, permission="raud", expiry=expiry(nimbus),
        start_pk="pk1", start_rk="r5", end_pk="pk1", end_rk="r7"))
    for rk in ("r5", "r6", "r7"):
        assert rows.get_entity("pk1", rk)["RowKey"] == rk
    for pk, rk in (("pk1", "r4"), ("pk1", "r8"), ("pk2", "r6"), ("pk0", "r6")):
        forbidden(lambda: rows.get_entity(pk, rk))
    rows.update_entity(ent("pk1", "r6", V=1))
    forbidden(lambda: rows.update_entity(ent("pk1", "r8", V=1)))
    assert "V" not in table.get_entity("pk1", "r8")
    assert table.get_entity("pk1", "r6")["V"] == 1


def test_table_sas_stored_policy(nimbus, table):
    name = table.table_name
    table.create_entity(ent("p", "r", V=1))
    table.set_table_access_policy({"readers": TableAccessPolicy(
        permission="r", start=nimbus.server_now() - dt.timedelta(minutes=5),
        expiry=expiry(nimbus))})
    sas = generate_table_sas(CRED, name, policy_id="readers")
    assert "si=readers" in sas
    c = sas_client(nimbus, name, sas)
    assert c.get_entity("p", "r")["V"] == 1
    forbidden(lambda: c.create_entity(ent("p", "x")))
    table.set_table_access_policy({})               # revoking the policy revokes the SAS
    forbidden(lambda: c.get_entity("p", "r"))


def test_table_sas_time_window_and_tampering(nimbus, table):
    name = table.table_name
    table.create_entity(ent("p", "r", V=1))
    expired = generate_table_sas(CRED, name, permission="r",
                                 expiry=nimbus.server_now() - dt.timedelta(minutes=5))
    with pytest.raises(ClientAuthenticationError) as ei:
        sas_client(nimbus, name, expired).get_entity("p", "r")
    assert err_code(ei.value) == "AuthenticationFailed"
    future = generate_table_sas(CRED, name, permission="r",
                                start=nimbus.server_now() + dt.timedelta(hours=1),
                                expiry=expiry(nimbus, 7200))
    forbidden(lambda: sas_client(nimbus, name, future).get_entity("p", "r"))
    good = generate_table_sas(CRED, name, permission="r", expiry=expiry(nimbus))
    assert "sp=r" in good
    forbidden(lambda: sas_client(nimbus, name, good.replace("sp=r", "sp=raud")).create_entity(
        ent("p", "t")), "AuthenticationFailed")
    wrong_key = AzureNamedKeyCredential(DEV_ACCOUNT, base64.b64encode(b"k" * 64).decode())
    bad = generate_table_sas(wrong_key, name, permission="r", expiry=expiry(nimbus))
    forbidden(lambda: sas_client(nimbus, name, bad).get_entity("p", "r"), "AuthenticationFailed")
    # Valid now; invalid once the server clock passes expiry.
    soon = generate_table_sas(CRED, name, permission="r", expiry=expiry(nimbus, 20))
    assert sas_client(nimbus, name, soon).get_entity("p", "r")["V"] == 1
    nimbus.advance(30)
    forbidden(lambda: sas_client(nimbus, name, soon).get_entity("p", "r"))


def acct_sas(nimbus, rtypes, perms, **kw):
    return generate_account_sas(CRED, resource_types=ResourceTypes.from_string(rtypes),
                                permission=perms, expiry=expiry(nimbus), **kw)


def test_account_sas_entities_and_service(nimbus, table):
    name = table.table_name
    table.create_entity(ent("p", "r", V=1))
    so = AzureSasCredential(acct_sas(nimbus, "so", "rwdlacu"))
    assert "ss=t" in so.signature and "srt=so" in so.signature
    c = client(nimbus, name, credential=so)
    c.create_entity(ent("p", "n", V=2))
    c.upsert_entity(ent("p", "n", W=3))
    assert c.get_entity("p", "n")["W"] == 3
    assert len(list(c.list_entities())) == 2
    c.submit_transaction([("delete", ent("p", "n"))])
    svc = TableServiceClient(endpoint=nimbus.table_endpoint(), credential=so, **SDK_KW)
    assert "cors" in svc.get_service_properties()

    s_only = AzureSasCredential(acct_sas(nimbus, "s", "rwdlacu"))
    forbidden(lambda: client(nimbus, name, credential=s_only).get_entity("p", "r"),
              "AuthorizationResourceTypeMismatch")
    assert "cors" in TableServiceClient(endpoint=nimbus.table_endpoint(), credential=s_only,
                                        **SDK_KW).get_service_properties()
    o_only = AzureSasCredential(acct_sas(nimbus, "o", "rwdlacu"))
    forbidden(lambda: TableServiceClient(endpoint=nimbus.table_endpoint(), credential=o_only,
                                         **SDK_KW).get_service_properties(),
              "AuthorizationResourceTypeMismatch")

    read_only = client(nimbus, name, credential=AzureSasCredential(acct_sas(nimbus, "so", "r")))
    assert read_only.get_entity("p", "r")["V"] == 1
    forbidden(lambda: read_only.create_entity(ent("p", "x")), "AuthorizationPermissionMismatch")
    forbidden(lambda: read_only.delete_entity("p", "r"), "AuthorizationPermissionMismatch")
    perms = AccountSasPermissions(read=True, add=True)
    ra = client(nimbus, name, credential=AzureSasCredential(acct_sas(nimbus, "o", perms)))
    ra.create_entity(ent("p", "ra"))
    forbidden(lambda: ra.update_entity(ent("p", "ra", V=1)), "AuthorizationPermissionMismatch")

    expired = generate_account_sas(CRED, ResourceTypes(object=True), "r",
                                   expiry=nimbus.server_now() - dt.timedelta(minutes=1))
    with pytest.raises(ClientAuthenticationError):
        client(nimbus, name, credential=AzureSasCredential(expired)).get_entity("p", "r")


def test_account_sas_table_operations(nimbus, tsc):
    """Create/delete/query tables with an account SAS. The tables SDK can only
    express srt=s and srt=o (its ResourceTypes has no container); spec §1.5
    puts table create/delete/query-tables under `o`."""
    name = tname("acs")
    full = AzureSasCredential(acct_sas(nimbus, "so", "rwdlacu"))
    svc = TableServiceClient(endpoint=nimbus.table_endpoint(), credential=full, **SDK_KW)
    svc.create_table(name)
    assert name in [t.name for t in svc.query_tables("TableName eq @n", parameters={"n": name})]
    svc.delete_table(name)
    assert name not in [t.name for t in tsc.list_tables()]


def test_account_sas_list_needs_l_and_service_t(nimbus, table):
    no_list = TableServiceClient(endpoint=nimbus.table_endpoint(), credential=AzureSasCredential(
        acct_sas(nimbus, "sco", "rwdacu")), **SDK_KW)
    forbidden(lambda: list(no_list.list_tables()), "AuthorizationPermissionMismatch")
    with_list = TableServiceClient(endpoint=nimbus.table_endpoint(), credential=AzureSasCredential(
        acct_sas(nimbus, "sco", "l")), **SDK_KW)
    assert table.table_name in [t.name for t in with_list.list_tables()]
    # An account SAS for the queue service does not open tables.
    from azure.storage.queue import (AccountSasPermissions as QPerms,
                                     ResourceTypes as QTypes,
                                     generate_account_sas as queue_account_sas)
    qsas = queue_account_sas(DEV_ACCOUNT, DEV_KEY, QTypes(service=True, container=True,
                                                          object=True),
                             QPerms(read=True, write=True, list=True), expiry=expiry(nimbus))
    assert "ss=q" in qsas
    forbidden(lambda: client(nimbus, table.table_name,
                             credential=AzureSasCredential(qsas)).get_entity("p", "r"),
              "AuthorizationServiceMismatch")


# ---------------------------------------------------------------- auth


def test_bad_key_and_unknown_account(nimbus, table):
    wrong = AzureNamedKeyCredential(DEV_ACCOUNT, base64.b64encode(b"w" * 64).decode())
    with pytest.raises(ClientAuthenticationError) as ei:
        list(TableServiceClient(endpoint=nimbus.table_endpoint(), credential=wrong,
                                **SDK_KW).list_tables())
    assert err_code(ei.value) == "AuthenticationFailed"
    # create_entity re-raises azure-core's plain HttpResponseError (SDK quirk).
    forbidden(lambda: client(nimbus, table.table_name, credential=wrong).create_entity(
        ent("p", "r")), "AuthenticationFailed")
    with pytest.raises(ClientAuthenticationError):
        client(nimbus, table.table_name, credential=wrong).get_entity("p", "r")
    st, h, body = nimbus.table_request("GET", "/nosuchacct/Tables", account="nosuchacct")
    assert st == 403, body


def test_unauthenticated_and_bad_signature_raw(nimbus, table):
    st, h, body = raw(nimbus, "GET", "Tables", sign=False)
    assert st in (401, 403), body
    assert h.get("x-ms-error-code") in ("AuthenticationFailed", "NoAuthenticationInformation")
    st, h, body = raw(nimbus, "GET", "Tables",
                      headers={"Authorization": "SharedKey %s:%s" % (
                          DEV_ACCOUNT, base64.b64encode(b"x" * 32).decode())}, sign=False)
    odata_error((st, h, body), 403, "AuthenticationFailed")
    # SharedKeyLite (spec §1.3) is accepted too.
    st, h, body = raw(nimbus, "GET", "Tables", scheme="SharedKeyLite")
    assert st == 200, body
    st, h, body = raw(nimbus, "GET", epath(table.table_name, "no", "pe"), scheme="SharedKeyLite")
    odata_error((st, h, body), 404, "ResourceNotFound")


# ---------------------------------------------------------------- raw HTTP surface


def test_common_response_headers(nimbus, table):
    crid = str(uuid.uuid4())
    st, h, body = raw(nimbus, "GET", "Tables", headers={"x-ms-client-request-id": crid})
    assert st == 200, body
    uuid.UUID(h["x-ms-request-id"])
    assert h["x-ms-version"] == "2019-02-02"
    assert RFC1123.match(h["date"]), h["date"]
    assert "content-length" in h or "transfer-encoding" in h
    st, h, body = raw(nimbus, "GET", "Tables", headers={"x-ms-version": "2021-12-02"})
    assert h["x-ms-version"] == "2021-12-02"
    st, h, body = raw(nimbus, "GET", epath(table.table_name, "no", "pe"))
    assert h["x-ms-version"] == "2019-02-02" and "date" in h
    odata_error((st, h, body), 404, "ResourceNotFound")


def test_error_shapes(nimbus, table):
    missing = tname("gone")
    odata_error(raw(nimbus, "GET", epath(missing, "a", "b")), 404, "TableNotFound")
    odata_error(raw(nimbus, "GET", "%s()" % missing), 404, "TableNotFound")
    odata_error(raw(nimbus, "POST", missing, body=ent("a", "b")), 404, "TableNotFound")
    odata_error(raw(nimbus, "POST", "Tables", body={"TableName": table.table_name}), 409,
                "TableAlreadyExists")
    raw(nimbus, "POST", table.table_name, body=ent("a", "b"))
    odata_error(raw(nimbus, "POST", table.table_name, body=ent("a", "b")), 409,
                "EntityAlreadyExists")
    old = "W/\"datetime'2001-01-01T00%3A00%3A00.0000000Z'\""
    odata_error(raw(nimbus, "PUT", epath(table.table_name, "a", "b"), body={"V": 1},
                    headers={"If-Match": old}), 412, "UpdateConditionNotSatisfied")
    odata_error(raw(nimbus, "GET", "%s()?$filter=%s" % (
        table.table_name, urllib.parse.quote("V eqq 1"))), 400, "InvalidInput")


def _get(nimbus, path, accept):
    st, h, body = raw(nimbus, "GET", path, accept=accept)
    assert st == 200, body
    return h, json.loads(body)


def test_metadata_levels_single_entity(nimbus, table):
    tn = table.table_name
    table.create_entity(ent("m", "1", S="s", I=1, B=True, D=1.5, W=2.0,
                            L=EntityProperty(7, EdmType.INT64),
                            T=dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=UTC), G=GUID, X=b"\x01",
                            N=NAN))
    path = epath(tn, "m", "1")

    h, doc = _get(nimbus, path, "application/json;odata=minimalmetadata")
    assert "odata=minimalmetadata" in h["content-type"], h["content-type"]
    assert list(doc)[:5] == ["odata.metadata", "odata.etag", "PartitionKey", "RowKey",
                             "Timestamp"], list(doc)
    assert doc["odata.metadata"] == "%s/$metadata#%s/@Element" % (nimbus.table_endpoint(), tn)
    assert doc["odata.etag"] == h["etag"]
    assert {k for k in doc if k.startswith("odata.")} == {"odata.metadata", "odata.etag"}
    assert annotations(doc) == {"L": "Edm.Int64", "T": "Edm.DateTime", "G": "Edm.Guid",
                                "X": "Edm.Binary", "N": "Edm.Double"}
    assert (doc["L"], doc["N"], doc["X"], doc["G"]) == ("7", "NaN", "AQ==", str(GUID))
    assert type(doc["W"]) is float and doc["W"] == 2.0
    assert type(doc["I"]) is int and doc["I"] == 1
    assert doc["B"] is True and doc["S"] == "s" and doc["D"] == 1.5
    assert TS7.match(doc["Timestamp"])
    for k in ("L", "T", "G", "X", "N"):       # annotation right before its value
        assert list(doc).index(k + "@odata.type") == list(doc).index(k) - 1

    h2, default = _get(nimbus, path, "application/json")      # the default is minimal
    assert set(default) == set(doc) and annotations(default) == annotations(doc)

    h, doc = _get(nimbus, path, "application/json;odata=nometadata")
    assert "odata=nometadata" in h["content-type"], h["content-type"]
    assert not [k for k in doc if "odata" in k], doc
    assert (doc["L"], doc["N"], doc["W"]) == ("7", "NaN", 2.0)
    assert doc["PartitionKey"] == "m" and TS7.match(doc["Timestamp"])
    assert h["etag"] == "W/\"datetime'%s'\"" % urllib.parse.quote(doc["Timestamp"])

    h, doc = _get(nimbus, path, "application/json;odata=fullmetadata")
    assert "odata=fullmetadata" in h["content-type"], h["content-type"]
    assert doc["odata.type"] == "%s.%s" % (DEV_ACCOUNT, tn)
    edit = "%s(PartitionKey='m',RowKey='1')" % tn
    assert doc["odata.editLink"] == edit
    assert doc["odata.id"].endswith(edit) and doc["odata.id"].startswith(nimbus.table_url)
    assert doc["odata.metadata"] == "%s/$metadata#%s/@Element" % (nimbus.table_endpoint(), tn)
    ann = annotations(doc)
    for k, v in (("L", "Edm.Int64"), ("T", "Edm.DateTime"), ("G", "Edm.Guid"),
                 ("X", "Edm.Binary"), ("N", "Edm.Double"), ("Timestamp", "Edm.DateTime")):
        assert ann.get(k) == v, (k, ann)
    assert not {"S", "B", "I"} & set(ann), ann

    # $format overrides Accept.
    h, doc = _get(nimbus, path + "?$format=" + urllib.parse.quote(
        "application/json;odata=nometadata"), "application/json;odata=fullmetadata")
    assert not [k for k in doc if "odata" in k], doc


def test_metadata_levels_queries(nimbus, table):
    tn = table.table_name
    table.create_entity(ent("m", "1", L=EntityProperty(1, EdmType.INT64)))
    table.create_entity(ent("m", "2", V=1))
    h, doc = _get(nimbus, "%s()" % tn, "application/json;odata=minimalmetadata")
    assert doc["odata.metadata"] == "%s/$metadata#%s" % (nimbus.table_endpoint(), tn)
    assert [e["RowKey"] for e in doc["value"]] == ["1", "2"]
    for e in doc["value"]:
        assert "odata.metadata" not in e and ETAG.match(e["odata.etag"])
    assert doc["value"][0]["L@odata.type"] == "Edm.Int64"

    h, doc = _get(nimbus, "%s()" % tn, "application/json;odata=nometadata")
    assert list(doc) == ["value"]
    assert not [k for e in doc["value"] for k in e if "odata" in k]

    h, doc = _get(nimbus, "%s()" % tn, "application/json;odata=fullmetadata")
    for e in doc["value"]:
        assert e["odata.type"] == "%s.%s" % (DEV_ACCOUNT, tn)
        assert e["odata.editLink"] == "%s(PartitionKey='m',RowKey='%s')" % (tn, e["RowKey"])
        assert e["Timestamp@odata.type"] == "Edm.DateTime"

    flt = urllib.parse.quote("TableName eq '%s'" % tn)
    h, doc = _get(nimbus, "Tables?$filter=" + flt, "application/json;odata=minimalmetadata")
    assert doc["odata.metadata"] == "%s/$metadata#Tables" % nimbus.table_endpoint()
    assert doc["value"] == [{"TableName": tn}]
    h, doc = _get(nimbus, "Tables?$filter=" + flt, "application/json;odata=nometadata")
    assert doc == {"value": [{"TableName": tn}]}
    h, doc = _get(nimbus, "Tables?$filter=" + flt, "application/json;odata=fullmetadata")
    assert [e["TableName"] for e in doc["value"]] == [tn]


def test_create_table_and_insert_raw_responses(nimbus, tsc):
    name = tname("raw")
    st, h, body = raw(nimbus, "POST", "Tables", body={"TableName": name})
    assert st == 201, body
    doc = json.loads(body)
    assert doc == {"odata.metadata": "%s/$metadata#Tables/@Element" % nimbus.table_endpoint(),
                   "TableName": name}
    try:
        name2 = name + "b"
        st, h, body = raw(nimbus, "POST", "Tables", body={"TableName": name2},
                          headers={"Prefer": "return-no-content"})
        assert st == 204 and body == b"", (st, body)
        assert h.get("preference-applied") == "return-no-content"
        tsc.delete_table(name2)

        st, h, body = raw(nimbus, "POST", name, body=ent("p", "1", V=1))
        assert st == 201, body
        doc = json.loads(body)
        assert doc["odata.metadata"] == "%s/$metadata#%s/@Element" % (nimbus.table_endpoint(),
                                                                      name)
        assert doc["V"] == 1 and doc["odata.etag"] == h["etag"] and ETAG.match(h["etag"])
        st, h, body = raw(nimbus, "POST", name, body=ent("p", "2", V=1),
                          headers={"Prefer": "return-no-content"})
        assert st == 204 and body == b"", (st, body)
        assert h.get("preference-applied") == "return-no-content"
        assert ETAG.match(h.get("etag", ""))
        md = client(nimbus, name).create_entity(ent("p", "3"),
                                                response_preference="return-no-content")
        assert md.get("preference_applied") == "return-no-content"
    finally:
        tsc.delete_table(name)


def test_x_http_method_tunnelling_and_merge_verb(nimbus, table):
    tn = table.table_name
    table.create_entity(ent("x", "1", A=1, B=2))
    path = epath(tn, "x", "1")
    st, h, body = raw(nimbus, "POST", path, body={"C": 3},
                      headers={"X-HTTP-Method": "MERGE", "If-Match": "*"})
    assert st == 204, body
    assert ETAG.match(h.get("etag", ""))
    assert dict(table.get_entity("x", "1")) == ent("x", "1", A=1, B=2, C=3)
    st, h, body = raw(nimbus, "MERGE", path, body={"D": 4}, headers={"If-Match": "*"})
    assert st == 204, body
    assert dict(table.get_entity("x", "1")) == ent("x", "1", A=1, B=2, C=3, D=4)
    st, h, body = raw(nimbus, "POST", path, body={"E": 5},
                      headers={"X-HTTP-Method": "PUT", "If-Match": "*"})
    assert st == 204, body
    assert dict(table.get_entity("x", "1")) == ent("x", "1", E=5)
    st, h, body = raw(nimbus, "POST", path, headers={"X-HTTP-Method": "DELETE", "If-Match": "*"})
    assert st == 204, body
    with pytest.raises(ResourceNotFoundError):
        table.get_entity("x", "1")
    # MERGE without If-Match is insert-or-merge.
    st, h, body = raw(nimbus, "POST", path, body={"F": 6}, headers={"X-HTTP-Method": "MERGE"})
    assert st == 204, body
    assert dict(table.get_entity("x", "1")) == ent("x", "1", F=6)


@pytest.mark.parametrize("top", ["0", "1001", "-1", "abc"])
def test_top_out_of_range(nimbus, table, top):
    st, h, body = raw(nimbus, "GET", "%s()?$top=%s" % (table.table_name, top))
    odata_error((st, h, body), 400, "InvalidQueryParameterValue")
    st, h, body = raw(nimbus, "GET", "Tables?$top=%s" % top)
    odata_error((st, h, body), 400, "InvalidQueryParameterValue")


def test_top_1000_accepted(nimbus, table):
    st, _, body = raw(nimbus, "GET", "%s()?$top=1000" % table.table_name)
    assert st == 200, body
    st, _, body = raw(nimbus, "GET", "Tables?$top=1000")
    assert st == 200, body


def test_continuation_headers_raw(nimbus, table):
    tn = table.table_name
    rows = [("a", "1"), ("a", "2"), ("b", "1"), ("b x'y", "2"), ("c", "3")]
    for pk, rk in rows:
        table.create_entity(ent(pk, rk))
    seen, query, pages = [], "$top=2", 0
    while True:
        st, h, body = raw(nimbus, "GET", "%s()?%s" % (tn, query))
        assert st == 200, body
        got = [(e["PartitionKey"], e["RowKey"]) for e in json.loads(body)["value"]]
        assert len(got) <= 2
        seen += got
        pages += 1
        npk = h.get("x-ms-continuation-nextpartitionkey")
        nrk = h.get("x-ms-continuation-nextrowkey")
        if not npk and not nrk:
            break
        assert npk and nrk, h
        query = "$top=2&NextPartitionKey=%s&NextRowKey=%s" % (urllib.parse.quote(npk, safe=""),
                                                              urllib.parse.quote(nrk, safe=""))
        assert pages < 10
    assert seen == sorted(rows) and pages == 3

    p = "ct" + uuid.uuid4().hex[:10]
    names = [p + s for s in ("a", "b", "c")]
    for n in names:
        raw(nimbus, "POST", "Tables", body={"TableName": n})
    try:
        flt = urllib.parse.quote("TableName ge '%s' and TableName lt '%s{'" % (p, p))
        seen, query = [], "$top=1&$filter=" + flt
        for _ in range(10):
            st, h, body = raw(nimbus, "GET", "Tables?" + query)
            assert st == 200, body
            seen += [t["TableName"] for t in json.loads(body)["value"]]
            nt = h.get("x-ms-continuation-nexttablename")
            if not nt:
                break
            query = "$top=1&$filter=%s&NextTableName=%s" % (flt, urllib.parse.quote(nt, safe=""))
        assert seen == names
    finally:
        for n in names:
            raw(nimbus, "DELETE", "Tables('%s')" % n)


def test_entity_url_forms(nimbus, table):
    """Keys are %-decoded per segment, then '' -> ' (spec §3.3)."""
    pk, rk = "a b'c&\u00e9", "r%20+=x"
    table.create_entity(ent(pk, rk, V=1))
    st, h, body = raw(nimbus, "GET", "%s(PartitionKey='a%%20b%%27%%27c%%26%%C3%%A9',"
                      "RowKey='r%%2520%%2B%%3Dx')" % table.table_name)
    assert st == 200, body
    doc = json.loads(body)
    assert (doc["PartitionKey"], doc["RowKey"], doc["V"]) == (pk, rk, 1)
    # `{table}` and `{table}()` both address the entity set.
    for p in (table.table_name, table.table_name + "()"):
        st, h, body = raw(nimbus, "GET", p)
        assert st == 200, body
        assert len(json.loads(body)["value"]) == 1


# ---------------------------------------------------------------- durability


def test_tables_survive_restart_and_kill(tmp_path_factory):
    """What the service acknowledged is still there after a clean restart
    and after kill -9 (own server: the suite's server keeps running)."""
    srv = Nimbus(tmp_path_factory.mktemp("restart")).start()
    try:
        svc = TableServiceClient(endpoint=srv.table_endpoint(), credential=CRED, **SDK_KW)
        name = tname("dur")
        tc = svc.create_table(name)
        tc.create_entity(ent("types", "1", **ROUND_TRIP))
        tc.submit_transaction([("create", ent("b", "%02d" % i, V=i)) for i in range(10)])
        exp = dt.datetime(2099, 1, 1, tzinfo=UTC)
        tc.set_table_access_policy({"pol": TableAccessPolicy(permission="r", expiry=exp)})
        svc.set_service_properties(cors=[TableCorsRule(["http://dur.example"], ["GET"])])
        etag = tc.get_entity("types", "1").metadata["etag"]

        assert srv.stop() == 0
        srv.start()
        tc = client(srv, name)
        e = tc.get_entity("types", "1")
        check_round_trip(e, ROUND_TRIP)
        assert e.metadata["etag"] == etag
        assert [x["V"] for x in tc.query_entities("PartitionKey eq 'b'")] == list(range(10))
        assert tc.get_table_access_policy()["pol"].expiry == exp
        svc = TableServiceClient(endpoint=srv.table_endpoint(), credential=CRED, **SDK_KW)
        assert [r.allowed_origins for r in svc.get_service_properties()["cors"]] == \
            [["http://dur.example"]]

        tc.submit_transaction([("upsert", ent("b", "%02d" % i, V=100 + i)) for i in range(10)])
        tc.delete_entity("types", "1")
        srv.kill()
        srv.start()
        tc = client(srv, name)
        assert [x["V"] for x in tc.query_entities("PartitionKey eq 'b'")] == \
            [100 + i for i in range(10)]
        with pytest.raises(ResourceNotFoundError):
            tc.get_entity("types", "1")
        assert name in [t.name for t in TableServiceClient(
            endpoint=srv.table_endpoint(), credential=CRED, **SDK_KW).list_tables()]
    finally:
        srv.kill()
