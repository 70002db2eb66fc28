"""Queue and timer triggers (docs/functions.md "Triggers and bindings",
src/host/triggers.h) on tests/conformance/apps/native:

  qworker  queue "work" -> the text in upper case on "done"; "fail" fails
  tick     timer "0 */5 * * * *" -> its timer info JSON on "ticks"

host.json: maxDequeueCount 3, visibilityTimeout 1 s, maxPollingInterval 1 s,
messageEncoding base64 (the default). Waits on the server's schedule
(visibility timeouts, timer occurrences) are skipped by moving its clock
(srv.advance); only the restart tests wait for the real clock, a few seconds.

Besides the module's server: a second one whose idle poller must be woken
(maxPollingInterval 60 s), one with queue functions that crash or hang, and
short-lived ones for timer restarts on a shared data dir.
"""
import base64
import datetime as dt
import json
import re
import shutil
import time
import uuid
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceExistsError
from azure.storage.queue import (QueueClient, TextBase64DecodePolicy,
                                 TextBase64EncodePolicy)

from conftest import Nimbus
from conftest import host_call as request, wait_until as wait_for, master_key, saw_segv

APP = Path(__file__).resolve().parent / "apps" / "native"
NIMBUS_APP = str(APP)
UTC = dt.timezone.utc
TICK_PERIOD = 300            # "0 */5 * * * *"
PAST_DUE_TOLERANCE = 1.0     # triggers.h: IsPastDue when started > 1 s after its occurrence
WAKE_IDLE = 4.5              # seconds the wake-up server's poller idles before the put


@pytest.fixture(scope="module", autouse=True)
def _app_built():
    if not (APP / "bin" / "native.so").is_file():
        pytest.fail("%s is missing: run `make apps` first" % (APP / "bin" / "native.so"))


# --- helpers -------------------------------------------------------------------------



def queue(srv, name, b64=True):
    kw = {}
    if b64:
        kw = dict(message_encode_policy=TextBase64EncodePolicy(),
                  message_decode_policy=TextBase64DecodePolicy())
    return QueueClient.from_connection_string(srv.full_conn_str(), name, **kw)


def ensure_queue(srv, name):
    try:
        queue(srv, name).create_queue()
    except ResourceExistsError:
        pass


def fresh_queues(srv, *names):
    """Create the queues, and empty them so a peek (32 at most) sees all."""
    for name in names:
        ensure_queue(srv, name)
        queue(srv, name).clear_messages()


def peek(srv, name, b64=True):
    """Visible messages' texts (base64-decoded with b64); [] for no queue."""
    try:
        return [m.content for m in queue(srv, name, b64).peek_messages(max_messages=32)]
    except Exception as e:
        if getattr(e, "status_code", None) == 404:
            return []
        raise




def log_text(srv):
    return srv.stderr_path.read_text(errors="replace")


def copy_app(dest):
    """The app in dest (tmp), to change its settings there."""
    shutil.copytree(APP, dest, ignore=shutil.ignore_patterns(".nimbus", "src", "Makefile"))
    return dest


def set_tick(app, **props):
    """Change properties of the tick function's timerTrigger binding."""
    fj = app / "tick" / "function.json"
    doc = json.loads(fj.read_text())
    doc["bindings"][0].update(props)
    fj.write_text(json.dumps(doc))




def parse_iso(s):
    """'2026-01-05T09:15:00.0000000Z' (or '0001-01-01T00:00:00') -> aware datetime."""
    base = dt.datetime.strptime(s[:19], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    frac = re.match(r"\.(\d+)", s[19:])
    if frac:
        base += dt.timedelta(microseconds=int((frac.group(1) + "000000")[:6]))
    return base


def at(seconds):
    return dt.datetime.fromtimestamp(seconds, UTC)


def ticks(srv):
    """The timer info objects on "ticks" (manual-run texts are skipped)."""
    out = []
    for text in peek(srv, "ticks"):
        try:
            v = json.loads(text)
        except ValueError:
            continue
        if isinstance(v, dict):
            out.append(v)
    return out


def tick_with_next(srv, next_dt, timeout=5.0):
    """The one tick whose ScheduleStatus.Next is next_dt."""
    def find():
        hits = [t for t in ticks(srv) if parse_iso(t["ScheduleStatus"]["Next"]) == next_dt]
        assert len(hits) <= 1, hits
        return hits[0] if hits else None
    return wait_for("a tick with Next %s" % next_dt, find, timeout)


def check_timer_info(t):
    assert set(t) >= {"Schedule", "ScheduleStatus", "IsPastDue"}, t
    assert t["Schedule"] == {"AdjustForDST": True}, t     # as Azure serializes TimerInfo
    assert isinstance(t["IsPastDue"], bool)
    assert set(t["ScheduleStatus"]) >= {"Last", "Next", "LastUpdated"}, t


# --- the wake-up server: started first, so its poller has long gone idle ---------------

@pytest.fixture(scope="module", autouse=True)
def wake_srv(tmp_path_factory, _app_built):
    """The same app with maxPollingInterval 60 s (host.json override through the
    environment, as on Azure): an idle poller then waits seconds between polls,
    and only the wake-up can make a pick-up prompt."""
    srv = Nimbus(tmp_path_factory.mktemp("wake"), app_dir=APP, env={
        "AzureFunctionsJobHost__extensions__queues__maxPollingInterval": "00:01:00"}).start()
    srv.started_at = time.monotonic()
    yield srv
    rc = srv.stop()
    assert rc == 0, "nimbus exited %r after SIGTERM (want 0)\n%s" % (rc, srv.stderr_tail())


# --- queue trigger ------------------------------------------------------------------------

def test_queue_trigger_success(nimbus):
    fresh_queues(nimbus, "work", "done")
    text = "hello-" + uuid.uuid4().hex
    queue(nimbus, "work").send_message(text)
    wait_for("%s on done" % text.upper(), lambda: text.upper() in peek(nimbus, "done"), 5)
    # the output is base64 on the wire, as messageEncoding says
    assert base64.b64encode(text.upper().encode()).decode() in peek(nimbus, "done", b64=False)
    wait_for("work to be empty", lambda: peek(nimbus, "work") == [], 5)
    assert queue(nimbus, "work").get_queue_properties().approximate_message_count == 0


def test_queue_trigger_several_messages(nimbus):
    fresh_queues(nimbus, "work", "done")
    texts = ["many-%d-%s" % (i, uuid.uuid4().hex[:8]) for i in range(10)]
    q = queue(nimbus, "work")
    for t in texts:
        q.send_message(t)

    def all_done():
        done = peek(nimbus, "done")
        return all(t.upper() in done for t in texts)
    wait_for("10 messages processed", all_done, 10)
    wait_for("work to be empty", lambda: peek(nimbus, "work") == [], 5)


def test_queue_trigger_non_base64_passes_through(nimbus):
    """A message that is not valid base64 reaches the function as it is."""
    fresh_queues(nimbus, "work", "done")
    text = "raw text, not base64! " + uuid.uuid4().hex
    queue(nimbus, "work", b64=False).send_message(text)
    wait_for("the raw text upper-cased on done", lambda: text.upper() in peek(nimbus, "done"), 5)


def test_retry_then_poison(nimbus):
    fresh_queues(nimbus, "work", "done")
    log_before = len(log_text(nimbus))
    sent = queue(nimbus, "work").send_message("fail")
    deadline = time.monotonic() + 15
    while "fail" not in peek(nimbus, "work-poison"):
        assert time.monotonic() < deadline, "never poisoned\n" + nimbus.stderr_tail()
        nimbus.advance(1.1)     # past visibilityTimeout (1 s): the retry is due at once
        time.sleep(0.1)
    # the original text, still base64 as it was put
    assert peek(nimbus, "work-poison", b64=False) == [base64.b64encode(b"fail").decode()]
    wait_for("work to be empty", lambda: peek(nimbus, "work") == [], 5)
    assert "FAIL" not in peek(nimbus, "done")
    # DequeueCount went 1, 2, 3: one attempt each, the third poisoned it
    log = log_text(nimbus)[log_before:]
    attempts = re.findall(r"function qworker failed on message %s \(attempt (\d+)/3\)"
                          % re.escape(sent.id), log)
    assert attempts == ["1", "2", "3"], log
    assert re.search(r"message %s \(attempt 3/3\): moved to work-poison" % re.escape(sent.id),
                     log), log
    # nothing comes back later
    nimbus.advance(5)
    time.sleep(0.3)
    assert peek(nimbus, "work") == []
    assert len(peek(nimbus, "work-poison")) == 1


# --- crashes and timeouts in queue-triggered native functions ---------------------------

@pytest.fixture(scope="module")
def crashy(tmp_path_factory, _app_built):
    """The app plus two queue functions over entry points of bin/native.so:
    qcrash (queue "crashq", SIGSEGV) and qhang (queue "hangq", runs past
    functionTimeout, 2 s)."""
    base = tmp_path_factory.mktemp("crashy")
    app = copy_app(base / "app")
    for name, entry, qname in (("qcrash", "crash", "crashq"), ("qhang", "hang", "hangq")):
        (app / name).mkdir()
        (app / name / "function.json").write_text(json.dumps({
            "scriptFile": "../bin/native.so", "entryPoint": entry,
            "bindings": [{"type": "queueTrigger", "direction": "in", "name": "msg",
                          "queueName": qname}]}))
    srv = Nimbus(base / "srv", app_dir=app).start()
    yield srv
    rc = srv.stop()
    assert rc == 0, "nimbus exited %r after SIGTERM (want 0)\n%s" % (rc, srv.stderr_tail())


def test_queue_function_crash_is_retried_then_poisoned(crashy):
    srv = crashy
    fresh_queues(srv, "crashq")
    sent = queue(srv, "crashq").send_message("boom")
    deadline = time.monotonic() + 30   # three worker crashes and respawns (slow under ASan)
    while "boom" not in peek(srv, "crashq-poison"):
        assert time.monotonic() < deadline, "never poisoned\n" + srv.stderr_tail()
        srv.advance(1.1)
        time.sleep(0.1)
    log = log_text(srv)
    attempts = re.findall(r"function qcrash failed on message %s \(attempt (\d+)/3\)"
                          % re.escape(sent.id), log)
    assert attempts == ["1", "2", "3"], log
    assert saw_segv(log), log
    wait_for("crashq to be empty", lambda: peek(srv, "crashq") == [], 5)
    status, _, body = request(srv, "GET", "/api/hello")
    assert (status, body) == (200, b"hello")


def test_queue_function_timeout_fails_that_attempt_only(crashy):
    srv = crashy
    fresh_queues(srv, "hangq", "work", "done")
    sent = queue(srv, "hangq").send_message("zzz")
    t0 = time.monotonic()
    # meanwhile other functions run as usual
    time.sleep(0.2)
    queue(srv, "work").send_message("still")
    wait_for("another queue function while one hangs",
             lambda: "STILL" in peek(srv, "done"), 1.5)
    assert request(srv, "GET", "/api/hello")[0] == 200
    pattern = r"function qhang failed on message %s \(attempt 1/3\): function timed out" \
        % re.escape(sent.id)
    wait_for("the first attempt to time out", lambda: re.search(pattern, log_text(srv)), 10)
    assert 1.5 < time.monotonic() - t0 < 10
    queue(srv, "hangq").clear_messages()      # no second 2-s attempt


# --- timer trigger under the injected clock -------------------------------------------

def next_boundary(now, margin=1.0):
    n = (int(now) // TICK_PERIOD + 1) * TICK_PERIOD
    return n if n - now >= margin else n + TICK_PERIOD


def test_timer_on_time_late_and_jumped(nimbus):
    fresh_queues(nimbus, "ticks")
    # 1. on time: the clock lands 0.2 s after an occurrence
    now = nimbus.advance(0)
    n1 = next_boundary(now)
    nimbus.advance(n1 - now + 0.2)
    t1 = tick_with_next(nimbus, at(n1 + TICK_PERIOD))
    check_timer_info(t1)
    assert t1["IsPastDue"] is False, t1
    updated = parse_iso(t1["ScheduleStatus"]["LastUpdated"]).timestamp()
    assert n1 <= updated < n1 + 5, t1

    # 2. late: 3 s after the next occurrence -> IsPastDue, Last is the previous run
    now = nimbus.advance(0)
    n2 = next_boundary(now)
    assert n2 == n1 + TICK_PERIOD
    nimbus.advance(n2 - now + 3 * PAST_DUE_TOLERANCE)
    t2 = tick_with_next(nimbus, at(n2 + TICK_PERIOD))
    check_timer_info(t2)
    assert t2["IsPastDue"] is True, t2
    assert parse_iso(t2["ScheduleStatus"]["Last"]) == at(n1), t2

    # 3. a jump over several occurrences yields one run
    before = len(ticks(nimbus))
    now = nimbus.advance(4 * TICK_PERIOD)
    t3 = tick_with_next(nimbus, at(next_boundary(now, margin=0)))
    assert t3["IsPastDue"] is True
    assert parse_iso(t3["ScheduleStatus"]["Last"]) == at(n2), t3
    time.sleep(0.3)
    assert len(ticks(nimbus)) == before + 1


def test_manual_run_api(nimbus):
    fresh_queues(nimbus, "ticks", "done")
    key = master_key(nimbus)
    text = "manual-" + uuid.uuid4().hex
    body = json.dumps({"input": text}).encode()
    h = {"x-functions-key": key, "Content-Type": "application/json"}
    assert request(nimbus, "POST", "/admin/functions/tick", body, h)[0] == 202
    wait_for("the manual input on ticks", lambda: text in peek(nimbus, "ticks"), 5)
    assert request(nimbus, "POST", "/admin/functions/qworker", body, h)[0] == 202
    wait_for("the manual input on done", lambda: text.upper() in peek(nimbus, "done"), 5)
    # the master key only; unknown functions; HTTP functions run through their URL
    assert request(nimbus, "POST", "/admin/functions/tick", body,
                   {"Content-Type": "application/json"})[0] == 401
    assert request(nimbus, "POST", "/admin/functions/nosuch", body, h)[0] == 404
    assert request(nimbus, "POST", "/admin/functions/hello", body, h)[0] == 400
    status, _, listing = request(nimbus, "GET", "/admin/functions", None, h)
    assert status == 200
    triggers = {f["name"]: f["trigger"] for f in json.loads(listing)}
    assert triggers["tick"] == "timerTrigger" and triggers["qworker"] == "queueTrigger"


def test_timer_run_on_startup(tmp_path):
    app = copy_app(tmp_path / "app")
    set_tick(app, runOnStartup=True)
    srv = Nimbus(tmp_path / "srv", app_dir=app).start()
    try:
        t = wait_for("the runOnStartup tick", lambda: ticks(srv), 5)[0]
        check_timer_info(t)
        assert t["IsPastDue"] is False, t
        assert t["ScheduleStatus"]["Last"].startswith("0001-01-01T00:00:00"), t  # never ran
        fired = parse_iso(t["ScheduleStatus"]["LastUpdated"]).timestamp()
        assert abs(fired - time.time()) < 10, t
        assert parse_iso(t["ScheduleStatus"]["Next"]) == at(next_boundary(fired, margin=0)), t
        time.sleep(0.3)
        assert len(ticks(srv)) == 1
    finally:
        rc = srv.stop()
    assert rc == 0, srv.stderr_tail()


def test_timer_missed_while_down_runs_on_start_past_due(tmp_path):
    """The schedule status is persisted: an occurrence that fell while the
    server was down is run on the next start, with IsPastDue true. The
    schedule is daily (monitored by default, as on Azure), at a second just
    ahead of the real clock: the first server stores that Next and stops
    before it; the second starts after it."""
    app = copy_app(tmp_path / "app")
    due = int(time.time()) + 3
    d = at(due)
    set_tick(app, schedule="%d %d %d * * *" % (d.second, d.minute, d.hour))
    data = tmp_path / "data"
    s1 = Nimbus(tmp_path / "s1", app_dir=app, data_dir=data).start()
    try:
        assert ticks(s1) == []
    finally:
        rc = s1.stop()
    assert rc == 0, s1.stderr_tail()
    assert time.time() < due - 0.5, "the first server took too long to start and stop"
    time.sleep(max(0.0, due + 0.3 - time.time()))
    s2 = Nimbus(tmp_path / "s2", app_dir=app, data_dir=data).start()
    try:
        t = tick_with_next(s2, d + dt.timedelta(days=1))
        check_timer_info(t)
        assert t["IsPastDue"] is True, t
        assert t["ScheduleStatus"]["Last"].startswith("0001-01-01T00:00:00"), t  # never ran
        time.sleep(0.3)
        assert len(ticks(s2)) == 1
    finally:
        rc = s2.stop()
    assert rc == 0, s2.stderr_tail()


def test_subminute_timer_is_not_monitored_by_default(tmp_path):
    """On Azure, useMonitor defaults to false for a schedule that fires more
    than once a minute (TimerSchedule.ShouldDisableScheduleMonitor; likewise a
    TimeSpan schedule under 1 minute): no status is kept, so a restart makes
    no past-due run for the occurrences missed while down."""
    app = copy_app(tmp_path / "app")
    set_tick(app, schedule="*/2 * * * * *")
    data = tmp_path / "data"
    s1 = Nimbus(tmp_path / "s1", app_dir=app, data_dir=data).start()
    rc = s1.stop()
    assert rc == 0, s1.stderr_tail()
    time.sleep(2.2)                     # past whatever Next the first server saw
    started = time.time()
    s2 = Nimbus(tmp_path / "s2", app_dir=app, data_dir=data).start()
    try:
        time.sleep(0.5)
        late = [t for t in ticks(s2) if t["IsPastDue"]
                and parse_iso(t["ScheduleStatus"]["LastUpdated"]).timestamp() >= started - 1]
        assert late == [], late
    finally:
        rc = s2.stop()
    assert rc == 0, s2.stderr_tail()


def test_timer_not_past_due_on_restart_before_next(tmp_path):
    """A restart before the stored Next runs nothing at start."""
    data = tmp_path / "data"
    t0 = time.time()
    s1 = Nimbus(tmp_path / "s1", app_dir=APP, data_dir=data).start()
    rc = s1.stop()
    assert rc == 0, s1.stderr_tail()
    s2 = Nimbus(tmp_path / "s2", app_dir=APP, data_dir=data).start()
    try:
        time.sleep(0.5)
        if next_boundary(t0, margin=0) > time.time():   # no real occurrence since t0
            assert ticks(s2) == []
        # ...until its clock passes the occurrence
        now = s2.advance(0)
        n = next_boundary(now, margin=0)
        s2.advance(n - now + 0.2)
        t = tick_with_next(s2, at(n + TICK_PERIOD))
        assert t["IsPastDue"] is False, t
    finally:
        rc = s2.stop()
    assert rc == 0, s2.stderr_tail()


# --- wake-up (last, so the wake-up server's poller has idled longest) ----------------

def test_put_wakes_the_poller(wake_srv):
    srv = wake_srv
    ensure_queue(srv, "work")
    idle = time.monotonic() - srv.started_at
    if idle < WAKE_IDLE:
        time.sleep(WAKE_IDLE - idle)
    text = "wake-" + uuid.uuid4().hex
    t0 = time.monotonic()
    queue(srv, "work").send_message(text)
    wait_for("the woken poller", lambda: text.upper() in peek(srv, "done"), 5, 0.01)
    latency = time.monotonic() - t0
    # The backoff alone would leave it waiting > 1 s here (100 ms doubling
    # towards 60 s over 4.5 s of empty polls).
    assert latency < 1.0, latency
