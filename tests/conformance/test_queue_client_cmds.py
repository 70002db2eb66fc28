"""End-to-end tests of the `nimbus queue ...` client commands (src/cli/) against
a fresh `nimbus start`: every subcommand, its --json output and exit status,
connection strings (flag, environment, SAS), and interoperability with the
official Python SDK in both directions (messages put by the CLI are read by
azure.storage.queue and vice versa).

Run with /usr/bin/python3 (python3-azure lives there):
    NIMBUS_BIN=build/nimbus /usr/bin/python3 -m pytest -q tests/conformance/test_queue_client_cmds.py
"""
import datetime as dt
import json
import os
import re
import subprocess
import uuid

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.queue import (AccountSasPermissions, QueueClient, QueueServiceClient,
                                 ResourceTypes, generate_account_sas)

from conftest import DEV_ACCOUNT, DEV_KEY, NIMBUS_BIN

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00$")
GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
SUBCOMMANDS = ["create", "delete", "list", "put", "get", "peek", "update", "delete-message",
               "clear", "metadata"]
TRICKY = "hello <world> & 'friends' \"q\" \u00e9 \u2603 ]]> %2B+ tab\tend"


def run(args, conn=None, env_conn=None, timeout=30):
    """Run `nimbus queue <args>`; returns (rc, stdout, stderr). The
    connection string goes in --connection-string (conn) or in the
    environment (env_conn); the caller's AZURE_STORAGE_* never leaks in."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AZURE_STORAGE_")}
    if env_conn is not None:
        env["AZURE_STORAGE_CONNECTION_STRING"] = env_conn
    cmd = [NIMBUS_BIN, "queue"] + list(args)
    if conn is not None:
        cmd += ["--connection-string", conn]
    p = subprocess.run(cmd, capture_output=True, env=env, timeout=timeout)
    return p.returncode, p.stdout.decode("utf-8"), p.stderr.decode("utf-8")


@pytest.fixture(scope="module")
def q(nimbus):
    """cli(*args, rc=0, json_out=True) -> parsed JSON stdout (or text)."""
    def cli(*args, rc=0, json_out=True, conn=None):
        argv = list(args) + (["--json"] if json_out else [])
        code, out, err = run(argv, conn=conn or nimbus.conn_str())
        assert code == rc, "nimbus queue %s: rc %d (want %d)\nstdout: %s\nstderr: %s" % (
            " ".join(args), code, rc, out, err)
        if rc != 0:
            return err
        return json.loads(out) if json_out else out
    return cli


@pytest.fixture(scope="module")
def svc(nimbus):
    return QueueServiceClient.from_connection_string(nimbus.conn_str())


def qname(tag):
    return "cli-%s-%s" % (tag, uuid.uuid4().hex[:8])


# -- help and usage ----------------------------------------------------------

def test_help_lists_every_subcommand():
    rc, out, _ = run(["--help"])
    assert rc == 0
    assert out.startswith("usage: nimbus queue")
    for sub in SUBCOMMANDS:
        assert re.search(r"^  %s\b" % re.escape(sub), out, re.M), sub


@pytest.mark.parametrize("sub", SUBCOMMANDS)
def test_subcommand_help(sub):
    for flag in ("--help", "-h"):
        rc, out, err = run([sub, flag])
        assert rc == 0, err
        assert out.startswith("usage: nimbus queue %s" % sub)
        assert "--connection-string" in out and "--json" in out


@pytest.mark.parametrize("args", [
    [], ["frobnicate"], ["create"], ["put", "q1"], ["update", "q1", "id"],
    ["get", "q1", "--num", "x"], ["get", "q1", "--num", "0"], ["put", "q1", "t", "--ttl", "1.5"],
    ["peek", "q1", "--visibility-timeout", "5"], ["create", "q1", "--metadata", "1bad=x"],
    ["create", "q1", "--metadata", "novalue"], ["create", "q1", "--metadata", "a=1", "A=2"],
    ["list", "extra"], ["list", "--page-size", "0"], ["delete", "q1", "--bogus"],
])
def test_usage_errors_exit_2(args):
    rc, out, err = run(args)
    assert rc == 2, (args, out, err)
    assert out == ""
    assert err.strip()


def test_bad_connection_string_is_a_usage_error():
    rc, _, err = run(["list"], conn="no-equals-sign-here")
    assert rc == 2 and "malformed" in err
    rc, _, err = run(["list"], env_conn="AccountName=a;AccountKey=***")
    assert rc == 2 and "AZURE_STORAGE_CONNECTION_STRING" in err


# -- queues --------------------------------------------------------------------

def test_create_delete(q, svc):
    name = qname("cd")
    out = q("create", name, "--metadata", "color=blue", "Size=10")
    assert out == {"name": name, "created": True}
    props = svc.get_queue_client(name).get_queue_properties()
    assert props.metadata == {"color": "blue", "Size": "10"}

    # Same metadata again: not an error, created=false (as az does).
    assert q("create", name, "--metadata", "color=blue", "Size=10") == {
        "name": name, "created": False}
    # Different metadata: 409 QueueAlreadyExists, still created=false ...
    assert q("create", name)["created"] is False
    # ... unless --fail-on-exist.
    err = q("create", name, "--fail-on-exist", rc=1)
    assert json.loads(err)["error"]["code"] == "QueueAlreadyExists"
    err = q("create", name, "--fail-on-exist", rc=1, json_out=False)
    assert "QueueAlreadyExists" in err

    assert q("delete", name) == {"name": name, "deleted": True}
    with pytest.raises(ResourceNotFoundError):
        svc.get_queue_client(name).get_queue_properties()
    assert q("delete", name) == {"name": name, "deleted": False}
    err = json.loads(q("delete", name, "--fail-not-exist", rc=1))
    assert err["error"]["code"] == "QueueNotFound" and err["error"]["status"] == 404
    assert "does not exist" in err["error"]["message"]


def test_create_human_output(q):
    name = qname("hu")
    assert q("create", name, json_out=False) == "created queue %s\n" % name
    assert q("create", name, json_out=False) == "queue %s already exists\n" % name
    assert q("delete", name, json_out=False) == "deleted queue %s\n" % name
    assert q("delete", name, json_out=False) == "queue %s does not exist\n" % name


def test_list_follows_every_page(q, svc):
    prefix = "cli-pg-%s-" % uuid.uuid4().hex[:6]
    names = sorted(prefix + str(i) for i in range(7))
    for i, n in enumerate(names):
        svc.create_queue(n, metadata={"idx": str(i)})
    try:
        out = q("list", "--prefix", prefix, "--page-size", "2")
        assert [e["name"] for e in out] == names
        assert all("metadata" not in e for e in out)
        out = q("list", "--prefix", prefix, "--include-metadata", "--page-size", "3")
        assert [e["metadata"] for e in out] == [{"idx": str(i)} for i in range(7)]
        # Without a page size the service's default page holds them all.
        assert [e["name"] for e in q("list", "--prefix", prefix)] == names
        text = q("list", "--prefix", prefix, json_out=False)
        assert text.splitlines() == names
        text = q("list", "--prefix", prefix, "--include-metadata", json_out=False)
        assert text.splitlines()[0] == "%s\tidx=0" % names[0]
        assert q("list", "--prefix", prefix + "nothing") == []
        assert any(e["name"] == names[0] for e in q("list"))
    finally:
        for n in names:
            svc.delete_queue(n)


def test_metadata_show_and_set(q, svc):
    name = qname("md")
    svc.create_queue(name, metadata={"a": "1"})
    qc = svc.get_queue_client(name)
    qc.send_message("one")
    qc.send_message("two")
    out = q("metadata", name)
    assert out == {"name": name, "metadata": {"a": "1"}, "approximateMessageCount": 2}

    out = q("metadata", name, "--set", "Owner=me", "env=dev test")
    assert out == {"name": name, "metadata": {"Owner": "me", "env": "dev test"}}
    assert qc.get_queue_properties().metadata == {"Owner": "me", "env": "dev test"}
    assert q("metadata", name)["metadata"] == {"Owner": "me", "env": "dev test"}

    # --set alone clears it.
    assert q("metadata", name, "--set")["metadata"] == {}
    assert qc.get_queue_properties().metadata == {}

    text = q("metadata", name, json_out=False)
    assert "approximateMessageCount: 2" in text

    err = json.loads(q("metadata", qname("missing"), rc=1))
    assert err["error"]["code"] == "QueueNotFound"


# -- messages ------------------------------------------------------------------

def test_message_lifecycle(q, svc):
    name = qname("msg")
    q("create", name)

    put = q("put", name, "first", "--ttl", "3600")
    assert GUID.match(put["id"])
    assert put["content"] == "first"
    for k in ("insertionTime", "expirationTime", "timeNextVisible"):
        assert ISO.match(put[k]), (k, put[k])
    assert put["popReceipt"]
    ins = dt.datetime.fromisoformat(put["insertionTime"])
    exp = dt.datetime.fromisoformat(put["expirationTime"])
    assert 3590 <= (exp - ins).total_seconds() <= 3610

    q("put", name, "second")

    peek = q("peek", name, "--num", "5")
    assert [m["content"] for m in peek] == ["first", "second"]
    assert all(m["dequeueCount"] == 0 for m in peek)
    assert all("popReceipt" not in m for m in peek)
    assert peek[0]["id"] == put["id"]

    got = q("get", name, "--visibility-timeout", "60")
    assert len(got) == 1
    m = got[0]
    assert m["id"] == put["id"] and m["content"] == "first" and m["dequeueCount"] == 1
    assert m["popReceipt"] and ISO.match(m["timeNextVisible"])
    # Hidden now: peek shows only the second one.
    assert [x["content"] for x in q("peek", name, "--num", "32")] == ["second"]

    # Update text and make it visible again at once.
    up = q("update", name, m["id"], m["popReceipt"], "--text", "first, edited")
    assert up["id"] == m["id"] and up["content"] == "first, edited"
    assert up["popReceipt"] and up["popReceipt"] != m["popReceipt"]
    assert ISO.match(up["timeNextVisible"])
    # (Azure does not promise an order; an updated message may go last.)
    assert sorted(x["content"] for x in q("peek", name, "--num", "32")) == [
        "first, edited", "second"]

    # The old receipt is stale now.
    err = json.loads(q("delete-message", name, m["id"], m["popReceipt"], rc=1))
    assert err["error"]["code"] == "PopReceiptMismatch"
    err = q("delete-message", name, m["id"], m["popReceipt"], rc=1, json_out=False)
    assert err.startswith("error: PopReceiptMismatch: ")

    # Update without --text keeps the text; it only hides the message.
    up2 = q("update", name, m["id"], up["popReceipt"], "--visibility-timeout", "120")
    assert "content" not in up2
    assert [x["content"] for x in q("peek", name, "--num", "32")] == ["second"]

    out = q("delete-message", name, m["id"], up2["popReceipt"])
    assert out == {"id": m["id"], "deleted": True}
    err = json.loads(q("delete-message", name, m["id"], up2["popReceipt"], rc=1))
    assert err["error"]["code"] == "MessageNotFound"

    # get several at once
    q("put", name, "third")
    got = q("get", name, "--num", "32")
    assert sorted(x["content"] for x in got) == ["second", "third"]
    assert q("get", name) == []

    assert q("clear", name) == {"name": name, "cleared": True}
    assert q("peek", name, "--num", "32") == []
    assert svc.get_queue_client(name).get_queue_properties().approximate_message_count == 0
    q("delete", name)


def test_put_visibility_and_never_expiring(q, svc):
    name = qname("vis")
    q("create", name)
    m = q("put", name, "later", "--visibility-timeout", "300", "--ttl", "-1")
    assert m["expirationTime"].startswith("9999-12-31T23:59:59")
    assert q("peek", name) == []
    # The put receipt works for delete before the message was ever received.
    q("delete-message", name, m["id"], m["popReceipt"])
    assert svc.get_queue_client(name).get_queue_properties().approximate_message_count == 0
    q("delete", name)


def test_service_errors(q):
    missing = qname("nope")
    for args in (["put", missing, "x"], ["get", missing], ["peek", missing],
                 ["clear", missing], ["metadata", missing, "--set", "a=b"]):
        err = json.loads(q(*args, rc=1))
        assert err["error"]["code"] == "QueueNotFound", args
        text = q(*args, rc=1, json_out=False)
        assert text.startswith("error: QueueNotFound: "), text
    name = qname("range")
    q("create", name)
    err = json.loads(q("get", name, "--num", "33", rc=1))
    assert err["error"]["status"] == 400
    assert err["error"]["code"] in ("OutOfRangeQueryParameterValue", "InvalidQueryParameterValue")
    err = json.loads(q("create", "Bad_Name", rc=1))
    assert err["error"]["code"] in ("InvalidResourceName", "OutOfRangeInput")
    q("delete", name)


def test_human_message_output(q):
    name = qname("hm")
    q("create", name)
    text = q("put", name, "plain text", json_out=False)
    lines = dict(l.split(": ", 1) for l in text.splitlines())
    assert lines["content"] == "plain text" and GUID.match(lines["id"])
    text = q("get", name, json_out=False)
    lines = dict(l.split(": ", 1) for l in text.splitlines())
    assert lines["dequeueCount"] == "1" and lines["popReceipt"]
    assert q("clear", name, json_out=False) == "cleared queue %s\n" % name
    assert q("peek", name, json_out=False) == ""
    q("delete", name)


# -- interoperability with the Python SDK ----------------------------------------

def test_cli_put_sdk_reads(q, svc):
    name = qname("c2s")
    q("create", name)
    put = q("put", name, TRICKY)
    assert put["content"] == TRICKY
    qc = svc.get_queue_client(name)
    msg = qc.receive_message(visibility_timeout=30)
    assert msg.id == put["id"]
    assert msg.content == TRICKY
    assert msg.dequeue_count == 1
    # A receipt the SDK got works in the CLI, and the reverse.
    up = q("update", name, msg.id, msg.pop_receipt, "--text", "via cli")
    qc.delete_message(msg.id, up["popReceipt"])
    assert list(qc.peek_messages(max_messages=32)) == []
    q("delete", name)


def test_sdk_put_cli_reads(q, svc):
    name = qname("s2c")
    qc = svc.create_queue(name)
    sent = qc.send_message(TRICKY, time_to_live=-1)
    peek = q("peek", name)
    assert len(peek) == 1
    assert peek[0]["id"] == sent.id and peek[0]["content"] == TRICKY
    assert peek[0]["expirationTime"].startswith("9999-12-31")
    got = q("get", name)[0]
    assert got["content"] == TRICKY and got["dequeueCount"] == 1
    # The SDK can finish a message the CLI received.
    qc.update_message(got["id"], got["popReceipt"], visibility_timeout=0, content="sdk edit")
    got2 = q("get", name)[0]
    assert got2["content"] == "sdk edit" and got2["dequeueCount"] == 2
    qc.delete_message(got2["id"], got2["popReceipt"])
    assert q("peek", name) == []
    qc.delete_queue()


# -- connection strings ----------------------------------------------------------

def test_connection_string_from_environment(nimbus):
    name = qname("env")
    rc, out, err = run(["create", name, "--json"], env_conn=nimbus.conn_str())
    assert rc == 0, err
    assert json.loads(out)["created"] is True
    # --connection-string wins over the environment.
    rc, out, err = run(["delete", name, "--json"], conn=nimbus.conn_str(),
                       env_conn="DefaultEndpointsProtocol=http;AccountName=x;AccountKey=AAAA;"
                                "QueueEndpoint=http://127.0.0.1:1/x")
    assert rc == 0, err
    assert json.loads(out)["deleted"] is True


def test_wrong_key_is_authentication_failed(nimbus):
    bad = nimbus.conn_str(key="AAAA" + DEV_KEY[4:])
    rc, out, err = run(["list", "--json"], conn=bad)
    assert rc == 1 and out == ""
    assert json.loads(err)["error"]["code"] == "AuthenticationFailed"


def test_unreachable_endpoint(nimbus):
    dead = "http://127.0.0.1:1/%s" % DEV_ACCOUNT
    rc, out, err = run(["list"], conn=nimbus.conn_str().replace(nimbus.queue_endpoint(), dead))
    assert rc == 1 and out == ""
    assert "127.0.0.1:1" in err


def test_sas_connection_string(q, nimbus, svc):
    name = qname("sas")
    svc.create_queue(name)
    sas = generate_account_sas(
        DEV_ACCOUNT, DEV_KEY, ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, delete=True, list=True, add=True,
                              create=True, update=True, process=True),
        expiry=dt.datetime.utcnow() + dt.timedelta(hours=1))
    conn = "QueueEndpoint=%s;SharedAccessSignature=%s" % (nimbus.queue_endpoint(), sas)
    put = q("put", name, "via sas", conn=conn)
    got = q("get", name, conn=conn)
    assert got[0]["id"] == put["id"] and got[0]["content"] == "via sas"
    q("delete-message", name, got[0]["id"], got[0]["popReceipt"], conn=conn)
    assert name in [e["name"] for e in q("list", "--prefix", name, conn=conn)]

    # A read-only SAS cannot put.
    ro = generate_account_sas(DEV_ACCOUNT, DEV_KEY,
                              ResourceTypes(service=True, container=True, object=True),
                              AccountSasPermissions(read=True, list=True),
                              expiry=dt.datetime.utcnow() + dt.timedelta(hours=1))
    conn_ro = "QueueEndpoint=%s;SharedAccessSignature=?%s" % (nimbus.queue_endpoint(), ro)
    err = json.loads(q("put", name, "nope", rc=1, conn=conn_ro))
    assert err["error"]["status"] == 403
    svc.delete_queue(name)
