"""End-to-end tests of the `nimbus table ...` and `nimbus entity ...` client
commands (src/cli/table_cmd.c) against a fresh `nimbus start`: every
subcommand, its --json and text output and exit status, connection strings
(flag, environment, SAS), and typed interoperability with the official
azure.data.tables SDK in both directions (entities written by the CLI are read
back by the SDK with the right Python types, and vice versa).

Run with /usr/bin/python3 (python3-azure lives there):
    NIMBUS_BIN=build/nimbus /usr/bin/python3 -m pytest -q tests/conformance/test_table_client_cmds.py
"""
import base64
import datetime as dt
import json
import math
import os
import re
import socket
import subprocess
import uuid

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import ResourceNotFoundError
from azure.data.tables import (AccountSasPermissions, EdmType, EntityProperty, ResourceTypes,
                               TableServiceClient, UpdateMode, generate_account_sas)

from conftest import DEV_ACCOUNT, DEV_KEY, NIMBUS_BIN

TABLE_SUBCOMMANDS = ["create", "delete", "list"]
ENTITY_SUBCOMMANDS = ["insert", "get", "query", "merge", "replace", "delete"]
ETAG = re.compile(r"^W/\"datetime'\d{4}-\d\d-\d\dT\d\d%3A\d\d%3A\d\d(\.\d+)?Z'\"$")
# Keys with every character class that needs care in a URL key literal
# (spec §3.3): quotes (doubled, then %-encoded), spaces, '%', '+', '&',
# non-ASCII. '/', '\\', '#', '?' are not allowed in keys at all.
PK_TRICKY = "a b'c&\u00e9 %2B+ ''"
RK_TRICKY = "r%20+=x ~!*();:@,$ \u2603"
TEXT_TRICKY = "hello <world> & 'friends' \"q\" \u00e9 \u2603 tab\tend"


def table_endpoint(srv):
    if hasattr(srv, "table_endpoint"):
        return srv.table_endpoint()
    return "http://127.0.0.1:%d/%s" % (srv.table_port, DEV_ACCOUNT)


def table_conn(srv, key=DEV_KEY):
    return ("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;TableEndpoint=%s;"
            % (DEV_ACCOUNT, key, table_endpoint(srv)))


def run(group, args, conn=None, env_conn=None, timeout=30):
    """Run `nimbus <group> <args>`; returns (rc, stdout, stderr). The
    connection string goes in --connection-string (conn) or in the
    environment (env_conn); the caller's AZURE_STORAGE_* never leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_STORAGE_")}
    if env_conn is not None:
        env["AZURE_STORAGE_CONNECTION_STRING"] = env_conn
    cmd = [NIMBUS_BIN, group] + list(args)
    if conn is not None:
        cmd += ["--connection-string", conn]
    p = subprocess.run(cmd, capture_output=True, env=env, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8")


def _runner(group, srv):
    def cli(*args, rc=0, json_out=True, conn=None):
        argv = list(args) + (["--json"] if json_out else [])
        code, out, err = run(group, argv, conn=conn or table_conn(srv))
        assert code == rc, "nimbus %s %s: rc %d (want %d)\nstdout: %s\nstderr: %s" % (
            group, " ".join(args), code, rc, out, err)
        if rc != 0:
            assert out == ""
            return err
        return json.loads(out) if json_out else out
    return cli


@pytest.fixture(scope="module")
def t(nimbus):
    """t(*args, rc=0, json_out=True) -> parsed JSON stdout of `nimbus table`
    (or its text, or stderr when rc != 0)."""
    return _runner("table", nimbus)


@pytest.fixture(scope="module")
def e(nimbus):
    """The same for `nimbus entity`."""
    return _runner("entity", nimbus)


@pytest.fixture(scope="module")
def svc(nimbus):
    return TableServiceClient.from_connection_string(table_conn(nimbus))


def tname(tag):
    return "cli%s%s" % (tag, uuid.uuid4().hex[:8])


@pytest.fixture
def table(svc):
    """A fresh table, deleted afterwards."""
    name = tname("t")
    tc = svc.create_table(name)
    yield name, tc
    svc.delete_table(name)


def err_of(stderr):
    return json.loads(stderr)["error"]


# -- help and usage ----------------------------------------------------------

@pytest.mark.parametrize("group,subs", [("table", TABLE_SUBCOMMANDS),
                                        ("entity", ENTITY_SUBCOMMANDS)])
def test_help_lists_every_subcommand(group, subs):
    for flag in ("--help", "-h", "help"):
        rc, out, _ = run(group, [flag])
        assert rc == 0
        assert out.startswith("usage: nimbus %s" % group)
        for sub in subs:
            assert re.search(r"^  %s\b" % re.escape(sub), out, re.M), sub
    rc, out, err = run(group, [])
    assert rc == 2 and out == "" and err.startswith("usage: nimbus %s" % group)


@pytest.mark.parametrize("group,sub", [("table", s) for s in TABLE_SUBCOMMANDS]
                         + [("entity", s) for s in ENTITY_SUBCOMMANDS])
def test_subcommand_help(group, sub):
    for flag in ("--help", "-h"):
        rc, out, err = run(group, [sub, flag])
        assert rc == 0, err
        assert out.startswith("usage: nimbus %s %s" % (group, sub))
        assert "--connection-string" in out and "--json" in out


def test_entity_help_documents_types():
    rc, out, _ = run("entity", ["insert", "--help"])
    for word in ("int32", "int64", "double", "bool", "datetime", "guid", "binary"):
        assert word in out


@pytest.mark.parametrize("group,args", [
    ("table", ["frobnicate"]), ("table", ["create"]), ("table", ["create", "a_b"]),
    ("table", ["create", "ab"]), ("table", ["create", "1abc"]), ("table", ["list", "extra"]),
    ("table", ["list", "--top", "0"]), ("table", ["list", "--top", "1001"]),
    ("table", ["delete", "abc", "--bogus"]), ("table", ["list", "--filter"]),
    ("entity", ["frobnicate"]), ("entity", ["insert"]), ("entity", ["insert", "abc"]),
    ("entity", ["insert", "abc", "--pk", "p"]), ("entity", ["get", "abc", "--rk", "r"]),
    ("entity", ["get", "abc", "--pk", "p", "--rk", "r", "extra"]),
    ("entity", ["insert", "abc", "--pk", "p", "--rk", "r", "novalue"]),
    ("entity", ["insert", "abc", "--pk", "p", "--rk", "r", "1bad=x"]),
    ("entity", ["insert", "abc", "--pk", "p", "--rk", "r", "a-b=x"]),
    ("entity", ["insert", "abc", "--pk", "p", "--rk", "r", "a=1", "a=2"]),
    ("entity", ["insert", "abc", "--pk", "p", "--rk", "r", "RowKey=x"]),
    ("entity", ["insert", "abc", "--pk", "p", "--rk", "r", "Timestamp=x"]),
    ("entity", ["insert", "abc", "--pk", "p", "--rk", "r", "n=1.5:int32"]),
    ("entity", ["insert", "abc", "--pk", "p", "--rk", "r", "n=2147483648:int32"]),
    ("entity", ["insert", "abc", "--pk", "p", "--rk", "r", "n=9223372036854775808:int64"]),
    ("entity", ["insert", "abc", "--pk", "p", "--rk", "r", "n=0x10:int64"]),
    ("entity", ["insert", "abc", "--pk", "p", "--rk", "r", "n=abc:double"]),
    ("entity", ["insert", "abc", "--pk", "p", "--rk", "r", "n=1e999:double"]),
    ("entity", ["insert", "abc", "--pk", "p", "--rk", "r", "n=yes:bool"]),
    ("entity", ["insert", "abc", "--pk", "p", "--rk", "r", "n=2024-02-30T00:00:00Z:datetime"]),
    ("entity", ["insert", "abc", "--pk", "p", "--rk", "r", "n=1600-12-31T00:00:00Z:datetime"]),
    ("entity", ["insert", "abc", "--pk", "p", "--rk", "r", "n=not-a-guid:guid"]),
    ("entity", ["insert", "abc", "--pk", "p", "--rk", "r", "n=!!!:binary"]),
    ("entity", ["insert", "abc", "--pk", "p", "--rk", "r", "--if-exists", "upsert"]),
    ("entity", ["merge", "abc", "--pk", "p", "--rk", "r", "--if-match", ""]),
    ("entity", ["delete", "abc", "--pk", "p", "--rk", "r", "--if-exists", "fail"]),
    ("entity", ["query", "abc", "--top", "x"]), ("entity", ["query", "abc", "--pk", "p"]),
    ("entity", ["query", "abc", "--marker", "foo=1"]), ("entity", ["query", "abc", "--marker"]),
    ("entity", ["query", "abc", "--marker", "nextrowkey=1", "nextrowkey=2"]),
])
def test_usage_errors_exit_2(group, args):
    rc, out, err = run(group, args)
    assert rc == 2, (args, out, err)
    assert out == ""
    assert err.strip()


def test_too_many_properties_is_a_usage_error():
    props = ["p%d=%d" % (i, i) for i in range(253)]
    rc, out, err = run("entity", ["insert", "abc", "--pk", "p", "--rk", "r"] + props)
    assert rc == 2 and "too many properties" in err


def test_bad_connection_string_is_a_usage_error():
    rc, _, err = run("table", ["list"], conn="no-equals-sign-here")
    assert rc == 2 and "malformed" in err
    rc, _, err = run("entity", ["query", "abc"], env_conn="AccountName=a;AccountKey=***")
    assert rc == 2 and "AZURE_STORAGE_CONNECTION_STRING" in err
    # A connection string with a queue endpoint only has nothing to talk to.
    rc, _, err = run("table", ["list"], conn="QueueEndpoint=http://127.0.0.1:1/a;"
                                             "SharedAccessSignature=sv=1")
    assert rc == 2 and "table endpoint" in err


# -- tables ------------------------------------------------------------------

def test_table_create_delete(t, svc):
    name = tname("cd")
    assert t("create", name) == {"name": name, "created": True}
    assert name in [x.name for x in svc.list_tables()]

    # Exists: not an error (created=false) unless --fail-on-exist.
    assert t("create", name) == {"name": name, "created": False}
    err = err_of(t("create", name, "--fail-on-exist", rc=1))
    assert err["code"] == "TableAlreadyExists" and err["status"] == 409
    text = t("create", name, "--fail-on-exist", rc=1, json_out=False)
    assert text.startswith("error: TableAlreadyExists: ")

    assert t("delete", name) == {"name": name, "deleted": True}
    assert name not in [x.name for x in svc.list_tables()]
    assert t("delete", name) == {"name": name, "deleted": False}
    err = err_of(t("delete", name, "--fail-not-exist", rc=1))
    assert err["status"] == 404 and err["code"] in ("ResourceNotFound", "TableNotFound")
    assert err["message"]


def test_table_human_output(t):
    name = tname("hu")
    assert t("create", name, json_out=False) == "created table %s\n" % name
    assert t("create", name, json_out=False) == "table %s already exists\n" % name
    assert name in t("list", json_out=False).splitlines()
    assert t("delete", name, json_out=False) == "deleted table %s\n" % name
    assert t("delete", name, json_out=False) == "table %s does not exist\n" % name


def test_table_list_filter_and_every_page(t, svc):
    prefix = "clipg%s" % uuid.uuid4().hex[:6]
    names = sorted(prefix + "n%d" % i for i in range(7))
    for n in names:
        svc.create_table(n)
    try:
        flt = "TableName ge '%s' and TableName lt '%s~'" % (prefix, prefix)
        out = t("list", "--filter", flt)
        assert [x["name"] for x in out] == names
        # Pages of 2: x-ms-continuation-NextTableName is followed to the end.
        assert [x["name"] for x in t("list", "--filter", flt, "--top", "2")] == names
        assert [x["name"] for x in t("list", "--filter", flt, "--top", "1")] == names
        assert t("list", "--filter", flt, json_out=False).splitlines() == names
        assert t("list", "--filter", "TableName eq '%s'" % names[3]) == [{"name": names[3]}]
        assert t("list", "--filter", "TableName eq '%snothing'" % prefix) == []
        everything = [x["name"] for x in t("list", "--top", "3")]
        assert set(names) <= set(everything)
        assert everything == sorted(everything, key=lambda s: s.encode())
    finally:
        for n in names:
            svc.delete_table(n)


def test_table_list_bad_filter_is_a_service_error(t):
    err = err_of(t("list", "--filter", "TableName eq", rc=1))
    assert err["status"] == 400 and err["code"] == "InvalidInput"


# -- entities: CLI writes, SDK reads ----------------------------------------------

def test_cli_insert_sdk_reads_every_type(e, table):
    name, tc = table
    out = e("insert", name, "--pk", "p1", "--rk", "r1",
            "Str=%s" % TEXT_TRICKY, "Url=http://x:y/z", "Colon=a:int32:string",
            "Empty=", "I32=42:int32", "Neg=-7:int", "I64=1099511627776:int64",
            "Small64=5:int64", "Dbl=3.5:double", "Whole=2:double", "Exp=-1.5e-3:double",
            "Nan=NaN:double", "Inf=inf:double", "NInf=-Infinity:double",
            "T=true:bool", "F=FALSE:bool",
            "When=2023-05-06T07:08:09.123456Z:datetime",
            "Off=2023-05-06T09:08:09+02:00:datetime",
            "Id=C9DA6455-213D-42C9-9A79-3E9149A57833:guid",
            "Bin=AAFiaW5hcnn/:binary", "NoBin=:binary")
    assert out["PartitionKey"] == "p1" and out["RowKey"] == "r1"
    assert ETAG.match(out["etag"]), out["etag"]

    ent = tc.get_entity("p1", "r1")
    assert ent.metadata["etag"] == out["etag"]
    assert ent["Str"] == TEXT_TRICKY
    assert ent["Url"] == "http://x:y/z"
    assert ent["Colon"] == "a:int32"
    assert ent["Empty"] == ""
    assert ent["I32"] == 42 and type(ent["I32"]) is int
    assert ent["Neg"] == -7
    assert isinstance(ent["I64"], EntityProperty)
    assert ent["I64"].value == 1099511627776 and ent["I64"].edm_type == EdmType.INT64
    assert ent["Small64"].value == 5 and ent["Small64"].edm_type == EdmType.INT64
    assert ent["Dbl"] == 3.5 and type(ent["Dbl"]) is float
    assert ent["Whole"] == 2.0 and type(ent["Whole"]) is float
    assert ent["Exp"] == -1.5e-3
    assert math.isnan(ent["Nan"])
    assert ent["Inf"] == math.inf and ent["NInf"] == -math.inf
    assert ent["T"] is True and ent["F"] is False
    assert ent["When"] == dt.datetime(2023, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone.utc)
    assert ent["Off"] == dt.datetime(2023, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc)
    assert ent["Id"] == uuid.UUID("c9da6455-213d-42c9-9a79-3e9149a57833")
    assert ent["Bin"] == b"\x00\x01binary\xff"
    assert ent["NoBin"] == b""


def test_cli_tricky_keys_sdk_reads(e, table):
    name, tc = table
    out = e("insert", name, "--pk", PK_TRICKY, "--rk", RK_TRICKY, "V=1:int32")
    assert out["PartitionKey"] == PK_TRICKY and out["RowKey"] == RK_TRICKY
    ent = tc.get_entity(PK_TRICKY, RK_TRICKY)
    assert ent["V"] == 1
    got = e("get", name, "--pk", PK_TRICKY, "--rk", RK_TRICKY)
    assert got["PartitionKey"] == PK_TRICKY and got["RowKey"] == RK_TRICKY
    assert got["etag"] == out["etag"]
    e("merge", name, "--pk", PK_TRICKY, "--rk", RK_TRICKY, "--if-match", out["etag"], "W=2:int32")
    assert tc.get_entity(PK_TRICKY, RK_TRICKY)["W"] == 2
    assert e("delete", name, "--pk", PK_TRICKY, "--rk", RK_TRICKY)["deleted"] is True
    with pytest.raises(ResourceNotFoundError):
        tc.get_entity(PK_TRICKY, RK_TRICKY)


def test_empty_keys(e, table):
    name, tc = table
    e("insert", name, "--pk", "", "--rk", "", "V=x")
    got = e("get", name, "--pk", "", "--rk", "")
    assert got["PartitionKey"] == "" and got["RowKey"] == "" and got["V"] == "x"
    assert e("delete", name, "--pk", "", "--rk", "")["deleted"] is True


def test_insert_conflict_and_upsert_modes(e, table):
    name, tc = table
    e("insert", name, "--pk", "p", "--rk", "r", "A=1:int32", "B=keep")
    err = err_of(e("insert", name, "--pk", "p", "--rk", "r", "A=2:int32", rc=1))
    assert err["code"] == "EntityAlreadyExists" and err["status"] == 409
    text = e("insert", name, "--pk", "p", "--rk", "r", rc=1, json_out=False)
    assert text.startswith("error: EntityAlreadyExists: ")
    assert tc.get_entity("p", "r")["A"] == 1

    out = e("insert", name, "--pk", "p", "--rk", "r", "A=2:int32", "--if-exists", "merge")
    assert ETAG.match(out["etag"])
    ent = tc.get_entity("p", "r")
    assert ent["A"] == 2 and ent["B"] == "keep"

    e("insert", name, "--pk", "p", "--rk", "r", "A=3:int32", "--if-exists", "replace")
    ent = tc.get_entity("p", "r")
    assert ent["A"] == 3 and "B" not in ent

    # Both upsert modes create a missing entity.
    e("insert", name, "--pk", "p", "--rk", "m", "X=1:int32", "--if-exists", "merge")
    e("insert", name, "--pk", "p", "--rk", "n", "X=1:int32", "--if-exists", "replace")
    assert tc.get_entity("p", "m")["X"] == 1 and tc.get_entity("p", "n")["X"] == 1


def test_merge_replace_and_etags(e, table):
    name, tc = table
    ins = e("insert", name, "--pk", "p", "--rk", "r", "A=1:int32", "B=b")
    etag1 = ins["etag"]

    m = e("merge", name, "--pk", "p", "--rk", "r", "--if-match", etag1, "C=3.5:double")
    assert m["etag"] != etag1 and ETAG.match(m["etag"])
    ent = tc.get_entity("p", "r")
    assert (ent["A"], ent["B"], ent["C"]) == (1, "b", 3.5)
    assert ent.metadata["etag"] == m["etag"]

    # The old etag no longer matches.
    err = err_of(e("merge", name, "--pk", "p", "--rk", "r", "--if-match", etag1, "D=1", rc=1))
    assert err["code"] == "UpdateConditionNotSatisfied" and err["status"] == 412
    err = err_of(e("replace", name, "--pk", "p", "--rk", "r", "--if-match", etag1, rc=1))
    assert err["code"] == "UpdateConditionNotSatisfied"

    r = e("replace", name, "--pk", "p", "--rk", "r", "--if-match", m["etag"], "Z=z")
    ent = tc.get_entity("p", "r")
    assert dict(ent) == {"PartitionKey": "p", "RowKey": "r", "Z": "z"}
    r2 = e("replace", name, "--pk", "p", "--rk", "r", "--if-match", "*", "Z=zz")
    assert r2["etag"] != r["etag"]

    # With --if-match the entity must exist; without it merge and replace upsert.
    for verb in ("merge", "replace"):
        err = err_of(e(verb, name, "--pk", "p", "--rk", "missing", "--if-match", "*", rc=1))
        assert err["code"] == "ResourceNotFound" and err["status"] == 404
    e("merge", name, "--pk", "p", "--rk", "new1", "A=1:int32")
    e("replace", name, "--pk", "p", "--rk", "new2", "A=2:int32")
    assert tc.get_entity("p", "new1")["A"] == 1 and tc.get_entity("p", "new2")["A"] == 2

    text = e("merge", name, "--pk", "p", "--rk", "new1", "B=1", json_out=False)
    lines = text.splitlines()
    assert lines[0] == "merged entity PartitionKey='p' RowKey='new1'"
    assert lines[1].startswith("etag: W/")
    text = e("replace", name, "--pk", "p", "--rk", "new1", json_out=False)
    assert text.startswith("replaced entity PartitionKey='p' RowKey='new1'\n")
    text = e("insert", name, "--pk", "p", "--rk", "new3", json_out=False)
    assert text.startswith("inserted entity PartitionKey='p' RowKey='new3'\n")


def test_delete_entity(e, table):
    name, tc = table
    ins = e("insert", name, "--pk", "p", "--rk", "r", "A=1:int32")
    e("merge", name, "--pk", "p", "--rk", "r", "A=2:int32")
    err = err_of(e("delete", name, "--pk", "p", "--rk", "r", "--if-match", ins["etag"], rc=1))
    assert err["code"] == "UpdateConditionNotSatisfied"
    cur = tc.get_entity("p", "r").metadata["etag"]
    out = e("delete", name, "--pk", "p", "--rk", "r", "--if-match", cur)
    assert out == {"PartitionKey": "p", "RowKey": "r", "deleted": True}
    assert e("delete", name, "--pk", "p", "--rk", "r") == {
        "PartitionKey": "p", "RowKey": "r", "deleted": False}
    err = err_of(e("delete", name, "--pk", "p", "--rk", "r", "--fail-not-exist", rc=1))
    assert err["code"] == "ResourceNotFound" and err["status"] == 404
    # Default If-Match is *.
    e("insert", name, "--pk", "p", "--rk", "s")
    assert e("delete", name, "--pk", "p", "--rk", "s", json_out=False) == \
        "deleted entity PartitionKey='p' RowKey='s'\n"
    assert e("delete", name, "--pk", "p", "--rk", "s", json_out=False) == \
        "entity PartitionKey='p' RowKey='s' does not exist\n"


# -- entities: SDK writes, CLI reads ------------------------------------------------

SDK_ENTITY = {
    "PartitionKey": "pk1", "RowKey": "rk1",
    "Str": TEXT_TRICKY, "I32": 42, "Big": EntityProperty(2 ** 40, EdmType.INT64),
    "Typed64": EntityProperty(7, EdmType.INT64),
    "Dbl": 3.25, "Whole": 2.0, "Nan": float("nan"), "Inf": float("inf"), "Bool": True,
    "When": dt.datetime(2023, 5, 6, 7, 8, 9, 123456, tzinfo=dt.timezone.utc),
    "Id": uuid.UUID("c9da6455-213d-42c9-9a79-3e9149a57833"), "Bin": b"\x00\x01binary\xff",
}


def test_sdk_insert_cli_get_json_types(e, table):
    name, tc = table
    meta = tc.create_entity(SDK_ENTITY)
    got = e("get", name, "--pk", "pk1", "--rk", "rk1")
    assert list(got)[:4] == ["PartitionKey", "RowKey", "Timestamp", "etag"]
    assert got["etag"] == meta["etag"]
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$", got["Timestamp"])
    assert got["Str"] == TEXT_TRICKY and "Str@odata.type" not in got
    assert got["I32"] == 42 and type(got["I32"]) is int and "I32@odata.type" not in got
    assert got["Big"] == str(2 ** 40) and got["Big@odata.type"] == "Edm.Int64"
    assert got["Typed64"] == "7" and got["Typed64@odata.type"] == "Edm.Int64"
    assert got["Dbl"] == 3.25 and type(got["Dbl"]) is float
    assert got["Whole"] == 2.0 and type(got["Whole"]) is float
    assert got["Nan"] == "NaN" and got["Nan@odata.type"] == "Edm.Double"
    assert got["Inf"] == "Infinity" and got["Inf@odata.type"] == "Edm.Double"
    assert got["Bool"] is True
    assert got["When"].startswith("2023-05-06T07:08:09.123456")
    assert got["When@odata.type"] == "Edm.DateTime"
    assert got["Id"] == "c9da6455-213d-42c9-9a79-3e9149a57833"
    assert got["Id@odata.type"] == "Edm.Guid"
    assert base64.b64decode(got["Bin"]) == b"\x00\x01binary\xff"
    assert got["Bin@odata.type"] == "Edm.Binary"
    # No odata.* keys leak into our output.
    assert not [k for k in got if k.startswith("odata.")]


def test_sdk_insert_cli_get_text_types(e, table):
    name, tc = table
    tc.create_entity(SDK_ENTITY)
    text = e("get", name, "--pk", "pk1", "--rk", "rk1", json_out=False)
    lines = dict(l.split(": ", 1) for l in text.splitlines())
    assert lines["PartitionKey"] == "pk1" and lines["RowKey"] == "rk1"
    assert lines["etag"].startswith("W/")
    assert lines["Str"] == TEXT_TRICKY
    assert lines["I32"] == "42 (Int32)"
    assert lines["Big"] == "%d (Int64)" % 2 ** 40
    assert lines["Dbl"] == "3.25 (Double)"
    assert lines["Whole"] == "2.0 (Double)"
    assert lines["Nan"] == "NaN (Double)"
    assert lines["Bool"] == "true (Boolean)"
    assert lines["When"].startswith("2023-05-06T07:08:09.123456") and \
        lines["When"].endswith("(DateTime)")
    assert lines["Id"] == "c9da6455-213d-42c9-9a79-3e9149a57833 (Guid)"
    assert lines["Bin"].endswith("(Binary)")


def test_sdk_tricky_keys_cli_reads(e, table):
    name, tc = table
    tc.upsert_entity({"PartitionKey": PK_TRICKY, "RowKey": RK_TRICKY, "V": "sdk"})
    got = e("get", name, "--pk", PK_TRICKY, "--rk", RK_TRICKY)
    assert got["V"] == "sdk"
    q = e("query", name, "--filter", "PartitionKey eq '%s'" % PK_TRICKY.replace("'", "''"))
    assert [x["RowKey"] for x in q["items"]] == [RK_TRICKY]


def test_round_trip_cli_sdk_cli(e, table):
    """What the CLI wrote, the SDK rewrites unchanged, and the CLI reads the
    same values and types back."""
    name, tc = table
    e("insert", name, "--pk", "p", "--rk", "r", "S=s", "I=1:int32", "L=9000000000:int64",
      "D=1.0:double", "B=false:bool", "T=2001-02-03T04:05:06Z:datetime",
      "G=00000000-0000-0000-0000-000000000001:guid", "X=AQID:binary")
    before = e("get", name, "--pk", "p", "--rk", "r")
    ent = tc.get_entity("p", "r")
    tc.update_entity(ent, mode=UpdateMode.REPLACE)
    after = e("get", name, "--pk", "p", "--rk", "r")
    for k in ("S", "I", "L", "L@odata.type", "D", "B", "T@odata.type", "G", "G@odata.type",
              "X", "X@odata.type"):
        assert after[k] == before[k], k
    assert after["T"].startswith("2001-02-03T04:05:06")
    assert type(after["D"]) is float and after["L"] == "9000000000"


# -- get and query ------------------------------------------------------------------

def test_get_select_and_missing(e, table):
    name, tc = table
    tc.create_entity({"PartitionKey": "p", "RowKey": "r", "A": 1, "B": "b", "C": 2.5})
    got = e("get", name, "--pk", "p", "--rk", "r", "--select", "A,C")
    assert got["A"] == 1 and got["C"] == 2.5 and "B" not in got
    err = err_of(e("get", name, "--pk", "p", "--rk", "nope", rc=1))
    assert err["code"] == "ResourceNotFound" and err["status"] == 404
    err = err_of(e("get", tname("none"), "--pk", "p", "--rk", "r", rc=1))
    assert err["code"] in ("TableNotFound", "ResourceNotFound") and err["status"] == 404


def test_query_filter_select_and_pages(e, table):
    name, tc = table
    for p in ("a", "b"):
        for i in range(5):
            tc.create_entity({"PartitionKey": p, "RowKey": "r%d" % i, "N": i,
                              "Big": EntityProperty(i, EdmType.INT64), "S": "s%d" % i})
    allq = e("query", name)
    assert allq["nextMarker"] is None
    assert [(x["PartitionKey"], x["RowKey"]) for x in allq["items"]] == \
        [(p, "r%d" % i) for p in ("a", "b") for i in range(5)]
    assert all(ETAG.match(x["etag"]) for x in allq["items"])
    assert allq["items"][0]["Big@odata.type"] == "Edm.Int64"

    q = e("query", name, "--filter", "PartitionKey eq 'b' and N ge 3")
    assert [x["RowKey"] for x in q["items"]] == ["r3", "r4"]
    q = e("query", name, "--filter", "Big gt 2L and PartitionKey eq 'a'", "--select", "S")
    assert [x["S"] for x in q["items"]] == ["s3", "s4"]
    assert all("N" not in x for x in q["items"])
    assert e("query", name, "--filter", "S eq 'nothing'") == {"items": [], "nextMarker": None}

    # One page at a time, continued with --marker ...
    page = e("query", name, "--top", "3")
    assert len(page["items"]) == 3 and page["nextMarker"]
    seen = [x["RowKey"] for x in page["items"]]
    for _ in range(10):
        if not page["nextMarker"]:
            break
        marker = ["%s=%s" % kv for kv in page["nextMarker"].items()]
        page = e("query", name, "--top", "3", "--marker", *marker)
        seen += [x["RowKey"] for x in page["items"]]
    assert page["nextMarker"] is None
    assert seen == [x["RowKey"] for x in allq["items"]]
    # ... or all at once with --all.
    every = e("query", name, "--top", "3", "--all")
    assert every == allq or [x["RowKey"] for x in every["items"]] == seen
    assert every["nextMarker"] is None and len(every["items"]) == 10


def test_query_text_output(nimbus, e, table):
    name, tc = table
    tc.create_entity({"PartitionKey": "p", "RowKey": "1", "N": 1})
    tc.create_entity({"PartitionKey": "p", "RowKey": "2", "N": 2})
    rc, out, err = run("entity", ["query", name, "--top", "1"], conn=table_conn(nimbus))
    assert rc == 0
    assert "RowKey: 1" in out and "N: 1 (Int32)" in out and "RowKey: 2" not in out
    assert "--marker" in err and "nextpartitionkey=" in err
    text = e("query", name, "--all", "--top", "1", json_out=False)
    blocks = text.strip().split("\n\n")
    assert len(blocks) == 2 and "RowKey: 2" in blocks[1]


def test_query_errors(e, table):
    name, _ = table
    err = err_of(e("query", tname("none"), rc=1))
    assert err["code"] == "TableNotFound" and err["status"] == 404
    text = e("query", tname("none"), rc=1, json_out=False)
    assert text.startswith("error: TableNotFound: ")
    err = err_of(e("query", name, "--filter", "N eq", rc=1))
    assert err["code"] == "InvalidInput" and err["status"] == 400


# -- connection strings and auth -------------------------------------------------------

def test_connection_string_from_environment(nimbus, svc):
    name = tname("env")
    rc, out, err = run("table", ["create", name, "--json"], env_conn=table_conn(nimbus))
    assert rc == 0, err
    assert json.loads(out)["created"] is True
    rc, out, err = run("entity", ["insert", name, "--pk", "p", "--rk", "r", "--json"],
                       env_conn=table_conn(nimbus))
    assert rc == 0, err
    # --connection-string wins over the environment.
    rc, out, err = run("table", ["delete", name, "--json"], conn=table_conn(nimbus),
                       env_conn="DefaultEndpointsProtocol=http;AccountName=x;AccountKey=AAAA;"
                                "TableEndpoint=http://127.0.0.1:1/x")
    assert rc == 0, err
    assert json.loads(out)["deleted"] is True


def test_full_connection_string_uses_the_table_endpoint(nimbus, t):
    conn = ("DefaultEndpointsProtocol=http;AccountName=%s;AccountKey=%s;QueueEndpoint=%s;"
            "TableEndpoint=%s;" % (DEV_ACCOUNT, DEV_KEY, nimbus.queue_endpoint(),
                                   table_endpoint(nimbus)))
    name = tname("full")
    assert t("create", name, conn=conn)["created"] is True
    assert t("delete", name, conn=conn)["deleted"] is True


def _port_free(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def test_default_endpoint_is_local_10002():
    if not _port_free(10002):
        pytest.skip("something listens on 127.0.0.1:10002")
    for conn in (None, "UseDevelopmentStorage=true"):
        rc, out, err = run("table", ["list"], conn=conn)
        assert rc == 1 and out == ""
        assert "127.0.0.1:10002/devstoreaccount1" in err


def test_wrong_key_is_authentication_failed(nimbus):
    bad = table_conn(nimbus, key="AAAA" + DEV_KEY[4:])
    rc, out, err = run("table", ["list", "--json"], conn=bad)
    assert rc == 1 and out == ""
    assert err_of(err)["code"] == "AuthenticationFailed" and err_of(err)["status"] == 403
    rc, out, err = run("entity", ["get", "abc", "--pk", "p", "--rk", "r"], conn=bad)
    assert rc == 1 and err.startswith("error: AuthenticationFailed: ")


def test_unreachable_endpoint(nimbus):
    dead = table_conn(nimbus).replace(table_endpoint(nimbus),
                                      "http://127.0.0.1:1/%s" % DEV_ACCOUNT)
    rc, out, err = run("entity", ["query", "abc"], conn=dead)
    assert rc == 1 and out == ""
    assert "127.0.0.1:1" in err
    rc, out, err = run("table", ["list", "--json"], conn=dead)
    assert rc == 1 and err_of(err)["code"] == "ConnectionError"


def test_sas_connection_string(nimbus, e, t, table):
    # srt=sco: table-level operations (list) need the container resource type;
    # the SDK's ResourceTypes() has no container flag, from_string keeps it.
    name, tc = table
    sas = generate_account_sas(
        AzureNamedKeyCredential(DEV_ACCOUNT, DEV_KEY), ResourceTypes.from_string("sco"),
        AccountSasPermissions(read=True, write=True, delete=True, list=True, add=True,
                              create=True, update=True, process=True),
        expiry=dt.datetime.utcnow() + dt.timedelta(hours=1))
    conn = "TableEndpoint=%s;SharedAccessSignature=%s" % (table_endpoint(nimbus), sas)
    out = e("insert", name, "--pk", "p", "--rk", "r", "V=7:int64", conn=conn)
    assert ETAG.match(out["etag"])
    assert tc.get_entity("p", "r")["V"].value == 7
    assert e("get", name, "--pk", "p", "--rk", "r", conn=conn)["V"] == "7"
    assert [x["RowKey"] for x in e("query", name, conn=conn)["items"]] == ["r"]
    assert name in [x["name"] for x in t("list", conn=conn)]
    assert e("delete", name, "--pk", "p", "--rk", "r", conn=conn)["deleted"] is True

    # A read-only SAS cannot insert.
    ro = generate_account_sas(AzureNamedKeyCredential(DEV_ACCOUNT, DEV_KEY),
                              ResourceTypes.from_string("sco"),
                              AccountSasPermissions(read=True, list=True),
                              expiry=dt.datetime.utcnow() + dt.timedelta(hours=1))
    conn_ro = "TableEndpoint=%s;SharedAccessSignature=?%s" % (table_endpoint(nimbus), ro)
    err = err_of(e("insert", name, "--pk", "p", "--rk", "x", conn=conn_ro, rc=1))
    assert err["status"] == 403
