"""A failure is always recorded, whatever the size of its texts (issue 13).

A handler failure whose exception message is longer than about half of the store's
``max_payload_bytes`` (``failure.raised`` holds it twice: as ``message`` and inside
``traceback``) used to be recorded not at all: no ``failure.raised``, ``failure.assessed``
or ``recovery.decided``, no decision (no restart for a ``MemoryError``), the asker got
the store's ``PayloadTooLargeError``, and later failures of the same plugin lifetime could
no longer be reproduced. Now the texts of failure events are cut (in the middle, with a
marker saying how much) to ``FAILURE_TEXT_BYTES`` or less when the store's limit leaves
less room, the events say ``truncated=True``, and the error policy and the asker get the
real exception.
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from actor_helpers import Recorder, live_events, read_log, share, shared, wait_until
from actorlog.actors import ActorSystem, ErrorPolicy, Failure, Health, Plugin, StartError, handler
from actorlog.actors.tracebacks import FAILURE_TEXT_BYTES, cut_text, encodable, is_cut_of
from actorlog.events import Codec, Event, FailureAssessed, FailureRaised, Message, TypeRegistry, default_codec, register
from actorlog.replay.reproduce import reproduce
from actorlog.store import EventStore
from error_helpers import make_exception

HUGE = 2_000_000
"""Characters of the huge exception messages: twice the default max_payload_bytes."""


@register
class Explode(Message, tag="t13.explode", frozen=True):
    """Raise the exception named ``error`` (a key of error_helpers.EXCEPTIONS) with ``fill * size``
    as its text; with ``surrogate``, the fill is a lone surrogate (which the message itself
    could not carry: it is logged as received, and UTF-8 cannot hold it)."""

    error: str
    size: int
    fill: str = "x"
    surrogate: bool = False


@register
class Which(Message, tag="t13.which", frozen=True):
    """Answer the instance number (a restart makes a new instance)."""


@register
class RaiseUnprintable(Message, tag="t13.raise_unprintable", frozen=True):
    """Raise an `Unprintable`."""


class Unprintable(Exception):
    """An exception whose ``__str__`` raises."""

    def __str__(self) -> str:
        raise RuntimeError("this exception cannot be printed")


_instances = itertools.count(1)


class Exploding(Plugin):
    """Raises huge exceptions on demand; config ``raised`` names a shared Recorder of what it raised."""

    def __init__(self, context: Any, config: Any) -> None:
        super().__init__(context, config)
        self.instance = next(_instances)

    @handler
    def explode(self, message: Explode) -> None:
        exc = make_exception(message.error, ("\udcff" if message.surrogate else message.fill) * message.size)
        key = self.config.get("raised")
        if key:
            shared(key).append(exc)
        raise exc

    @handler
    def which(self, message: Which) -> int:
        return self.instance

    @handler
    def unprintable(self, message: RaiseUnprintable) -> None:
        raise Unprintable()


def story_of(path: Path, correlation: str | None = None) -> dict[str, list[Any]]:
    """The failure.raised, failure.assessed and recovery.decided records of the log, by kind."""
    records = read_log(path, kinds=["failure.raised", "failure.assessed", "recovery.decided"])
    if correlation is not None:
        records = [r for r in records if r.correlation == correlation]
    by_kind: dict[str, list[Any]] = {"failure.raised": [], "failure.assessed": [], "recovery.decided": []}
    for record in records:
        by_kind[record.kind].append(record)
    return by_kind


def payload_sizes(path: Path) -> list[int]:
    with EventStore.open_readonly(path) as store:
        return [row[0] for row in store.db.execute("SELECT length(CAST(payload AS BLOB)) FROM events")]


def assert_cut(text: str, fill: str, limit: int) -> None:
    """``text`` is a cut of a longer text: under ``limit`` bytes as JSON, keeping both ends, saying so."""
    assert len(text.encode("utf-8", "backslashreplace")) <= limit
    assert "characters cut" in text


def test_a_huge_memory_error_is_recorded_decided_and_restarts_the_plugin(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    raised = Recorder()
    with ActorSystem(path) as system:  # the default policy: MemoryError is high, high restarts
        system.register("big", Exploding, config={"raised": share(raised)})
        system.start()
        first = system.ask("big", Which(), timeout=10)
        with pytest.raises(MemoryError) as caught:
            system.ask("big", Explode(error="MemoryError", size=HUGE), timeout=30)
        assert caught.value is raised.items[0]  # the asker gets the handler's own exception
        assert len(str(caught.value)) == HUGE
        wait_until(lambda: live_events(system, kinds=["plugin.restarted"]), what="big restarted")
        assert system.ask("big", Which(), timeout=10) != first  # a fresh instance handles messages
        errors = system.error_statistics()
    assert errors.total_errors == 1
    assert errors.error_types == {"builtins.MemoryError": 1}
    story = story_of(path)
    [failure] = story["failure.raised"]
    [assessed] = story["failure.assessed"]
    [decided] = story["recovery.decided"]
    event: FailureRaised = failure.event
    assert (event.plugin, event.exc_type, event.truncated) == ("big", "builtins.MemoryError", True)
    assert event.message.startswith("x" * 1000) and event.message.endswith("x" * 1000)
    assert_cut(event.message, "x", FAILURE_TEXT_BYTES)
    assert event.traceback.startswith("Traceback (most recent call last):\n")
    assert "raise exc" in event.traceback and event.traceback.endswith("x" * 100 + "\n")
    assert_cut(event.traceback, "x", FAILURE_TEXT_BYTES)
    verdict: FailureAssessed = assessed.event
    assert (verdict.failure_seq, verdict.severity, verdict.truncated) == (failure.seq, "high", True)
    assert_cut(verdict.message, "x", FAILURE_TEXT_BYTES)
    assert (decided.event.failure_seq, decided.event.action) == (failure.seq, "restart")
    assert decided.correlation == failure.correlation == assessed.correlation
    [restarted] = read_log(path, kinds=["plugin.restarted"])
    assert restarted.event.plugin == "big"
    assert max(payload_sizes(path)) <= 3 * FAILURE_TEXT_BYTES


@pytest.mark.parametrize("fill", ["x", "\u00e9", "\x00", "\U0001f600", '"'], ids=ascii)
def test_the_policy_and_the_asker_see_the_real_exception_whatever_its_text(tmp_path: Path, fill: str) -> None:
    path = tmp_path / "app.db"
    seen: list[BaseException] = []
    policy = ErrorPolicy()

    @policy.handler(ValueError)
    def look(failure: Failure) -> None:
        seen.append(failure.exception)  # no decision: the default (continue) applies

    raised = Recorder()
    with ActorSystem(path, error_policy=policy) as system:
        system.register("big", Exploding, config={"raised": share(raised)})
        system.start()
        with pytest.raises(ValueError) as caught:
            system.ask("big", Explode(error="ValueError", size=HUGE, fill=fill), timeout=30)
        wait_until(lambda: live_events(system, kinds=["recovery.decided"]), what="a decision")
        assert system.ask("big", Which(), timeout=10) >= 1  # it continued
    [exc] = raised.items
    assert caught.value is exc and seen == [exc]  # the real exception object, its text untouched
    assert str(exc) == fill * HUGE
    story = story_of(path)
    assert [len(story[kind]) for kind in story] == [1, 1, 1]
    raised_event: FailureRaised = story["failure.raised"][0].event
    assert raised_event.truncated and raised_event.message.startswith(fill * 10)
    assert story["recovery.decided"][0].event.action == "continue"
    assert max(payload_sizes(path)) <= 3 * FAILURE_TEXT_BYTES


@pytest.mark.parametrize("size", [10, HUGE])
def test_a_message_with_a_lone_surrogate_is_recorded(tmp_path: Path, size: int) -> None:
    """A str holding a lone surrogate (as os.fsdecode gives for undecodable file names)
    cannot be encoded as UTF-8: it is recorded with the surrogate escaped."""
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("big", Exploding)
        system.start()
        with pytest.raises(ValueError):
            system.ask("big", Explode(error="ValueError", size=size, surrogate=True), timeout=30)
        wait_until(lambda: live_events(system, kinds=["recovery.decided"]), what="a decision")
    story = story_of(path)
    assert [len(story[kind]) for kind in story] == [1, 1, 1]
    event: FailureRaised = story["failure.raised"][0].event
    assert event.message.startswith("\\udcff" * 3)
    assert event.truncated is (size == HUGE)


@pytest.mark.parametrize("max_payload_bytes", [1024, 4096, 65_536])
def test_failure_texts_fit_a_store_with_a_small_payload_limit(tmp_path: Path, max_payload_bytes: int) -> None:
    path = tmp_path / "small.db"
    with EventStore(path, max_payload_bytes=max_payload_bytes) as store:
        with ActorSystem(store) as system:
            system.register("big", Exploding)
            system.start()
            first = system.ask("big", Which(), timeout=10)
            with pytest.raises(ValueError):
                system.ask("big", Explode(error="ValueError", size=HUGE), timeout=30)
            with pytest.raises(MemoryError):
                system.ask("big", Explode(error="MemoryError", size=HUGE), timeout=30)
            wait_until(lambda: live_events(system, kinds=["plugin.restarted"]), what="big restarted")
            assert system.ask("big", Which(), timeout=10) != first
            assert system.escalation is None
    story = story_of(path)
    assert [len(story[kind]) for kind in story] == [2, 2, 2]
    assert [r.event.action for r in story["recovery.decided"]] == ["continue", "restart"]
    assert all(r.event.truncated for r in story["failure.raised"] + story["failure.assessed"])
    assert max(payload_sizes(path)) <= max_payload_bytes


def test_a_later_failure_of_the_same_lifetime_is_reproduced(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("big", Exploding)
        system.start()
        for message in (Explode(error="ValueError", size=HUGE), Explode(error="ValueError", size=5, fill="y")):
            with pytest.raises(ValueError):
                system.ask("big", message, timeout=30)
        wait_until(lambda: len(live_events(system, kinds=["recovery.decided"])) == 2, what="two decisions")
    huge, small = story_of(path)["failure.raised"]
    outcome = reproduce(path, small.seq)
    assert outcome.reproduced, outcome.notes
    assert outcome.messages_replayed == 2
    outcome = reproduce(path, huge.seq)  # and the cut one itself: its message matches the cut
    assert outcome.reproduced, outcome.notes


# -- the new field and old logs ------------------------------------------------------------------------------


class FailureRaisedBefore(Event, tag="failure.raised", frozen=True):
    """``failure.raised`` as an older actorlog defines it: version 1, without ``truncated``."""

    plugin: str
    exc_type: str
    message: str
    traceback: str
    severity: str | None = None
    trigger_seq: int | None = None


def test_truncated_is_an_optional_field_old_and_new_readers_agree_on() -> None:
    """``truncated`` has a default, so the kind stays at version 1: old rows read as not cut,
    and a reader without the field (an older actorlog) still reads new rows."""
    old_payload = (
        b'{"kind":"failure.raised","plugin":"p","exc_type":"builtins.ValueError","message":"m",'
        b'"traceback":"t","severity":null,"trigger_seq":3}'
    )
    event = default_codec.decode("failure.raised", 1, old_payload)
    assert isinstance(event, FailureRaised) and event.truncated is False and event.trigger_seq == 3
    assessed = default_codec.decode(
        "failure.assessed", 1,
        b'{"kind":"failure.assessed","plugin":"p","exc_type":"builtins.ValueError","message":"m",'
        b'"severity":"medium","failed_at":1.5,"failure_seq":3}',
    )
    assert isinstance(assessed, FailureAssessed) and assessed.truncated is False
    kind, version, payload = default_codec.encode(
        FailureRaised(plugin="p", exc_type="builtins.ValueError", message="m", traceback="t", truncated=True)
    )
    assert (kind, version) == ("failure.raised", 1)
    older = TypeRegistry()
    older.register(FailureRaisedBefore)
    read_by_older = Codec(older).decode(kind, version, payload)
    assert isinstance(read_by_older, FailureRaisedBefore) and read_by_older.message == "m"


def test_an_exception_whose_str_raises_is_recorded_and_decided(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("big", Exploding)
        system.start()
        with pytest.raises(Unprintable):
            system.ask("big", RaiseUnprintable(), timeout=10)
        wait_until(lambda: live_events(system, kinds=["recovery.decided"]), what="a decision")
        assert system.escalation is None
        assert system.ask("big", Which(), timeout=10) >= 1  # it continued (low severity)
    story = story_of(path)
    assert [len(story[kind]) for kind in story] == [1, 1, 1]
    raised: FailureRaised = story["failure.raised"][0].event
    assert raised.exc_type.endswith("Unprintable") and "__str__ raised" in raised.message
    assert story["recovery.decided"][0].event.action == "continue"


# -- the other failure paths: start, health check, task ---------------------------------------------------------------


class FailsToStart(Plugin):
    def on_start(self) -> None:
        raise ValueError("s" * HUGE)


class FailsItsHealthCheck(Plugin):
    def health_check(self) -> bool:
        raise ValueError("h" * HUGE)


class ReportsUnhealthy(Plugin):
    def health_check(self) -> Health:
        return Health(False, "u" * HUGE)


def test_a_start_failing_with_a_huge_message_is_recorded_and_reported(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("starter", FailsToStart)
        with pytest.raises(StartError) as caught:
            system.start()
    assert isinstance(caught.value.__cause__, ValueError) and len(str(caught.value.__cause__)) == HUGE
    [failure] = read_log(path, kinds=["failure.raised"])
    assert failure.event.truncated
    [failed] = read_log(path, kinds=["plugin.failed"])
    assert failed.event.plugin == "starter" and failed.event.exc_type == "builtins.ValueError"
    assert failed.event.reason.startswith("on_start raised: sss") and "characters cut" in failed.event.reason
    assert max(payload_sizes(path)) <= 3 * FAILURE_TEXT_BYTES


@pytest.mark.parametrize("cls", [FailsItsHealthCheck, ReportsUnhealthy], ids=lambda cls: cls.__name__)
def test_a_health_check_with_a_huge_detail_is_recorded_and_decided(tmp_path: Path, cls: type[Plugin]) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("checked", cls)
        system.start()
        health = system.check_health("checked")["checked"]
        assert not health.healthy and len(health.detail) >= HUGE  # the live answer keeps the whole text
        wait_until(lambda: live_events(system, kinds=["recovery.decided"]), what="a decision")
    [checked] = read_log(path, kinds=["plugin.health_checked"])
    assert not checked.event.healthy and "characters cut" in checked.event.detail
    story = story_of(path)
    assert [len(story[kind]) for kind in story] == [1, 1, 1]
    assert max(payload_sizes(path)) <= 3 * FAILURE_TEXT_BYTES


def test_a_task_giving_up_with_a_huge_message_is_recorded_and_reraised(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:

        @system.retry(max_retries=1, base=0.001, sleep=lambda delay: None)
        def task() -> None:
            raise ValueError("t" * HUGE)

        with pytest.raises(ValueError) as caught:
            task()
    assert type(caught.value) is ValueError and len(str(caught.value)) == HUGE
    assert len(read_log(path, kinds=["failure.raised"])) == 2
    [gave_up] = read_log(path, kinds=["task.gave_up"])
    assert gave_up.event.attempts == 2 and "characters cut" in gave_up.event.message
    assert max(payload_sizes(path)) <= 3 * FAILURE_TEXT_BYTES


# -- the cut itself ---------------------------------------------------------------------------------------------------


@settings(max_examples=300, deadline=None)
@given(
    text=st.text(st.characters(blacklist_categories=[]), max_size=3000),  # lone surrogates too
    limit=st.integers(min_value=2, max_value=4000),
)
def test_a_cut_text_fits_its_limit_and_matches_the_text_it_was_cut_from(text: str, limit: int) -> None:
    kept, cut = cut_text(text, limit)
    assert len(msgspec.json.encode(kept)) <= limit
    if kept == "" and text:
        assert cut and limit < 64  # only when not even the marker fits
    else:
        assert is_cut_of(kept, text)
    if not cut:
        assert kept == encodable(text)
    elif kept:
        assert "characters cut" in kept and not is_cut_of(kept, text + "!")
