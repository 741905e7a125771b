"""Cluster mode's task logic (cancelkit.cluster): what ``cancelkit.send`` and
``cancelkit.follow_status`` do with each kind of answer, run in process.

The tasks run eagerly (``Task.apply``) on an app with the in-memory broker, their
client bound to an in-process sandbox; what is re-queued is captured where the task
hands it to Celery (``retry``, ``apply_async``). What a test concludes about sends comes
from the emulator's own request log, not from the task's report alone. The real worker,
Redis and a standalone sandbox are in tests/test_cluster_cli.py.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from celery.exceptions import Retry
from ledgerhelp import cancels, entry_of, example, logged_sandbox, sandbox_client
from pgserver import free_port

from cancelkit.cluster import logfilter, settings, tasks
from cancelkit.cluster.app import QUEUE, make_app
from cancelkit.cluster.enqueue import enqueue
from cancelkit.core.client import Client
from cancelkit.core.sandbox.server import Sandbox
from cancelkit.core.secrets import Scrubber
from cancelkit.errors import ConfigurationError, InvalidRequestError

ROOT = Path(__file__).resolve().parent.parent


class Queued:
    """What the tasks hand to Celery: retries and follow-ups, captured, never run."""

    def __init__(self) -> None:
        self.retries: list[float] = []
        self.follows: list[tuple[tuple[Any, ...], float]] = []


@pytest.fixture
def box() -> Iterator[tuple[Sandbox, list[str]]]:
    with logged_sandbox() as (sandbox, lines):
        yield sandbox, lines


@pytest.fixture
def app(monkeypatch: pytest.MonkeyPatch) -> Any:
    """An app on the in-memory broker (nothing leaves the process), its queue empty: the
    memory transport is one per process, shared with every earlier test's app."""
    made = make_app("memory://")
    queued_messages(made)
    return made


@pytest.fixture
def queued(app: Any, monkeypatch: pytest.MonkeyPatch) -> Queued:
    seen = Queued()
    send, follow = app.tasks[tasks.SEND], app.tasks[tasks.FOLLOW]

    def retry(*, countdown: float, max_retries: int, **_: Any) -> Retry:
        assert max_retries == tasks.MAX_RETRIES
        seen.retries.append(countdown)
        return Retry("captured", when=countdown)

    def apply_async(*, args: tuple[Any, ...], countdown: float, **_: Any) -> None:
        seen.follows.append((tuple(args), countdown))

    for task in (send, follow):
        monkeypatch.setattr(task, "retry", retry)
    monkeypatch.setattr(follow, "apply_async", apply_async)
    return seen


@pytest.fixture
def client(box: tuple[Sandbox, list[str]], tmp_path: Path) -> Iterator[Client]:
    """The worker's client: bound to the sandbox, its ledger a file of this test."""
    made = sandbox_client(box[0], ledger=f"sqlite:///{tmp_path / 'shared.sqlite3'}")
    tasks.set_client_factory(lambda: made)
    yield made
    tasks.set_client_factory(None)


def run_send(app: Any, platform: str, request: Any, retries: int = 0, **kwargs: Any) -> Any:
    """One delivery of ``cancelkit.send``; its EagerResult."""
    return app.tasks[tasks.SEND].apply(args=(platform, request), kwargs=kwargs, retries=retries)


# -- cancelkit.send ----------------------------------------------------------------------
def test_a_redelivered_send_is_held_and_never_sent_twice(
    app: Any, queued: Queued, client: Client, box: tuple[Sandbox, list[str]]
) -> None:
    _, lines = box
    first = run_send(app, "carriyo", example("carriyo"), job="j1").get()
    assert first["outcome"] == "cancelled" and first["held"] is False
    assert first["key"] == entry_of(client, example("carriyo"), "carriyo").key
    again = run_send(app, "carriyo", example("carriyo"), job="j1").get()  # the broker again
    assert again["held"] is True and again["outcome"] == "cancelled"
    assert len(cancels(lines, "carriyo")) == 1  # the emulator saw one cancel
    assert queued.retries == [] and queued.follows == []


def test_rate_limited_is_retried_after_retry_after_then_sent(
    app: Any, queued: Queued, client: Client, box: tuple[Sandbox, list[str]]
) -> None:
    sandbox, lines = box
    # Longer than the sender waits by itself (30 s): it answers RATE_LIMITED at once.
    sandbox.inject("429", "mirakl", retry_after=120)
    limited = run_send(app, "mirakl", example("mirakl"))
    assert limited.state == "RETRY"
    assert queued.retries == [120.0]  # the platform's Retry-After, not a guess
    entry = entry_of(client, example("mirakl"), "mirakl")
    assert entry.outcome == "rejected"
    # The retry (the broker delivers it 120 s later): sent, as the ledger allows.
    sent = run_send(app, "mirakl", example("mirakl"), retries=1).get()
    assert sent["outcome"] == "accepted" and sent["held"] is False
    assert len(cancels(lines, "mirakl")) == 2  # the refused one, and the one that went
    assert queued.retries == [120.0]


def test_retries_are_bounded_and_long_waits_are_not_queued(
    app: Any, queued: Queued, client: Client, box: tuple[Sandbox, list[str]]
) -> None:
    sandbox, _ = box
    sandbox.inject("429", "mirakl", retry_after=120)
    spent = run_send(app, "mirakl", example("mirakl"), retries=tasks.MAX_RETRIES).get()
    assert spent["outcome"] == "rejected"  # left as the ledger records it
    sandbox.inject("429", "mirakl", retry_after=tasks.MAX_COUNTDOWN + 1)
    daily = run_send(app, "mirakl", example("mirakl")).get()
    assert daily["outcome"] == "rejected"
    assert queued.retries == []  # neither was queued again


def test_unknown_is_recorded_and_never_retried(
    app: Any, queued: Queued, client: Client, box: tuple[Sandbox, list[str]]
) -> None:
    sandbox, lines = box
    sandbox.inject("500", "carriyo")
    unknown = run_send(app, "carriyo", example("carriyo")).get()
    assert unknown["outcome"] == "unknown"
    assert queued.retries == [] and queued.follows == []
    assert entry_of(client, example("carriyo"), "carriyo").outcome == "unknown"
    again = run_send(app, "carriyo", example("carriyo")).get()  # redelivered
    assert again["held"] is True and again["outcome"] == "unknown"
    assert len(cancels(lines, "carriyo")) == 1  # never sent a second time


def test_accepted_is_followed_no_sooner_than_the_status_interval(
    app: Any, queued: Queued, client: Client
) -> None:
    before = time.time()
    accepted = run_send(app, "mirakl", example("mirakl")).get()
    assert accepted["outcome"] == "accepted"
    [(args, countdown)] = queued.follows
    platform, tracking_id, deadline, polls = args
    assert (platform, tracking_id, polls) == ("mirakl", accepted["tracking_id"], 0)
    assert countdown >= 60.0  # Mirakl: one status call a minute per action
    assert before + tasks.FOLLOW_FOR <= deadline <= time.time() + tasks.FOLLOW_FOR
    # A held accepted send is followed again: its first follower may have died with it.
    held = run_send(app, "mirakl", example("mirakl")).get()
    assert held["held"] is True and len(queued.follows) == 2


def test_could_not_connect_is_retried_with_backoff_and_the_key_let_go(
    app: Any, queued: Queued, box: tuple[Sandbox, list[str]], tmp_path: Path
) -> None:
    dead = f"http://127.0.0.1:{free_port()}/aboutyou"
    made = sandbox_client(
        box[0], ledger=f"sqlite:///{tmp_path / 'l.sqlite3'}", aboutyou={"base_url": dead}
    )
    tasks.set_client_factory(lambda: made)
    try:
        assert run_send(app, "aboutyou", example("aboutyou")).state == "RETRY"
        assert run_send(app, "aboutyou", example("aboutyou"), retries=3).state == "RETRY"
        assert queued.retries == [2.0, 16.0]
        assert entry_of(made, example("aboutyou"), "aboutyou").outcome == "not_sent"
    finally:
        tasks.set_client_factory(None)


def test_an_outage_of_the_ledger_or_the_limiter_is_retried_and_sends_nothing(
    app: Any,
    queued: Queued,
    box: tuple[Sandbox, list[str]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    sandbox, lines = box
    down = f"postgresql://cancelkit:pw@127.0.0.1:{free_port()}/cancelkit"
    tasks.set_client_factory(lambda: sandbox_client(sandbox, ledger=down))
    try:
        assert run_send(app, "carriyo", example("carriyo")).state == "RETRY"
        tasks.set_client_factory(lambda: sandbox_client(sandbox))
        monkeypatch.setenv("CANCELKIT_LIMITER_URL", f"redis://127.0.0.1:{free_port()}/0")
        # About You's 50 a minute is kept in that (unreachable) Redis.
        assert run_send(app, "aboutyou", example("aboutyou"), retries=1).state == "RETRY"
    finally:
        tasks.set_client_factory(None)
    assert queued.retries == [2.0, 4.0]
    assert cancels(lines) == []  # neither sent anything


def test_bad_input_and_configuration_are_not_retried(
    app: Any, queued: Queued, box: tuple[Sandbox, list[str]], tmp_path: Path
) -> None:
    made = sandbox_client(
        box[0], ledger=f"sqlite:///{tmp_path / 'l.sqlite3'}", carriyo={"base_url": "ftp://x/y"}
    )
    tasks.set_client_factory(lambda: made)
    try:
        bad = {**example("mirakl"), "currency": "EURO"}
        assert run_send(app, "mirakl", bad).get()["outcome"] == "invalid"
        failed = run_send(app, "carriyo", example("carriyo"))
        assert failed.failed() and isinstance(failed.result, ConfigurationError)
        assert queued.retries == [] and queued.follows == []
    finally:
        tasks.set_client_factory(None)


# -- cancelkit.follow_status -------------------------------------------------------------
def test_follow_status_reschedules_until_final_and_records_it(
    app: Any, queued: Queued, client: Client, box: tuple[Sandbox, list[str]]
) -> None:
    sandbox, _ = box
    accepted = run_send(app, "aboutyou", example("aboutyou")).get()
    [(args, _)] = queued.follows
    follow = app.tasks[tasks.FOLLOW]
    pending = follow.apply(args=args).get()
    assert pending["outcome"] == "accepted"
    (_, _, deadline, polls), countdown = queued.follows[-1]
    assert polls == 1 and deadline == args[2]
    assert countdown == tasks.next_poll(client, "aboutyou", 1) > 0
    sandbox.advance(600)  # the batch finishes
    final = follow.apply(args=queued.follows[-1][0]).get()
    assert final["outcome"] == "cancelled"
    assert len(queued.follows) == 2  # nothing scheduled after the final answer
    entry = entry_of(client, example("aboutyou"), "aboutyou")
    assert entry.tracking_id == accepted["tracking_id"]
    assert entry.latest is not None and entry.latest["outcome"] == "cancelled"


def test_follow_status_stops_at_its_deadline(app: Any, queued: Queued, client: Client) -> None:
    accepted = run_send(app, "aboutyou", example("aboutyou")).get()
    queued.follows.clear()
    late = (
        app.tasks[tasks.FOLLOW]
        .apply(args=("aboutyou", accepted["tracking_id"], time.time() - 1, 5))
        .get()
    )
    assert late["outcome"] == "accepted" and queued.follows == []


def test_polls_stretch_by_the_platform_backoff_and_never_undercut_its_status_interval(
    client: Client,
) -> None:
    assert [tasks.next_poll(client, "mirakl", n) for n in range(3)] == [60.0] * 3
    first = float(client.settings("aboutyou")["poll_interval"])
    factor, ceiling = client.registry.platform("aboutyou").poll_backoff()  # 1.5, up to 30 s
    expected = [min(first * factor**n, ceiling) for n in range(40)]
    assert [tasks.next_poll(client, "aboutyou", n) for n in range(40)] == pytest.approx(expected)
    assert expected[-1] == ceiling > expected[1] > expected[0]


# -- the worker's client -------------------------------------------------------------------
def test_each_process_makes_its_own_client_and_never_closes_the_parents(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    made: list[Client] = []

    def factory() -> Client:
        made.append(Client(ledger=False))
        return made[-1]

    tasks.set_client_factory(factory)
    try:
        parent = tasks.worker_client()
        assert tasks.worker_client() is parent  # one per process (and thread)
        closed: list[Client] = []
        monkeypatch.setattr(Client, "close", lambda self: closed.append(self))
        me = os.getpid()
        monkeypatch.setattr(tasks.os, "getpid", lambda: me + 1)  # "after a fork"
        child = tasks.worker_client()
        assert child is not parent and made == [parent, child]
        tasks.close_clients()  # worker_process_shutdown
        assert closed == [child]  # the parent's connections are left alone
    finally:
        monkeypatch.undo()
        tasks.set_client_factory(None)


# -- enqueue ----------------------------------------------------------------------------
def queued_messages(app: Any) -> list[Any]:
    with app.connection_for_read() as connection:
        queue = connection.SimpleQueue(QUEUE)
        found = []
        while queue.qsize():
            message = queue.get(timeout=1)
            found.append(message)
            message.ack()
        queue.close()
        return found


def test_enqueue_checks_first_and_keeps_money_exact(app: Any) -> None:
    with pytest.raises(InvalidRequestError) as refused:
        enqueue("mirakl", {**example("mirakl"), "currency": "EURO"}, app=app)
    assert refused.value.errors[0].path == "currency"
    assert queued_messages(app) == []  # bad input is never queued
    request = example("mirakl")
    request["lines"][0]["price"] = Decimal("15.00")  # as JSON's 15.00 is read
    task_id = enqueue("mirakl", request, job="j9", app=app)
    [message] = queued_messages(app)
    assert message.headers["task"] == tasks.SEND and message.headers["id"] == task_id
    (platform, body, job, key), _, _ = message.decode()
    assert (platform, job) == ("mirakl", "j9") and key.startswith("sha256:")
    price = body["lines"][0]["price"]
    assert isinstance(price, Decimal) and str(price) == "15.00"  # never through float


def test_an_unreachable_broker_names_broker_url_with_the_password_masked() -> None:
    app = make_app(f"redis://:hunter2hunter2@127.0.0.1:{free_port()}/0")
    with pytest.raises(ConfigurationError) as failed:
        enqueue("carriyo", example("carriyo"), app=app)
    assert str(failed.value).startswith("broker_url redis://:***@127.0.0.1:")
    assert "hunter2" not in str(failed.value)


# -- settings ---------------------------------------------------------------------------
def test_broker_url_from_the_environment_then_the_config_file_then_the_default(
    tmp_path: Path,
) -> None:
    config = tmp_path / "config.toml"
    config.write_text('[default]\nbroker_url = "amqp://u:pw@mq.internal//"\n')
    assert settings.broker_url(env={}, config_path=config)[0] == "amqp://u:pw@mq.internal//"
    env = {"CANCELKIT_BROKER_URL": "redis://queue:6379/2"}
    assert settings.broker_url(env=env, config_path=config) == (
        "redis://queue:6379/2",
        "broker_url (from $CANCELKIT_BROKER_URL)",
    )
    assert settings.broker_url(env={})[0] == settings.DEFAULT_BROKER_URL
    config.write_text('[default]\nbroker_url = ""\n')
    with pytest.raises(ConfigurationError, match=r"\[default\] broker_url: must not be empty"):
        settings.broker_url(env={}, config_path=config)
    with pytest.raises(ConfigurationError, match="CANCELKIT_VISIBILITY_TIMEOUT"):
        settings.visibility_timeout({"CANCELKIT_VISIBILITY_TIMEOUT": "soon"})


def test_the_app_keeps_tasks_until_they_ran_and_only_speaks_json() -> None:
    app = make_app("redis://127.0.0.1:1/0", env={"CANCELKIT_VISIBILITY_TIMEOUT": "7200"})
    conf = app.conf
    assert conf.task_acks_late and conf.task_reject_on_worker_lost
    assert conf.worker_prefetch_multiplier == 1
    assert conf.accept_content == ["json"] and conf.task_serializer == "json"
    assert conf.broker_transport_options["visibility_timeout"] == 7200
    assert conf.broker_connection_max_retries is None  # retried forever
    assert set(app.tasks) >= {tasks.SEND, tasks.FOLLOW}


# -- logs and the facade ----------------------------------------------------------------
def test_worker_log_handlers_mask_secrets() -> None:
    Scrubber().add("s3cr3t-broker-token")
    logger = logging.getLogger("celery.app.trace")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Keep()
    logger.addHandler(handler)
    http_log = logging.getLogger("cancelkit.http")
    level = http_log.level
    try:
        logfilter._after_setup(logger=logger, loglevel="INFO")
        logger.error("task failed: token=%s", "s3cr3t-broker-token")
        quiet = http_log.level
    finally:
        logger.removeHandler(handler)
        http_log.setLevel(level)  # other tests' -v must see the wire log
    assert records == ["task failed: token=***"]
    assert quiet == logging.WARNING  # a worker shows the wire log at DEBUG only


def test_the_facade_never_shadows_the_real_celery() -> None:
    # From a checkout, ``python -c`` puts the repository root (the package) first on the
    # path, where cancelkit's own celery.py lies.
    code = "import celery; print(celery.__file__); print(celery.Celery.__module__)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    path, module = done.stdout.split()
    assert Path(path).resolve() != (ROOT / "celery.py").resolve()
    assert Path(path).name == "__init__.py" and module == "celery.app.base"
    facade = subprocess.run(
        [sys.executable, "-c", "import cancelkit.celery as c; print(c.app.main, c.send.name)"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert facade.stdout.split() == ["cancelkit", tasks.SEND], facade.stderr
