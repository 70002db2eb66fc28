"""Queue service conformance, driven by the official Python SDK
(azure.storage.queue 12.6.0b1) and, for what the SDK hides, raw HTTP.
Spec: shared/protocols/storage-queue-table.md §0, §1, §2, §4, §5.

Visibility timeouts and TTLs are driven by the server's test clock
(`nimbus.advance`), never by sleeping.
"""
import base64
import datetime as dt
import email.utils
import os
import re
import select
import socket
import uuid
import xml.etree.ElementTree as ET

import pytest
from azure.core.exceptions import (ClientAuthenticationError, HttpResponseError,
                                   ResourceExistsError, ResourceNotFoundError)
from azure.storage.queue import (AccessPolicy, AccountSasPermissions,
                                 BinaryBase64DecodePolicy, BinaryBase64EncodePolicy,
                                 CorsRule, Metrics, QueueAnalyticsLogging, QueueClient,
                                 QueueSasPermissions, QueueServiceClient, ResourceTypes,
                                 RetentionPolicy, TextBase64DecodePolicy,
                                 TextBase64EncodePolicy, generate_account_sas,
                                 generate_queue_sas)

from conftest import DEV_ACCOUNT, DEV_KEY, conn_str, sharedkey_queue

# Two more accounts: one from the command line, one from Azurite's env format
# (with two keys). Keys are random per run so nothing can be hard-coded.
ACCT2, KEY2 = "acct2", base64.b64encode(os.urandom(64)).decode()
ACCT3, KEY3A, KEY3B = ("acct3", base64.b64encode(os.urandom(64)).decode(),
                       base64.b64encode(os.urandom(32)).decode())
NIMBUS_ARGS = ["--account", "%s:%s" % (ACCT2, KEY2)]
NIMBUS_ENV = {"AZURITE_ACCOUNTS": "%s:%s:%s" % (ACCT3, KEY3A, KEY3B)}

# Fail fast: the SDK retries 5xx/408 with long backoffs by default.
SDK_KW = dict(retry_total=0, connection_timeout=5, read_timeout=30)

WEEK = 7 * 24 * 3600
RFC1123 = re.compile(r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d\d (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|"
                     r"Sep|Oct|Nov|Dec) \d{4} \d\d:\d\d:\d\d GMT$")


def uname(prefix="q"):
    return prefix + uuid.uuid4().hex[:16]


def sec(a, b):
    """Whole seconds from datetime b to datetime a."""
    return (a - b).total_seconds()


def close_to(when, expected, slack=5):
    return abs((when - expected).total_seconds()) <= slack


@pytest.fixture(scope="module")
def qsc(nimbus):
    return QueueServiceClient.from_connection_string(nimbus.conn_str(), **SDK_KW)


@pytest.fixture
def queue(nimbus):
    name = uname()
    qc = QueueClient.from_connection_string(nimbus.conn_str(), name, **SDK_KW)
    qc.create_queue()
    yield qc
    try:
        qc.delete_queue()
    except Exception:
        pass


def texts(msgs):
    return [m.content for m in msgs]


# ---------------------------------------------------------------- start-up


def test_banner_prints_working_connection_string(nimbus):
    out = nimbus.stdout_text()
    assert "QueueEndpoint=" in out, out
    m = re.search(r"\S*QueueEndpoint=\S+", out)
    cs = m.group(0).strip("'\"")
    parts = dict(p.split("=", 1) for p in cs.split(";") if "=" in p)
    assert parts["QueueEndpoint"].rstrip("/") == nimbus.queue_endpoint()
    assert parts.get("AccountName") == DEV_ACCOUNT
    assert parts.get("AccountKey") == DEV_KEY
    name = uname("banner")
    svc = QueueServiceClient.from_connection_string(cs, **SDK_KW)
    svc.create_queue(name)
    assert name in [q.name for q in svc.list_queues(name_starts_with=name)]
    svc.delete_queue(name)


# ---------------------------------------------------------------- service level


def test_list_queues_name_starts_with(qsc):
    p = uname("ls")
    mine = sorted([p + "c", p + "a", p + "b-1"])
    for n in mine:
        qsc.create_queue(n)
    other = uname("lt")
    qsc.create_queue(other)
    try:
        got = [q.name for q in qsc.list_queues(name_starts_with=p)]
        assert got == sorted(mine)   # byte order
        assert other not in got
        everything = [q.name for q in qsc.list_queues()]
        assert set(mine) | {other} <= set(everything)
        assert everything == sorted(everything)
    finally:
        for n in mine + [other]:
            qsc.delete_queue(n)


def test_list_queues_paging_and_continuation(qsc):
    p = uname("pg")
    names = ["%s-%02d" % (p, i) for i in range(5)]
    for n in reversed(names):
        qsc.create_queue(n)
    try:
        pages = [[q.name for q in page]
                 for page in qsc.list_queues(name_starts_with=p, results_per_page=2).by_page()]
        assert pages == [names[0:2], names[2:4], names[4:5]]

        # Stop after one page, then resume from the continuation token.
        it = qsc.list_queues(name_starts_with=p, results_per_page=2).by_page()
        first = [q.name for q in next(it)]
        token = it.continuation_token
        assert first == names[0:2]
        assert token
        resumed = qsc.list_queues(name_starts_with=p, results_per_page=3).by_page(
            continuation_token=token)
        rest = [[q.name for q in page] for page in resumed]
        assert rest == [names[2:5]]
        assert resumed.continuation_token is None
    finally:
        for n in names:
            qsc.delete_queue(n)


def test_list_queues_include_metadata(qsc):
    p = uname("md")
    qsc.create_queue(p + "a", metadata={"Color": "blue", "size": "L"})
    qsc.create_queue(p + "b")
    try:
        with_md = {q.name: q.metadata for q in qsc.list_queues(name_starts_with=p,
                                                                 include_metadata=True)}
        assert with_md[p + "a"] == {"Color": "blue", "size": "L"}
        assert not with_md[p + "b"]
        without = {q.name: q.metadata for q in qsc.list_queues(name_starts_with=p)}
        assert set(without) == {p + "a", p + "b"}
        assert without[p + "a"] is None
    finally:
        qsc.delete_queue(p + "a")
        qsc.delete_queue(p + "b")


def test_list_queues_raw_xml_shape(nimbus, qsc):
    p = uname("raw")
    qsc.create_queue(p + "1")
    qsc.create_queue(p + "2")
    try:
        status, h, body = nimbus.queue_request(
            "GET", "/%s/?comp=list&prefix=%s&maxresults=1" % (DEV_ACCOUNT, p))
        assert status == 200, body
        root = ET.fromstring(body)
        assert root.tag == "EnumerationResults"
        assert root.get("ServiceEndpoint", "").rstrip("/") == nimbus.queue_endpoint()
        assert root.findtext("Prefix") == p
        assert root.findtext("MaxResults") == "1"
        assert [e.text for e in root.iter("Name")] == [p + "1"]
        assert root.findtext("NextMarker")
    finally:
        qsc.delete_queue(p + "1")
        qsc.delete_queue(p + "2")


def _raw_properties(nimbus):
    status, _, body = nimbus.queue_request(
        "GET", "/%s/?restype=service&comp=properties" % DEV_ACCOUNT)
    assert status == 200, body
    root = ET.fromstring(body)
    assert root.tag == "StorageServiceProperties"
    return root


def test_service_properties_all_sections(nimbus, qsc):
    root = _raw_properties(nimbus)
    for section in ("Logging", "HourMetrics", "MinuteMetrics", "Cors"):
        assert root.find(section) is not None, section
    props = qsc.get_service_properties()
    assert set(props) == {"analytics_logging", "hour_metrics", "minute_metrics", "cors"}
    assert props["analytics_logging"].version == "1.0"
    assert isinstance(props["cors"], list)


def test_service_properties_partial_sets_merge(nimbus, qsc):
    logging = QueueAnalyticsLogging(read=True, write=False, delete=True,
                                    retention_policy=RetentionPolicy(enabled=True, days=5))
    qsc.set_service_properties(analytics_logging=logging)
    p1 = qsc.get_service_properties()
    lg = p1["analytics_logging"]
    assert (lg.read, lg.write, lg.delete) == (True, False, True)
    assert (lg.retention_policy.enabled, lg.retention_policy.days) == (True, 5)

    hour = Metrics(enabled=True, include_apis=False,
                   retention_policy=RetentionPolicy(enabled=True, days=3))
    qsc.set_service_properties(hour_metrics=hour)
    p2 = qsc.get_service_properties()
    assert p2["hour_metrics"].enabled is True
    assert p2["hour_metrics"].include_apis is False
    assert p2["hour_metrics"].retention_policy.days == 3
    # The logging set before is kept: a SET replaces only what it carries.
    lg = p2["analytics_logging"]
    assert (lg.read, lg.write, lg.delete, lg.retention_policy.days) == (True, False, True, 5)

    minute = Metrics(enabled=True, include_apis=True,
                     retention_policy=RetentionPolicy(enabled=True, days=2))
    qsc.set_service_properties(minute_metrics=minute)
    p3 = qsc.get_service_properties()
    assert p3["minute_metrics"].enabled is True
    assert p3["minute_metrics"].include_apis is True
    assert p3["minute_metrics"].retention_policy.days == 2
    assert p3["hour_metrics"].retention_policy.days == 3
    assert p3["analytics_logging"].retention_policy.days == 5

    # Every section is still on the wire after partial sets.
    root = _raw_properties(nimbus)
    for section in ("Logging", "HourMetrics", "MinuteMetrics", "Cors"):
        assert root.find(section) is not None, section
    assert root.findtext("Logging/RetentionPolicy/Days") == "5"


def test_service_properties_cors_round_trip(qsc):
    rules = [
        CorsRule(["http://a.example", "http://b.example"], ["GET", "PUT"],
                 allowed_headers=["x-ms-meta-*", "x-ms-client-request-id"],
                 exposed_headers=["x-ms-meta-*"], max_age_in_seconds=200),
        CorsRule(["*"], ["DELETE"], max_age_in_seconds=7),
    ]
    before = qsc.get_service_properties()["analytics_logging"]
    qsc.set_service_properties(cors=rules)
    got = qsc.get_service_properties()
    cors = got["cors"]
    assert len(cors) == 2
    assert cors[0].allowed_origins == "http://a.example,http://b.example"
    assert cors[0].allowed_methods == "GET,PUT"
    assert cors[0].allowed_headers == "x-ms-meta-*,x-ms-client-request-id"
    assert cors[0].exposed_headers == "x-ms-meta-*"
    assert cors[0].max_age_in_seconds == 200
    assert cors[1].allowed_origins == "*"
    assert cors[1].allowed_methods == "DELETE"
    assert cors[1].max_age_in_seconds == 7
    # A CORS-only set leaves logging alone.
    after = got["analytics_logging"]
    assert (after.read, after.write, after.delete) == (before.read, before.write, before.delete)
    # Too many rules (Azure allows 5) is rejected by the server.
    with pytest.raises(HttpResponseError) as ei:
        qsc.set_service_properties(cors=[CorsRule(["http://x%d.example" % i], ["GET"])
                                         for i in range(6)])
    assert ei.value.status_code == 400
    assert len(qsc.get_service_properties()["cors"]) == 2


def test_service_stats_via_secondary(nimbus):
    svc = QueueServiceClient(
        account_url=nimbus.queue_endpoint(),
        credential={"account_name": DEV_ACCOUNT, "account_key": DEV_KEY},
        secondary_hostname="127.0.0.1:%d/%s-secondary" % (nimbus.queue_port, DEV_ACCOUNT),
        **SDK_KW)
    stats = svc.get_service_stats()
    assert stats["geo_replication"]["status"] == "live"
    assert isinstance(stats["geo_replication"]["last_sync_time"], dt.datetime)


# ---------------------------------------------------------------- queues


def test_create_queue_with_metadata_and_properties(nimbus):
    name = uname()
    qc = QueueClient.from_connection_string(nimbus.conn_str(), name, **SDK_KW)
    qc.create_queue(metadata={"Owner": "Alice", "lower": "x y z"})
    props = qc.get_queue_properties()
    assert props.name == name
    assert props.metadata == {"Owner": "Alice", "lower": "x y z"}
    assert props.approximate_message_count == 0
    qc.delete_queue()


def test_create_existing_queue_identical_metadata(queue):
    # 204 on the wire; the SDK raises ResourceExistsError for it (spec §5.4).
    with pytest.raises(ResourceExistsError):
        queue.create_queue()
    queue.set_queue_metadata({"k": "v"})
    with pytest.raises(ResourceExistsError):
        queue.create_queue(metadata={"k": "v"})


def test_create_existing_queue_different_metadata(queue):
    with pytest.raises(ResourceExistsError) as ei:
        queue.create_queue(metadata={"other": "1"})
    assert ei.value.error_code == "QueueAlreadyExists"
    assert ei.value.status_code == 409
    # The failed create changed nothing.
    assert queue.get_queue_properties().metadata == {}


def test_delete_queue_and_messages(nimbus, queue):
    queue.send_message("m1")
    queue.delete_queue()
    with pytest.raises(ResourceNotFoundError) as ei:
        queue.get_queue_properties()
    assert ei.value.error_code == "QueueNotFound"
    with pytest.raises(ResourceNotFoundError) as ei:
        queue.delete_queue()
    assert ei.value.error_code == "QueueNotFound"
    # Re-created under the same name, it starts empty.
    queue.create_queue()
    assert queue.get_queue_properties().approximate_message_count == 0
    assert queue.peek_messages() == []


def test_set_queue_metadata_replaces_all(queue):
    queue.set_queue_metadata({"First": "1", "second": "2"})
    assert queue.get_queue_properties().metadata == {"First": "1", "second": "2"}
    queue.set_queue_metadata({"Third": "3"})
    assert queue.get_queue_properties().metadata == {"Third": "3"}
    queue.set_queue_metadata({})
    assert queue.get_queue_properties().metadata == {}


def test_approximate_message_count(nimbus, queue):
    for i in range(3):
        queue.send_message("c%d" % i)
    assert queue.get_queue_properties().approximate_message_count == 3
    m = queue.receive_message()            # invisible messages still count
    assert queue.get_queue_properties().approximate_message_count == 3
    queue.delete_message(m)
    assert queue.get_queue_properties().approximate_message_count == 2


ISO7 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z$")


def _iso(s):
    return dt.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=dt.timezone.utc)


def test_queue_access_policy_round_trip(queue):
    assert queue.get_queue_access_policy() == {}
    start = dt.datetime(2020, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    expiry = dt.datetime(2031, 6, 7, 8, 9, 10, tzinfo=dt.timezone.utc)
    queue.set_queue_access_policy({
        "readproc": AccessPolicy(permission=QueueSasPermissions(read=True, process=True),
                                 start=start, expiry=expiry),
        "all": AccessPolicy(permission=QueueSasPermissions(read=True, add=True, update=True,
                                                           process=True),
                            expiry=expiry),
    })
    got = queue.get_queue_access_policy()
    assert set(got) == {"readproc", "all"}
    assert got["readproc"].permission == "rp"
    assert got["all"].permission == "raup"
    assert ISO7.match(got["readproc"].start), got["readproc"].start
    assert ISO7.match(got["readproc"].expiry), got["readproc"].expiry
    assert _iso(got["readproc"].start) == start
    assert _iso(got["readproc"].expiry) == expiry
    assert _iso(got["all"].expiry) == expiry
    assert not got["all"].start
    queue.set_queue_access_policy({})
    assert queue.get_queue_access_policy() == {}


def test_queue_access_policy_at_most_five(queue):
    exp = dt.datetime(2031, 1, 1, tzinfo=dt.timezone.utc)
    six = {"p%d" % i: AccessPolicy(permission="r", expiry=exp) for i in range(6)}
    with pytest.raises(HttpResponseError) as ei:
        queue.set_queue_access_policy(six)
    assert ei.value.status_code == 400
    assert queue.get_queue_access_policy() == {}


# ---------------------------------------------------------------- messages


def test_send_message_defaults(nimbus, queue):
    m = queue.send_message("hello")
    uuid.UUID(m.id)
    assert m.pop_receipt
    assert m.content == "hello"
    assert close_to(m.inserted_on, nimbus.server_now())
    assert sec(m.expires_on, m.inserted_on) == WEEK          # default ttl: 7 days
    assert m.next_visible_on == m.inserted_on                 # default visibility 0
    [p] = queue.peek_messages()
    assert (p.id, p.content, p.dequeue_count) == (m.id, "hello", 0)
    assert p.inserted_on == m.inserted_on and p.expires_on == m.expires_on


def test_send_with_visibility_and_ttl(nimbus, queue):
    m = queue.send_message("later", visibility_timeout=60, time_to_live=120)
    assert sec(m.expires_on, m.inserted_on) == 120
    assert sec(m.next_visible_on, m.inserted_on) == 60
    assert queue.peek_messages() == []
    assert queue.receive_message() is None
    assert queue.get_queue_properties().approximate_message_count == 1
    nimbus.advance(61)
    [p] = queue.peek_messages()
    assert p.id == m.id and p.content == "later"


def test_send_ttl_infinite(nimbus, queue):
    m = queue.send_message("forever", time_to_live=-1)
    assert m.expires_on == dt.datetime(9999, 12, 31, 23, 59, 59, tzinfo=dt.timezone.utc)
    [p] = queue.peek_messages()
    assert p.expires_on.year == 9999


def test_ttl_expiry(nimbus, queue):
    short = queue.send_message("short", time_to_live=30)
    queue.send_message("long", time_to_live=300)
    assert sec(short.expires_on, short.inserted_on) == 30
    nimbus.advance(31)
    assert texts(queue.peek_messages(max_messages=32)) == ["long"]
    assert queue.get_queue_properties().approximate_message_count == 1
    got = queue.receive_message()
    assert got.content == "long"
    with pytest.raises(ResourceNotFoundError) as ei:
        queue.delete_message(short)
    assert ei.value.error_code == "MessageNotFound"


def test_expired_while_invisible(nimbus, queue):
    queue.send_message("gone", time_to_live=20)
    m = queue.receive_message(visibility_timeout=60)
    assert m.content == "gone"
    nimbus.advance(61)
    assert queue.receive_message() is None
    assert queue.get_queue_properties().approximate_message_count == 0


@pytest.mark.parametrize("kw,code", [
    (dict(time_to_live=0), "InvalidQueryParameterValue"),
    (dict(time_to_live=-2), "InvalidQueryParameterValue"),
    (dict(visibility_timeout=-1), None),
    (dict(visibility_timeout=WEEK + 1), None),
    (dict(visibility_timeout=60, time_to_live=30), None),
])
def test_send_bad_parameters(queue, kw, code):
    with pytest.raises(HttpResponseError) as ei:
        queue.send_message("x", **kw)
    assert ei.value.status_code == 400
    if code:
        assert ei.value.error_code == code
    assert queue.get_queue_properties().approximate_message_count == 0


def test_receive_message_fields(nimbus, queue):
    a = queue.send_message("a")
    queue.send_message("b")
    m = queue.receive_message()
    assert (m.id, m.content, m.dequeue_count) == (a.id, "a", 1)
    assert m.pop_receipt and m.pop_receipt != a.pop_receipt
    assert m.inserted_on == a.inserted_on and m.expires_on == a.expires_on
    # Default visibility timeout of a get is 30 s.
    assert close_to(m.next_visible_on, nimbus.server_now() + dt.timedelta(seconds=30))
    assert texts(queue.peek_messages(max_messages=32)) == ["b"]


def test_receive_visibility_timeout_and_reappear(nimbus, queue):
    queue.send_message("lease")
    first = queue.receive_message(visibility_timeout=10)
    assert close_to(first.next_visible_on, nimbus.server_now() + dt.timedelta(seconds=10))
    assert queue.receive_message() is None
    nimbus.advance(11)
    second = queue.receive_message(visibility_timeout=10)
    assert second.id == first.id
    assert second.dequeue_count == 2
    assert second.pop_receipt != first.pop_receipt
    with pytest.raises(HttpResponseError) as ei:
        queue.delete_message(first)            # stale receipt
    assert ei.value.status_code == 400
    assert ei.value.error_code == "PopReceiptMismatch"
    queue.delete_message(second)
    assert queue.get_queue_properties().approximate_message_count == 0


def test_dequeue_count_exact(nimbus, queue):
    queue.send_message("count")
    for expected in (1, 2, 3):
        m = queue.receive_message(visibility_timeout=5)
        assert m.dequeue_count == expected
        nimbus.advance(6)
    [p] = queue.peek_messages()
    assert p.dequeue_count == 3
    [p] = queue.peek_messages()                 # peek changes nothing
    assert p.dequeue_count == 3
    assert p.pop_receipt is None and p.next_visible_on is None


def test_receive_messages_pages(queue):
    sent = ["p%d" % i for i in range(7)]
    for t in sent:
        queue.send_message(t)
    pages = [texts(p) for p in
             queue.receive_messages(messages_per_page=3, visibility_timeout=60).by_page()]
    assert pages == [sent[0:3], sent[3:6], sent[6:7]]
    assert queue.receive_message() is None
    assert queue.get_queue_properties().approximate_message_count == 7


def test_receive_messages_max_messages(queue):
    sent = ["x%d" % i for i in range(5)]
    for t in sent:
        queue.send_message(t)
    pages = [texts(p) for p in
             queue.receive_messages(messages_per_page=2, max_messages=3,
                                    visibility_timeout=60).by_page()]
    assert pages == [sent[0:2], sent[2:3]]
    rest = list(queue.receive_messages(max_messages=10, visibility_timeout=60))
    assert texts(rest) == sent[3:5]
    assert all(m.dequeue_count == 1 for m in rest)


def test_peek_messages_max(queue):
    sent = ["k%d" % i for i in range(5)]
    for t in sent:
        queue.send_message(t)
    assert texts(queue.peek_messages()) == sent[:1]
    assert texts(queue.peek_messages(max_messages=3)) == sent[:3]
    peeked = queue.peek_messages(max_messages=32)
    assert texts(peeked) == sent
    assert all(p.dequeue_count == 0 and p.pop_receipt is None for p in peeked)


def test_peek_and_receive_32_of_40(queue):
    for i in range(40):
        queue.send_message("n%02d" % i)
    assert len(queue.peek_messages(max_messages=32)) == 32
    page = texts(next(
        queue.receive_messages(messages_per_page=32, visibility_timeout=60).by_page()))
    assert page == ["n%02d" % i for i in range(32)]


def test_update_message_content_and_visibility(nimbus, queue):
    queue.send_message("old")
    m = queue.receive_message(visibility_timeout=60)
    u = queue.update_message(m, content="new", visibility_timeout=0)
    assert u.pop_receipt and u.pop_receipt != m.pop_receipt
    assert close_to(u.next_visible_on, nimbus.server_now())
    [p] = queue.peek_messages()
    assert (p.id, p.content, p.dequeue_count) == (m.id, "new", 1)
    u2 = queue.update_message(u, visibility_timeout=30)
    assert u2.pop_receipt not in (u.pop_receipt, m.pop_receipt)
    assert close_to(u2.next_visible_on, nimbus.server_now() + dt.timedelta(seconds=30))
    assert queue.peek_messages() == []
    nimbus.advance(31)
    [p] = queue.peek_messages()
    assert p.content == "new"


def test_update_message_without_content_keeps_text(nimbus, queue):
    queue.send_message("keep me")
    m = queue.receive_message(visibility_timeout=60)
    # Passing the id (not the message object) and no content sends no body.
    u = queue.update_message(m.id, pop_receipt=m.pop_receipt, visibility_timeout=0)
    assert u.content is None
    assert u.pop_receipt != m.pop_receipt
    [p] = queue.peek_messages()
    assert p.content == "keep me"


def test_update_with_stale_receipt(queue):
    queue.send_message("s")
    m = queue.receive_message(visibility_timeout=60)
    queue.update_message(m.id, pop_receipt=m.pop_receipt, visibility_timeout=60)
    with pytest.raises(HttpResponseError) as ei:
        queue.update_message(m.id, pop_receipt=m.pop_receipt, visibility_timeout=0)
    assert ei.value.error_code == "PopReceiptMismatch"
    with pytest.raises(HttpResponseError) as ei:
        queue.delete_message(m.id, m.pop_receipt)
    assert ei.value.error_code == "PopReceiptMismatch"


def test_put_receipt_deletes_and_updates_unreceived(queue):
    a = queue.send_message("a")
    b = queue.send_message("b")
    queue.delete_message(a)
    u = queue.update_message(b, content="b2", visibility_timeout=0)
    assert texts(queue.peek_messages(max_messages=32)) == ["b2"]
    queue.delete_message(u)
    assert queue.peek_messages() == []


def test_message_not_found(queue):
    with pytest.raises(ResourceNotFoundError) as ei:
        queue.delete_message(str(uuid.uuid4()), "AAAAAAAAAAA=")
    assert ei.value.error_code == "MessageNotFound"
    with pytest.raises(ResourceNotFoundError) as ei:
        queue.update_message(str(uuid.uuid4()), pop_receipt="AAAAAAAAAAA=",
                             visibility_timeout=0)
    assert ei.value.error_code == "MessageNotFound"


def test_clear_messages(nimbus, queue):
    for i in range(3):
        queue.send_message("c%d" % i)
    queue.send_message("hidden", visibility_timeout=30)
    queue.receive_message(visibility_timeout=30)
    queue.clear_messages()
    assert queue.get_queue_properties().approximate_message_count == 0
    assert queue.peek_messages() == []
    nimbus.advance(31)
    assert queue.receive_message() is None
    queue.send_message("after")
    assert texts(queue.peek_messages(max_messages=32)) == ["after"]


SPECIAL = ("<tag attr='v' other=\"w\">&amp; & &lt; ]]> &#65; \t tab</tag> "
           "caf\u00e9 \u2603 \U0001d11e \u4e2d\u6587 line1\nline2")


def test_message_text_special_characters(queue):
    queue.send_message(SPECIAL)
    [p] = queue.peek_messages()
    assert p.content == SPECIAL
    m = queue.receive_message()
    assert m.content == SPECIAL
    queue.update_message(m, content=SPECIAL + "!", visibility_timeout=0)
    assert queue.receive_message().content == SPECIAL + "!"


def test_message_size_limit(queue):
    ok = "x" * 65536
    queue.send_message(ok)
    with pytest.raises(HttpResponseError) as ei:
        queue.send_message("x" * 65537)
    assert ei.value.status_code == 400
    assert ei.value.error_code == "MessageTooLarge"
    # The limit is on the decoded UTF-8 text, not on the escaped XML body.
    queue.send_message("\u00e9" * 32768)                 # 65536 bytes
    with pytest.raises(HttpResponseError) as ei:
        queue.send_message("\u00e9" * 32768 + "y")       # 65537 bytes
    assert ei.value.error_code == "MessageTooLarge"
    queue.send_message("<" * 65536)                      # 262144 bytes escaped
    got = texts(queue.peek_messages(max_messages=32))
    assert got == [ok, "\u00e9" * 32768, "<" * 65536]
    # Updates obey the same limit.
    m = queue.receive_message()
    with pytest.raises(HttpResponseError) as ei:
        queue.update_message(m, content="z" * 65537, visibility_timeout=0)
    assert ei.value.error_code == "MessageTooLarge"


def test_base64_encode_policies_round_trip(nimbus, queue):
    name = queue.queue_name
    tq = QueueClient.from_connection_string(
        nimbus.conn_str(), name, message_encode_policy=TextBase64EncodePolicy(),
        message_decode_policy=TextBase64DecodePolicy(), **SDK_KW)
    bq = QueueClient.from_connection_string(
        nimbus.conn_str(), name, message_encode_policy=BinaryBase64EncodePolicy(),
        message_decode_policy=BinaryBase64DecodePolicy(), **SDK_KW)
    tq.send_message("base64 text \u00e9 <&>")
    bq.send_message(b"\x00\xff\x10binary")
    # A plain client sees the base64 text: the server never decodes it.
    raw = texts(queue.peek_messages(max_messages=32))
    assert raw == [base64.b64encode("base64 text \u00e9 <&>".encode()).decode(),
                   base64.b64encode(b"\x00\xff\x10binary").decode()]
    assert tq.receive_message().content == "base64 text \u00e9 <&>"
    assert bq.receive_message().content == b"\x00\xff\x10binary"


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize("name,code", [
    ("Bad_Name", "InvalidResourceName"),
    ("UPPERCASE", "InvalidResourceName"),
    ("a--b", "InvalidResourceName"),
    ("-abc", "InvalidResourceName"),
    ("abc-", "InvalidResourceName"),
    ("ab", "OutOfRangeInput"),
    ("a" * 64, "OutOfRangeInput"),
])
def test_bad_queue_names(nimbus, name, code):
    qc = QueueClient.from_connection_string(nimbus.conn_str(), name, **SDK_KW)
    with pytest.raises(HttpResponseError) as ei:
        qc.create_queue()
    assert ei.value.status_code == 400
    assert ei.value.error_code == code


def test_good_queue_name_edges(nimbus):
    for name in ("a1b", "a" * 63, "0-9-z"):
        qc = QueueClient.from_connection_string(nimbus.conn_str(), name, **SDK_KW)
        qc.create_queue()
        qc.delete_queue()


@pytest.mark.parametrize("op", [
    "get_queue_properties", "set_queue_metadata", "get_queue_access_policy", "send_message",
    "receive_message", "peek_messages", "clear_messages", "delete_queue"])
def test_missing_queue(nimbus, op):
    qc = QueueClient.from_connection_string(nimbus.conn_str(), uname("missing"), **SDK_KW)
    args = {"send_message": ("x",), "set_queue_metadata": ({"a": "b"},)}.get(op, ())
    with pytest.raises(ResourceNotFoundError) as ei:
        getattr(qc, op)(*args)
    assert ei.value.status_code == 404
    assert ei.value.error_code == "QueueNotFound"


@pytest.mark.parametrize("n,code", [(0, "OutOfRangeQueryParameterValue"),
                                    (33, "OutOfRangeQueryParameterValue")])
def test_numofmessages_out_of_range(nimbus, queue, n, code):
    queue.send_message("x")
    with pytest.raises(HttpResponseError) as ei:
        next(iter(queue.receive_messages(messages_per_page=n)))
    assert ei.value.status_code == 400
    assert ei.value.error_code == code
    # peek: the SDK checks 1..32 itself, so go around it.
    status, h, body = nimbus.queue_request(
        "GET", "/%s/%s/messages?peekonly=true&numofmessages=%d"
        % (DEV_ACCOUNT, queue.queue_name, n))
    assert status == 400, body
    assert h.get("x-ms-error-code") == code
    status, h, body = nimbus.queue_request(
        "GET", "/%s/%s/messages?numofmessages=abc" % (DEV_ACCOUNT, queue.queue_name))
    assert status == 400 and h.get("x-ms-error-code") == "InvalidQueryParameterValue", body
    assert queue.peek_messages()[0].dequeue_count == 0


@pytest.mark.parametrize("vt", [0, WEEK + 1])
def test_receive_visibility_out_of_range(queue, vt):
    queue.send_message("x")
    with pytest.raises(HttpResponseError) as ei:
        queue.receive_message(visibility_timeout=vt)
    assert ei.value.status_code == 400


# ---------------------------------------------------------------- auth / SAS


def _sas_queue(nimbus, name, sas):
    return QueueClient(account_url=nimbus.queue_endpoint(), queue_name=name, credential=sas,
                       **SDK_KW)


def forbidden(call, code=None):
    """The call must fail with 403 (and the given x-ms-error-code). The SDK
    raises ClientAuthenticationError only for AuthenticationFailed; other 403
    codes (AuthorizationPermissionMismatch, ...) arrive as HttpResponseError."""
    with pytest.raises(HttpResponseError) as ei:
        call()
    assert ei.value.status_code == 403, ei.value
    if code:
        assert ei.value.error_code == code, ei.value
    if ei.value.error_code == "AuthenticationFailed":
        assert isinstance(ei.value, ClientAuthenticationError)
    return ei.value


def _expiry(nimbus, seconds=3600):
    return nimbus.server_now() + dt.timedelta(seconds=seconds)


def test_bad_account_key(nimbus, queue):
    wrong = base64.b64encode(os.urandom(64)).decode()
    bad = QueueServiceClient.from_connection_string(
        conn_str(nimbus.queue_endpoint(), DEV_ACCOUNT, wrong), **SDK_KW)
    with pytest.raises(ClientAuthenticationError) as ei:
        list(bad.list_queues())
    assert ei.value.error_code == "AuthenticationFailed"
    with pytest.raises(ClientAuthenticationError):
        bad.get_queue_client(queue.queue_name).send_message("nope")
    assert queue.get_queue_properties().approximate_message_count == 0


def test_unknown_account(nimbus):
    bad = QueueServiceClient.from_connection_string(
        conn_str("%s/%s" % (nimbus.queue_url, "nosuchacct"), "nosuchacct", DEV_KEY), **SDK_KW)
    with pytest.raises(ClientAuthenticationError):
        list(bad.list_queues())


def test_account_sas_allows(nimbus):
    sas = generate_account_sas(
        DEV_ACCOUNT, DEV_KEY, ResourceTypes(service=True, container=True, object=True),
        AccountSasPermissions(read=True, write=True, delete=True, list=True, add=True,
                              create=True, update=True, process=True),
        expiry=_expiry(nimbus))
    assert "ss=q" in sas and "srt=sco" in sas
    svc = QueueServiceClient(account_url=nimbus.queue_endpoint(), credential=sas, **SDK_KW)
    name = uname("sas")
    svc.create_queue(name)
    assert [q.name for q in svc.list_queues(name_starts_with=name)] == [name]
    qc = svc.get_queue_client(name)
    qc.send_message("via sas")
    m = qc.receive_message()
    assert m.content == "via sas"
    qc.update_message(m, content="upd", visibility_timeout=0)
    m = qc.receive_message()
    qc.delete_message(m)
    qc.send_message("to clear")
    qc.clear_messages()
    svc.delete_queue(name)


def test_account_sas_denies(nimbus, queue):
    ro = generate_account_sas(DEV_ACCOUNT, DEV_KEY,
                              ResourceTypes(service=True, container=True, object=True),
                              AccountSasPermissions(read=True, list=True),
                              expiry=_expiry(nimbus))
    qc = _sas_queue(nimbus, queue.queue_name, ro)
    forbidden(lambda: qc.send_message("no add"), "AuthorizationPermissionMismatch")
    svc = QueueServiceClient(account_url=nimbus.queue_endpoint(), credential=ro, **SDK_KW)
    assert queue.queue_name in [q.name for q in svc.list_queues(name_starts_with="q")]
    forbidden(lambda: svc.create_queue(uname("nocreate")))

    # Right permissions, wrong resource type: service only cannot touch messages.
    svc_only = generate_account_sas(DEV_ACCOUNT, DEV_KEY, ResourceTypes(service=True),
                                    AccountSasPermissions(read=True, add=True, process=True,
                                                          list=True),
                                    expiry=_expiry(nimbus))
    forbidden(lambda: _sas_queue(nimbus, queue.queue_name, svc_only).send_message("x"),
              "AuthorizationResourceTypeMismatch")
    assert queue.get_queue_properties().approximate_message_count == 0


def test_queue_sas_permissions(nimbus, queue):
    name = queue.queue_name
    add_only = generate_queue_sas(DEV_ACCOUNT, name, DEV_KEY,
                                  permission=QueueSasPermissions(add=True),
                                  expiry=_expiry(nimbus))
    qa = _sas_queue(nimbus, name, add_only)
    qa.send_message("added")
    forbidden(lambda: qa.receive_message(), "AuthorizationPermissionMismatch")
    forbidden(lambda: qa.peek_messages())
    forbidden(lambda: qa.clear_messages())

    read = _sas_queue(nimbus, name, generate_queue_sas(
        DEV_ACCOUNT, name, DEV_KEY, permission="r", expiry=_expiry(nimbus)))
    assert texts(read.peek_messages()) == ["added"]
    assert read.get_queue_properties().approximate_message_count == 1
    forbidden(lambda: read.send_message("x"))
    forbidden(lambda: read.receive_message())

    proc = _sas_queue(nimbus, name, generate_queue_sas(
        DEV_ACCOUNT, name, DEV_KEY, permission="p", expiry=_expiry(nimbus)))
    m = proc.receive_message()
    assert m.content == "added"
    forbidden(lambda: proc.update_message(m, content="no u", visibility_timeout=0))
    upd = _sas_queue(nimbus, name, generate_queue_sas(
        DEV_ACCOUNT, name, DEV_KEY, permission="u", expiry=_expiry(nimbus)))
    m = upd.update_message(m, content="with u", visibility_timeout=60)
    proc.delete_message(m)
    assert queue.get_queue_properties().approximate_message_count == 0

    # A queue SAS is for that queue only, and cannot read or set the ACL.
    other = uname("other")
    QueueClient.from_connection_string(nimbus.conn_str(), other, **SDK_KW).create_queue()
    forbidden(lambda: _sas_queue(nimbus, other, add_only).send_message("x"))
    all_perm = _sas_queue(nimbus, name, generate_queue_sas(
        DEV_ACCOUNT, name, DEV_KEY, permission="raup", expiry=_expiry(nimbus)))
    forbidden(lambda: all_perm.get_queue_access_policy())
    QueueClient.from_connection_string(nimbus.conn_str(), other, **SDK_KW).delete_queue()


def test_sas_time_window(nimbus, queue):
    name = queue.queue_name
    expired = generate_queue_sas(DEV_ACCOUNT, name, DEV_KEY, permission="raup",
                                 expiry=nimbus.server_now() - dt.timedelta(minutes=5))
    with pytest.raises(ClientAuthenticationError) as ei:
        _sas_queue(nimbus, name, expired).send_message("x")
    assert ei.value.error_code == "AuthenticationFailed"
    future = generate_queue_sas(DEV_ACCOUNT, name, DEV_KEY, permission="raup",
                                start=nimbus.server_now() + dt.timedelta(hours=1),
                                expiry=_expiry(nimbus, 7200))
    forbidden(lambda: _sas_queue(nimbus, name, future).send_message("x"))
    # A SAS that is valid now stops working once the server clock passes expiry.
    soon = generate_queue_sas(DEV_ACCOUNT, name, DEV_KEY, permission="raup",
                              expiry=_expiry(nimbus, 20))
    _sas_queue(nimbus, name, soon).send_message("in time")
    nimbus.advance(30)
    forbidden(lambda: _sas_queue(nimbus, name, soon).send_message("too late"))
    assert texts(queue.peek_messages(max_messages=32)) == ["in time"]


def test_sas_tampered(nimbus, queue):
    sas = generate_queue_sas(DEV_ACCOUNT, queue.queue_name, DEV_KEY, permission="r",
                             expiry=_expiry(nimbus))
    assert "sp=r" in sas
    widened = sas.replace("sp=r", "sp=raup")
    forbidden(lambda: _sas_queue(nimbus, queue.queue_name, widened).send_message("x"),
              "AuthenticationFailed")
    wrong_key = generate_queue_sas(DEV_ACCOUNT, queue.queue_name,
                                   base64.b64encode(os.urandom(64)).decode(),
                                   permission="r", expiry=_expiry(nimbus))
    forbidden(lambda: _sas_queue(nimbus, queue.queue_name, wrong_key).peek_messages())


def test_sas_stored_access_policy(nimbus, queue):
    name = queue.queue_name
    queue.set_queue_access_policy({
        "addread": AccessPolicy(permission=QueueSasPermissions(read=True, add=True),
                                start=nimbus.server_now() - dt.timedelta(minutes=5),
                                expiry=_expiry(nimbus)),
        "old": AccessPolicy(permission="raup",
                            start=nimbus.server_now() - dt.timedelta(days=2),
                            expiry=nimbus.server_now() - dt.timedelta(days=1)),
    })
    token = generate_queue_sas(DEV_ACCOUNT, name, DEV_KEY, policy_id="addread")
    assert "si=addread" in token and "sp=" not in token and "se=" not in token
    qc = _sas_queue(nimbus, name, token)
    qc.send_message("by policy")
    assert texts(qc.peek_messages()) == ["by policy"]
    forbidden(lambda: qc.receive_message())
    forbidden(lambda: _sas_queue(nimbus, name, generate_queue_sas(
        DEV_ACCOUNT, name, DEV_KEY, policy_id="old")).peek_messages())
    forbidden(lambda: _sas_queue(nimbus, name, generate_queue_sas(
        DEV_ACCOUNT, name, DEV_KEY, policy_id="nosuch")).peek_messages())
    # Removing the policy revokes every SAS that names it.
    queue.set_queue_access_policy({})
    forbidden(lambda: qc.peek_messages())


# ---------------------------------------------------------------- accounts


def test_second_accounts_work_and_are_isolated(nimbus):
    name = uname("iso")
    a2 = QueueClient.from_connection_string(nimbus.conn_str(ACCT2, KEY2), name, **SDK_KW)
    a2.create_queue(metadata={"acct": "2"})
    a2.send_message("in acct2")
    dev = QueueClient.from_connection_string(nimbus.conn_str(), name, **SDK_KW)
    with pytest.raises(ResourceNotFoundError):
        dev.get_queue_properties()
    dev.create_queue()
    assert dev.peek_messages() == []
    dev.send_message("in dev")
    assert texts(a2.peek_messages(max_messages=32)) == ["in acct2"]
    assert a2.get_queue_properties().metadata == {"acct": "2"}
    assert dev.get_queue_properties().metadata == {}

    svc3 = QueueServiceClient.from_connection_string(nimbus.conn_str(ACCT3, KEY3A), **SDK_KW)
    assert [q.name for q in svc3.list_queues()] == []
    svc3.create_queue(name)
    svc3b = QueueServiceClient.from_connection_string(nimbus.conn_str(ACCT3, KEY3B), **SDK_KW)
    assert [q.name for q in svc3b.list_queues()] == [name]          # second key works too
    svc2 = QueueServiceClient.from_connection_string(nimbus.conn_str(ACCT2, KEY2), **SDK_KW)
    assert [q.name for q in svc2.list_queues()] == [name]

    # One account's key does not open another account.
    cross = QueueServiceClient.from_connection_string(nimbus.conn_str(ACCT2, DEV_KEY), **SDK_KW)
    with pytest.raises(ClientAuthenticationError):
        list(cross.list_queues())
    # A SAS signed by acct2's key is not accepted on devstoreaccount1.
    sas = generate_queue_sas(DEV_ACCOUNT, name, KEY2, permission="r", expiry=_expiry(nimbus))
    with pytest.raises(ClientAuthenticationError):
        _sas_queue(nimbus, name, sas).peek_messages()

    a2.delete_queue()
    assert texts(dev.peek_messages()) == ["in dev"]
    dev.delete_queue()
    svc3.delete_queue(name)


# ---------------------------------------------------------------- raw HTTP


def _error(body, headers, code):
    assert headers.get("x-ms-error-code") == code, (headers, body)
    assert headers.get("content-type", "").startswith("application/xml"), headers
    root = ET.fromstring(body)
    assert root.tag == "Error"
    assert root.findtext("Code") == code
    msg = root.findtext("Message") or ""
    assert "RequestId:" + headers.get("x-ms-request-id", "?") in msg, msg
    assert re.search(r"Time:\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}Z", msg), msg


def test_common_response_headers(nimbus, queue):
    for version in ("2021-02-12", "2019-12-12"):
        crid = str(uuid.uuid4())
        status, h, body = nimbus.queue_request(
            "GET", "/%s/%s?comp=metadata" % (DEV_ACCOUNT, queue.queue_name),
            headers={"x-ms-version": version, "x-ms-client-request-id": crid})
        assert status == 200, body
        uuid.UUID(h["x-ms-request-id"])
        assert h["x-ms-version"] == version
        assert RFC1123.match(h["date"]), h["date"]
        # Date is wall-clock time (the test clock hook only moves queue semantics).
        assert close_to(email.utils.parsedate_to_datetime(h["date"]),
                        dt.datetime.now(dt.timezone.utc))
        assert h.get("x-ms-approximate-messages-count") == "0"
        assert "content-length" in h or "transfer-encoding" in h
    ids = set()
    for _ in range(3):
        _, h, _ = nimbus.queue_request("GET", "/%s/?comp=list" % DEV_ACCOUNT)
        ids.add(h["x-ms-request-id"])
    assert len(ids) == 3
    # Error responses carry them too.
    status, h, body = nimbus.queue_request("GET", "/%s/%s?comp=metadata"
                                           % (DEV_ACCOUNT, uname("nosuch")))
    assert status == 404
    assert h["x-ms-version"] == "2021-02-12" and "date" in h
    _error(body, h, "QueueNotFound")


def test_put_message_raw_xml(nimbus, queue):
    body = (b"<?xml version='1.0' encoding='utf-8'?>\n<QueueMessage><MessageText>"
            b"raw &lt;x&gt; &#233;</MessageText></QueueMessage>")
    status, h, resp = nimbus.queue_request(
        "POST", "/%s/%s/messages?visibilitytimeout=0&messagettl=-1"
        % (DEV_ACCOUNT, queue.queue_name), body=body)
    assert status == 201, resp
    msg = ET.fromstring(resp).find("QueueMessage")
    fields = [c.tag for c in msg]
    assert set(fields) == {"MessageId", "InsertionTime", "ExpirationTime", "PopReceipt",
                           "TimeNextVisible"}
    assert msg.findtext("ExpirationTime") == "Fri, 31 Dec 9999 23:59:59 GMT"
    assert RFC1123.match(msg.findtext("InsertionTime"))
    [p] = queue.peek_messages()
    assert p.content == "raw <x> \u00e9"


def test_malformed_xml(nimbus, queue):
    for body in (b"<QueueMessage><MessageText>oops", b"not xml at all",
                 b"<QueueMessage><MessageText>a</Wrong></QueueMessage>"):
        status, h, resp = nimbus.queue_request(
            "POST", "/%s/%s/messages" % (DEV_ACCOUNT, queue.queue_name), body=body)
        assert status == 400, (body, resp)
        _error(resp, h, "InvalidXmlDocument")
    status, h, resp = nimbus.queue_request(
        "PUT", "/%s/%s?comp=acl" % (DEV_ACCOUNT, queue.queue_name),
        body=b"<SignedIdentifiers><SignedIdentifier>")
    assert status == 400
    _error(resp, h, "InvalidXmlDocument")
    assert queue.get_queue_properties().approximate_message_count == 0


def test_unauthenticated_request(nimbus, queue):
    for method, path in (("GET", "/%s/?comp=list" % DEV_ACCOUNT),
                         ("GET", "/%s/%s/messages?peekonly=true" % (DEV_ACCOUNT,
                                                                     queue.queue_name)),
                         ("DELETE", "/%s/%s" % (DEV_ACCOUNT, queue.queue_name))):
        status, h, body = nimbus.queue_request(method, path, sign=False)
        assert status == 403, (path, body)
        _error(body, h, "AuthenticationFailed")
    # A request signed for one path does not authenticate another.
    hdrs = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": "2021-02-12"}
    hdrs["Authorization"] = sharedkey_queue("GET", "/%s/?comp=list" % DEV_ACCOUNT,
                                            dict(hdrs, **{"Content-Length": "0"}),
                                            DEV_ACCOUNT, DEV_KEY)
    status, h, body = nimbus.queue_request(
        "DELETE", "/%s/%s" % (DEV_ACCOUNT, queue.queue_name), headers=hdrs, sign=False)
    assert status == 403
    _error(body, h, "AuthenticationFailed")
    queue.get_queue_properties()        # still there


def _send_oversized(port, path, total):
    """Send a request announcing `total` body bytes, stop sending as soon as the
    server answers, and return the raw response head."""
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    try:
        head = ("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nContent-Type: application/xml\r\n"
                "x-ms-version: 2021-02-12\r\nContent-Length: %d\r\n\r\n" % (path, port, total))
        s.sendall(head.encode())
        chunk = b"<" * 65536
        sent = 0
        while sent < total:
            r, _, _ = select.select([s], [], [], 0)
            if r:
                break
            try:
                s.sendall(chunk[:min(len(chunk), total - sent)])
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        data = b""
        while b"\r\n\r\n" not in data:
            try:
                more = s.recv(65536)
            except ConnectionResetError:
                break
            if not more:
                break
            data += more
        return data
    finally:
        s.close()


def test_request_body_too_large(nimbus, queue):
    resp = _send_oversized(nimbus.queue_port,
                           "/%s/%s/messages" % (DEV_ACCOUNT, queue.queue_name), 16 << 20)
    assert resp.startswith(b"HTTP/1.1 413"), resp[:200]
    assert b"RequestBodyTooLarge" in resp, resp[:600]
    assert queue.get_queue_properties().approximate_message_count == 0


def test_cors_preflight(nimbus, qsc, queue):
    qsc.set_service_properties(cors=[
        CorsRule(["http://allowed.example"], ["GET", "PUT"],
                 allowed_headers=["x-ms-meta-*", "content-type"],
                 exposed_headers=["x-ms-request-id"], max_age_in_seconds=300)])
    path = "/%s/%s/messages" % (DEV_ACCOUNT, queue.queue_name)
    status, h, body = nimbus.queue_request(
        "OPTIONS", path, sign=False,
        headers={"Origin": "http://allowed.example", "Access-Control-Request-Method": "PUT",
                 "Access-Control-Request-Headers": "x-ms-meta-abc"})
    assert status == 200, body
    assert h.get("access-control-allow-origin") == "http://allowed.example"
    assert "PUT" in h.get("access-control-allow-methods", "")
    assert h.get("access-control-max-age") == "300"

    for origin, method in (("http://evil.example", "PUT"), ("http://allowed.example", "DELETE")):
        status, h, body = nimbus.queue_request(
            "OPTIONS", path, sign=False,
            headers={"Origin": origin, "Access-Control-Request-Method": method})
        assert status == 403, (origin, method, body)
        assert "access-control-allow-origin" not in h

    # An actual (signed) request from an allowed origin gets the CORS headers.
    status, h, body = nimbus.queue_request(
        "GET", "/%s/%s?comp=metadata" % (DEV_ACCOUNT, queue.queue_name),
        headers={"Origin": "http://allowed.example"})
    assert status == 200
    assert h.get("access-control-allow-origin") == "http://allowed.example"
    status, h, body = nimbus.queue_request(
        "GET", "/%s/%s?comp=metadata" % (DEV_ACCOUNT, queue.queue_name),
        headers={"Origin": "http://evil.example"})
    assert status == 200
    assert "access-control-allow-origin" not in h


# ---------------------------------------------------------------- more edges


def test_head_queue_metadata(nimbus, queue):
    queue.set_queue_metadata({"Alpha": "1"})
    queue.send_message("x")
    status, h, body = nimbus.queue_request("HEAD", "/%s/%s?comp=metadata"
                                           % (DEV_ACCOUNT, queue.queue_name))
    assert status == 200
    assert body == b""
    assert h.get("x-ms-meta-alpha") == "1"
    assert h.get("x-ms-approximate-messages-count") == "1"


def test_unsupported_verb_and_bad_uri(nimbus, queue):
    status, h, body = nimbus.queue_request("PATCH", "/%s/%s" % (DEV_ACCOUNT, queue.queue_name))
    assert status == 405, body
    assert h.get("x-ms-error-code") == "UnsupportedHttpVerb"
    status, h, body = nimbus.queue_request("GET", "/")
    assert status in (400, 403), body
    status, h, body = nimbus.queue_request(
        "GET", "/%s/%s/messages/%s/extra" % (DEV_ACCOUNT, queue.queue_name, uuid.uuid4()))
    assert 400 <= status < 500 and status != 403, body


def test_invalid_metadata_name(queue):
    with pytest.raises(HttpResponseError) as ei:
        queue.set_queue_metadata({"1starts-with-digit": "v"})
    assert ei.value.status_code == 400
    assert queue.get_queue_properties().metadata == {}


def test_update_expired_message(nimbus, queue):
    m = queue.send_message("short", time_to_live=10)
    nimbus.advance(11)
    with pytest.raises(ResourceNotFoundError) as ei:
        queue.update_message(m, content="late", visibility_timeout=0)
    assert ei.value.error_code == "MessageNotFound"


def test_update_visibility_out_of_range(queue):
    queue.send_message("x")
    m = queue.receive_message()
    with pytest.raises(HttpResponseError) as ei:
        queue.update_message(m.id, pop_receipt=m.pop_receipt, visibility_timeout=WEEK + 1)
    assert ei.value.status_code == 400
    queue.delete_message(m)                       # the receipt is still the current one


def test_sas_protocol_ip_and_service_scope(nimbus, queue):
    name = queue.queue_name
    https_only = generate_queue_sas(DEV_ACCOUNT, name, DEV_KEY, permission="r",
                                    expiry=_expiry(nimbus), protocol="https")
    assert "spr=https" in https_only
    forbidden(lambda: _sas_queue(nimbus, name, https_only).peek_messages(),
              "AuthorizationProtocolMismatch")
    both = generate_queue_sas(DEV_ACCOUNT, name, DEV_KEY, permission="r",
                              expiry=_expiry(nimbus), protocol="https,http")
    assert _sas_queue(nimbus, name, both).peek_messages() == []

    # An account SAS for the table service (ss=t) does not open queues.
    from azure.core.credentials import AzureNamedKeyCredential
    from azure.data.tables import (AccountSasPermissions as TablePerms,
                                   ResourceTypes as TableTypes,
                                   generate_account_sas as table_account_sas)
    tsas = table_account_sas(AzureNamedKeyCredential(DEV_ACCOUNT, DEV_KEY),
                             TableTypes(service=True, object=True, container=True),
                             TablePerms(read=True, write=True, list=True, add=True),
                             expiry=_expiry(nimbus))
    assert "ss=t" in tsas
    forbidden(lambda: _sas_queue(nimbus, name, tsas).peek_messages(),
              "AuthorizationServiceMismatch")

    # A queue SAS cannot list queues (a service-level operation).
    qsas = generate_queue_sas(DEV_ACCOUNT, name, DEV_KEY, permission="raup",
                              expiry=_expiry(nimbus))
    svc = QueueServiceClient(account_url=nimbus.queue_endpoint(), credential=qsas, **SDK_KW)
    forbidden(lambda: list(svc.list_queues()))


def test_sas_ip_restriction(nimbus, queue):
    # sip: the request must come from the address or range (Azure answers
    # 403 AuthorizationSourceIPMismatch otherwise).
    name = queue.queue_name
    local = generate_queue_sas(DEV_ACCOUNT, name, DEV_KEY, permission="r",
                               expiry=_expiry(nimbus), ip="127.0.0.1")
    assert _sas_queue(nimbus, name, local).peek_messages() == []
    local_range = generate_queue_sas(DEV_ACCOUNT, name, DEV_KEY, permission="r",
                                     expiry=_expiry(nimbus), ip="127.0.0.0-127.0.0.5")
    assert _sas_queue(nimbus, name, local_range).peek_messages() == []
    elsewhere = generate_queue_sas(DEV_ACCOUNT, name, DEV_KEY, permission="r",
                                   expiry=_expiry(nimbus), ip="10.1.2.3-10.1.2.9")
    forbidden(lambda: _sas_queue(nimbus, name, elsewhere).peek_messages())


def test_concurrent_receivers_never_share_a_message(nimbus, queue):
    import threading
    texts_sent = ["cc-%04d" % i for i in range(256)]
    for t in texts_sent:
        queue.send_message(t)
    got, errors = [], []
    lock = threading.Lock()

    def worker():
        qc = QueueClient.from_connection_string(nimbus.conn_str(), queue.queue_name, **SDK_KW)
        try:
            while True:
                page = list(next(qc.receive_messages(messages_per_page=7,
                                                     visibility_timeout=300).by_page(), []))
                if not page:
                    return
                with lock:
                    got.extend((m.content, m.dequeue_count) for m in page)
        except Exception as e:
            errors.append(e)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(c for c, _ in got) == texts_sent      # each exactly once
    assert all(d == 1 for _, d in got)
