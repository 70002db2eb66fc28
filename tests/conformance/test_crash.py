"""Durability: what a client was told succeeded must survive `kill -9`.

Several client threads hammer one server with puts (or receive+delete) and
record every request the server acknowledged; the server is SIGKILLed in the
middle of that traffic and restarted on the same data dir. Every acknowledged
put must then be in the queue exactly once, every acknowledged delete must stay
deleted, and nothing may be duplicated. Unacknowledged requests may or may not
have taken effect.
"""
import collections
import subprocess
import datetime as dt
import threading
import time
import uuid

import pytest
from azure.core.exceptions import HttpResponseError, ServiceRequestError, ServiceResponseError
from azure.storage.queue import AccessPolicy, QueueClient

from conftest import NIMBUS_BIN, Nimbus

THREADS = 8
SDK_KW = dict(retry_total=0, connection_timeout=2, read_timeout=10)


def _client(srv, name):
    return QueueClient.from_connection_string(srv.conn_str(), name, **SDK_KW)


def _drain(srv, name):
    """Receive everything visible (hidden for 10 minutes so nothing comes
    back during the drain); returns the messages."""
    return list(_client(srv, name).receive_messages(messages_per_page=32,
                                                    visibility_timeout=600))


def _run_until_killed(srv, work, min_acks, max_seconds=10.0):
    """Run work(i, acked_list, attempted_list, stop) on THREADS threads, SIGKILL
    the server once min_acks requests were acknowledged (or max_seconds
    passed) while they are still sending, then join them."""
    stop = threading.Event()
    acked = [[] for _ in range(THREADS)]
    attempted = [[] for _ in range(THREADS)]
    errors = []

    def run(i):
        try:
            work(i, acked[i], attempted[i], stop)
        except Exception as e:          # a thread bug must fail the test
            errors.append(e)

    threads = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(THREADS)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + max_seconds
    while sum(map(len, acked)) < min_acks and time.monotonic() < deadline:
        time.sleep(0.01)
    srv.kill()
    stop.set()
    for t in threads:
        t.join(30)
        assert not t.is_alive(), "client thread hung after the server died"
    assert not errors, errors
    return [x for a in acked for x in a], [x for a in attempted for x in a]


DEAD = (ServiceRequestError, ServiceResponseError, ConnectionError, OSError)


@pytest.fixture
def crash_srv(tmp_path_factory):
    srv = Nimbus(tmp_path_factory.mktemp("crash")).start()
    yield srv
    if srv.proc is not None and srv.proc.poll() is None:
        rc = srv.stop()
        assert rc == 0, "nimbus exited %r after SIGTERM (want 0)\n%s" % (rc, srv.stderr_tail())


def test_acknowledged_puts_survive_kill9(crash_srv):
    srv = crash_srv
    name = "crash-puts"
    q = _client(srv, name)
    q.create_queue(metadata={"durable": "yes"})
    exp = dt.datetime(2099, 1, 1, tzinfo=dt.timezone.utc)
    q.set_queue_access_policy({"pol": AccessPolicy(permission="raup", expiry=exp)})
    run_id = uuid.uuid4().hex[:8]

    def put(i, acked, attempted, stop):
        qc = _client(srv, name)
        n = 0
        while not stop.is_set():
            text = "%s-t%d-%06d" % (run_id, i, n)
            n += 1
            attempted.append(text)
            try:
                qc.send_message(text)
            except DEAD:
                return
            except HttpResponseError as e:
                # A server that answers an error is not a dead server: fail.
                raise AssertionError("put answered %s" % e.status_code)
            acked.append(text)

    acked, attempted = _run_until_killed(srv, put, min_acks=600)
    assert len(acked) >= 50, "too few puts acknowledged before the kill: %d" % len(acked)
    assert len(attempted) > len(acked), "the kill did not land while clients were sending"

    srv.start()                                    # same data dir, same ports
    props = _client(srv, name).get_queue_properties()
    assert props.metadata == {"durable": "yes"}
    assert set(_client(srv, name).get_queue_access_policy()) == {"pol"}

    msgs = _drain(srv, name)
    seen = collections.Counter(m.content for m in msgs)
    dups = {t: c for t, c in seen.items() if c > 1}
    assert not dups, "duplicated after restart: %s" % list(dups.items())[:10]
    missing = set(acked) - set(seen)
    assert not missing, "%d acknowledged puts lost, e.g. %s" % (len(missing),
                                                                 sorted(missing)[:10])
    strange = set(seen) - set(attempted)
    assert not strange, "messages nobody sent: %s" % sorted(strange)[:10]
    assert len({m.id for m in msgs}) == len(msgs)
    assert props.approximate_message_count == len(msgs)

    # A clean stop and start keeps exactly the same messages.
    assert srv.stop() == 0
    srv.start()
    assert _client(srv, name).get_queue_properties().approximate_message_count == len(msgs)
    srv.advance(601)
    again = collections.Counter(m.content for m in _drain(srv, name))
    assert again == seen


def test_acknowledged_deletes_survive_kill9(crash_srv):
    srv = crash_srv
    name = "crash-deletes"
    q = _client(srv, name)
    q.create_queue()
    texts = ["d-%05d" % i for i in range(800)]
    for t in texts:
        q.send_message(t)

    def receive_and_delete(i, acked, attempted, stop):
        qc = _client(srv, name)
        while not stop.is_set():
            try:
                batch = list(next(qc.receive_messages(messages_per_page=4,
                                                      visibility_timeout=300).by_page(), []))
            except DEAD:
                return
            if not batch:
                return
            for m in batch:
                attempted.append(m.content)
                try:
                    qc.delete_message(m)
                except DEAD:
                    return
                except HttpResponseError as e:
                    raise AssertionError("delete answered %s" % e.status_code)
                acked.append(m.content)

    deleted, attempted = _run_until_killed(srv, receive_and_delete, min_acks=300)
    assert len(deleted) >= 50, "too few deletes acknowledged before the kill: %d" % len(deleted)
    assert len(deleted) < len(texts), "everything was deleted before the kill"

    srv.start()
    srv.advance(301)                     # received-but-not-deleted become visible again
    left = collections.Counter(m.content for m in _drain(srv, name))
    dups = {t: c for t, c in left.items() if c > 1}
    assert not dups, "duplicated after restart: %s" % list(dups.items())[:10]
    back = set(deleted) & set(left)
    assert not back, "%d acknowledged deletes came back, e.g. %s" % (len(back), sorted(back)[:10])
    untouched = set(texts) - set(attempted)
    missing = untouched - set(left)
    assert not missing, "%d never-deleted messages lost, e.g. %s" % (len(missing),
                                                                     sorted(missing)[:10])
    assert set(left) <= set(texts)


def test_test_hooks_off_by_default(tmp_path_factory):
    srv = Nimbus(tmp_path_factory.mktemp("nohooks"), test_hooks=False).start()
    try:
        status, _, _ = srv.host_request("GET", "/admin/host/ping")
        assert status == 200
        # /admin/* needs the master key before anything else is revealed...
        status, _, body = srv.host_request("POST", "/admin/test/clock?advance_ms=1000")
        assert status == 401, body
        # ...and with it, the hook does not exist.
        master = subprocess.run([NIMBUS_BIN, "keys", "show", "master", "--data",
                                 str(srv.data_dir)], capture_output=True, check=True,
                                text=True).stdout.strip()
        status, _, body = srv.host_request("POST", "/admin/test/clock?advance_ms=1000&code="
                                           + master)
        assert status == 404, body
    finally:
        assert srv.stop() == 0
