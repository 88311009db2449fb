"""Reproduction feeds a handler exactly what it was given live (issue 12).

A received message is logged as JSON and the live handler is given that JSON decoded to
the handler's message type, the same decoding reproduction does from the log: an int in
a float field, a tuple in an ``Any`` field, a ``dict[int, str]`` are then the same object
live and in reproduction. Every recorded failure is reported by reproduction, whatever
its type, including BaseExceptions (SystemExit, KeyboardInterrupt, GeneratorExit), and
``actorlog reproduce --json`` always prints JSON.

The plugin (tests/replay_plugins/fidelity_plugin.py) raises ``ValueError(repr(message))``,
so "reproduced" means "given an identical message".
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import actorlog.actors.router
from actorlog.actors import ActorSystem, ErrorPolicy, EscalationError, StartError
from actorlog.events import EncodeError, FailureRaised, MessageReceived, PluginRegistered, PluginStarted
from actorlog.replay.reproduce import Reproduction, reproduce
from actorlog.store import EventStore
from replay_helpers import PLUGINS_DIR, count, fresh_log, invoke, read, run_cli, wait_until

import fidelity_plugin  # noqa: E402,I001 - importable once replay_helpers put PLUGINS_DIR on sys.path
from fidelity_plugin import Leave, Loose, Maybe, Measured, Point, Shaped, Table

CALM = ErrorPolicy(severities={SystemExit: "low", KeyboardInterrupt: "low", GeneratorExit: "low"})
"""BaseExceptions continue instead of escalating, so the plugin fails again later in the same life."""


def reproduced(log: Path | EventStore, seq: int) -> Reproduction:
    """`reproduce`, failing the test (instead of the session) if it lets any exception out."""
    try:
        return reproduce(log if isinstance(log, EventStore) else str(log), seq)
    except BaseException as exc:  # noqa: BLE001 - a KeyboardInterrupt must not end the pytest session
        pytest.fail(f"reproduce({seq}) raised {type(exc).__name__}: {exc!r}")


def failures(path: Path) -> list[Any]:
    return [r for r in read(path, kinds=["failure.raised"])]


def ask_failing(system: ActorSystem, message: Any) -> str:
    """Ask the strict plugin; return the message of the ValueError its handler raised."""
    with pytest.raises(ValueError) as caught:
        system.ask("strict", message, timeout=10)
    return str(caught.value)


def record(path: Path, *messages: Any, log_messages: bool | None = None) -> list[str]:
    """Ask the strict plugin each message (each fails); the live failure messages, in order."""
    with ActorSystem(path) as system:
        system.register("strict", fidelity_plugin.Strict, log_messages=log_messages)
        system.start()
        live = [ask_failing(system, message) for message in messages]
        wait_until(lambda: count(system, "recovery.decided") == len(messages), what="every failure decided")
    return live


def assert_reproduced(outcome: Reproduction, recorded: FailureRaised) -> None:
    assert outcome.reproduced, outcome.notes
    assert (outcome.exc_type, outcome.message) == (recorded.exc_type, recorded.message)
    assert outcome.failed_at_seq == recorded.trigger_seq


# -- the message types the issue names -------------------------------------------------------------


def test_an_int_in_a_float_field_is_the_same_float_live_and_in_reproduction(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    live = record(path, Measured(value=1), Measured(value=2.5))
    for failure in failures(path):
        assert_reproduced(reproduced(path, failure.seq), failure.event)
    assert live == [repr(Measured(value=1.0)), repr(Measured(value=2.5))]  # the handler got the logged float


def test_a_tuple_in_an_any_field_is_the_same_list_live_and_in_reproduction(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    live = record(path, Loose(value=(1, "a", (2.0, None))), Loose(value={"k": (1,), "n": 3}))
    for failure in failures(path):
        assert_reproduced(reproduced(path, failure.seq), failure.event)
    assert live == [repr(Loose(value=[1, "a", [2.0, None]])), repr(Loose(value={"k": [1], "n": 3}))]


def test_a_dict_with_int_keys_is_reproduced(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    message = Table(rows={1: "one", -20: "minus twenty", 3: ""})
    assert record(path, message) == [repr(message)]
    (failure,) = failures(path)
    assert_reproduced(reproduced(path, failure.seq), failure.event)


def test_cli_reproduces_a_dict_with_int_keys_as_json(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    record(path, Table(rows={7: "seven"}))
    (failure,) = failures(path)
    result = invoke("reproduce", path, failure.seq, "--import-path", PLUGINS_DIR, "--json")
    assert result.exit_code == 0, (result.stdout, result.stderr)
    document = json.loads(result.stdout)
    assert document["reproduced"] is True and document["message"] == repr(Table(rows={7: "seven"}))


def test_optional_nested_literal_tuple_and_bytes_fields_are_delivered_exactly(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    messages = [
        Maybe(), Maybe(count=0, name="null"),
        Shaped(point=Point(x=1, label="a"), path=[Point(x=-2, label="")], mode="slow", pair=(3, "c"), data=b"\x00\xff"),
    ]
    assert record(path, *messages) == [repr(message) for message in messages]  # nothing lost on the way
    for failure in failures(path):
        assert_reproduced(reproduced(path, failure.seq), failure.event)


def test_unlogged_messages_are_delivered_as_sent(tmp_path: Path) -> None:
    path = tmp_path / "quiet.db"
    sent = [Loose(value=(1, 2)), Measured(value=3)]
    assert record(path, *sent, log_messages=False) == [repr(message) for message in sent]
    assert read(path, kinds=["message.received"]) == []


def test_the_logged_payload_keeps_its_json_shape(tmp_path: Path) -> None:
    """The stored ``message`` is the JSON object the message encodes to, as before: readers
    (``json_extract``, ``record.event.message["kind"]``) see the same document."""
    path = tmp_path / "app.db"
    sent = [Measured(value=4), Table(rows={5: "x"}), Loose(value=(None, "null"))]
    record(path, *sent)
    received = read(path, kinds=["message.received"])
    assert [r.event.message for r in received] == [json.loads(msgspec.json.encode(m)) for m in sent]
    assert [r.event.message for r in received] == [
        msgspec.json.decode(msgspec.json.encode(msgspec.to_builtins(m))) for m in sent
    ]
    with EventStore.open_readonly(path) as store:
        payloads = [json.loads(row[7]) for row in store.rows() if row[4] == "message.received"]
    assert [p["message"] for p in payloads] == [r.event.message for r in received]
    assert all(set(p) == {"kind", "recipient", "sender", "message", "seed"} for p in payloads)


def test_an_old_log_with_builtins_payloads_reproduces(tmp_path: Path) -> None:
    """A log written by earlier code (``message`` from ``msgspec.to_builtins``) reproduces, int keys included."""
    path = tmp_path / "old.db"
    message = Table(rows={1: "a"})
    with EventStore(path) as store:
        store.append(PluginRegistered(plugin="strict", class_path="fidelity_plugin:Strict", plugin_version="1.0"),
                     actor="supervisor")
        store.append(PluginStarted(plugin="strict"), actor="supervisor")
        ticket = store.append(
            MessageReceived(recipient="strict", sender="app", message=msgspec.to_builtins(message), seed=5),
            actor="strict", correlation="c1",
        )
        store.append(
            FailureRaised(plugin="strict", exc_type="builtins.ValueError", message=repr(message), traceback="..."),
            actor="strict", correlation="c1", refs={"trigger_seq": ticket},
        )
    (failure,) = failures(path)
    assert_reproduced(reproduced(path, failure.seq), failure.event)


def test_a_logged_message_the_current_code_cannot_decode_is_skipped_with_a_note(tmp_path: Path) -> None:
    """A log from elsewhere (or from code whose message type changed since) holds a message
    that does not decode as the handler's type: reproduction says so instead of raising."""
    path = tmp_path / "foreign.db"
    with EventStore(path) as store:
        store.append(PluginRegistered(plugin="strict", class_path="fidelity_plugin:Strict", plugin_version="1.0"),
                     actor="supervisor")
        store.append(PluginStarted(plugin="strict"), actor="supervisor")
        ticket = store.append(
            MessageReceived(recipient="strict", sender="app", message={"kind": "t12.table", "rows": {"x": "a"}}),
            actor="strict",
        )
        store.append(FailureRaised(plugin="strict", exc_type="builtins.ValueError", message="?", traceback="..."),
                     actor="strict", refs={"trigger_seq": ticket})
    (failure,) = failures(path)
    outcome = reproduced(path, failure.seq)
    assert not outcome.reproduced and outcome.messages_replayed == 0
    assert any(f"seq {ticket.seq}" in note and "does not decode" in note and "Table" in note for note in outcome.notes)
    result = invoke("reproduce", path, failure.seq, "--import-path", PLUGINS_DIR, "--json")
    assert result.exit_code == 1 and json.loads(result.stdout)["reproduced"] is False


# -- messages that cannot be logged faithfully ------------------------------------------------------


def test_a_message_with_a_nan_is_refused_and_frees_its_inbox_slot(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """JSON has no NaN: such a message is refused (the asker gets EncodeError, a tell leaves
    ``message.refused``), and the plugin goes on taking messages."""
    monkeypatch.setattr(actorlog.actors.router, "INBOX_TIMEOUT", 2.0)  # a leaked slot fails fast
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("strict", fidelity_plugin.Strict, max_inbox=1)
        system.start()
        with pytest.raises(EncodeError, match="t12.measured.*NaN"):
            system.ask("strict", Measured(value=math.nan), timeout=10)
        system.tell("strict", Loose(value=[math.inf]))
        assert ask_failing(system, Maybe(count=1)) == repr(Maybe(count=1))
        wait_until(lambda: count(system, "message.refused") == 1, what="the tell refused")
    refused = read(path, kinds=["message.refused"])
    assert [(r.event.message_kind, r.event.recipient) for r in refused] == [("t12.loose", "strict")]
    assert "NaN or infinite" in refused[0].event.reason
    assert [r.event.message["kind"] for r in read(path, kinds=["message.received"])] == ["t12.maybe"]


def test_a_message_that_does_not_match_its_own_type_is_refused(tmp_path: Path) -> None:
    """Structs are not validated when built; one that its own type cannot read back (a str in
    an int field) would reach the handler in a shape reproduction cannot give it."""
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("strict", fidelity_plugin.Strict)
        system.start()
        with pytest.raises(TypeError, match=r"t12\.maybe.*\$\.count"):
            system.ask("strict", Maybe(count="three"), timeout=10)  # type: ignore[arg-type]
        assert ask_failing(system, Maybe(count=3)) == repr(Maybe(count=3))
    assert [r.event.message["count"] for r in read(path, kinds=["message.received"])] == [3]


# -- failures of any type --------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["SystemExit", "KeyboardInterrupt", "GeneratorExit"])
def test_base_exceptions_and_the_failures_after_them_are_reproduced(tmp_path: Path, how: str) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path, error_policy=CALM) as system:
        system.register("strict", fidelity_plugin.Strict)
        system.start()
        system.tell("strict", Leave(how=how))  # type: ignore[arg-type]
        assert ask_failing(system, Measured(value=2.5)) == repr(Measured(value=2.5))
        system.tell("strict", Leave(how=how))  # type: ignore[arg-type]
        wait_until(lambda: count(system, "recovery.decided") == 3, what="every failure decided")
    recorded = failures(path)
    assert [f.event.exc_type for f in recorded] == [f"builtins.{how}", "builtins.ValueError", f"builtins.{how}"]
    for failure in recorded:
        outcome = reproduced(path, failure.seq)
        assert_reproduced(outcome, failure.event)
        short = failure.event.exc_type.rsplit(".", 1)[-1]
        assert outcome.traceback and outcome.traceback.splitlines()[-1].startswith(f"{short}: ")


def test_an_escalated_system_exit_is_reproduced(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with pytest.raises(EscalationError):
        with ActorSystem(path) as system:
            system.register("strict", fidelity_plugin.Strict)
            system.start()
            system.tell("strict", Leave(how="SystemExit"))
            wait_until(lambda: system.escalation is not None, what="escalation")
    (failure,) = failures(path)
    assert failure.event.exc_type == "builtins.SystemExit"
    assert_reproduced(reproduced(path, failure.seq), failure.event)


def test_an_on_start_that_raises_system_exit_is_reproduced(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with ActorSystem(path) as system:
        system.register("strict", fidelity_plugin.StartsByLeaving)
        with pytest.raises(StartError):
            system.start()
    (failure,) = failures(path)
    assert (failure.event.exc_type, failure.event.trigger_seq) == ("builtins.SystemExit", None)
    outcome = reproduced(path, failure.seq)
    assert outcome.reproduced and outcome.message == "on_start left", outcome
    assert outcome.failed_at_seq is None and outcome.messages_replayed == 0
    result = invoke("reproduce", path, failure.seq, "--import-path", PLUGINS_DIR)
    assert result.exit_code == 0, (result.stdout, result.stderr)
    assert "--- reproduced: builtins.SystemExit outside any message (start, stop or health check)" in result.stdout


@pytest.mark.parametrize("how", ["SystemExit", "KeyboardInterrupt"])
def test_cli_reproduce_json_always_prints_json(tmp_path: Path, how: str) -> None:
    """In a subprocess: a SystemExit or KeyboardInterrupt escaping the command would be its exit."""
    path = tmp_path / "app.db"
    with ActorSystem(path, error_policy=CALM) as system:
        system.register("strict", fidelity_plugin.Strict)
        system.start()
        system.tell("strict", Leave(how=how))  # type: ignore[arg-type]
        ask_failing(system, Measured(value=1.5))
        wait_until(lambda: count(system, "recovery.decided") == 2, what="every failure decided")
    for failure in failures(path):
        result = run_cli("reproduce", path, failure.seq, "--import-path", PLUGINS_DIR, "--json", cwd=tmp_path)
        assert result.returncode == 0, (result.stdout, result.stderr)
        document = json.loads(result.stdout)
        assert document["reproduced"] is True and document["exc_type"] == failure.event.exc_type
        text = run_cli("reproduce", path, failure.seq, "--import-path", PLUGINS_DIR, cwd=tmp_path)
        assert text.returncode == 0 and text.stdout.startswith("REPRODUCED"), (text.stdout, text.stderr)
        assert f"--- reproduced: {failure.event.exc_type}" in text.stdout


# -- the property ----------------------------------------------------------------------------------

FINITE = st.floats(allow_nan=False, allow_infinity=False)
JSONISH = st.recursive(
    st.none() | st.booleans() | st.integers() | FINITE | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)
"""What an ``Any`` field may hold: JSON values, and tuples (which JSON makes lists)."""


def field_values(annotation: Any) -> st.SearchStrategy[Any]:
    """st.from_type for a field, except: a float field gets ints too (they are accepted
    there) and no NaN or infinity (refused: JSON cannot hold them); an Any field gets
    JSON-like values with tuples."""
    if annotation is float:
        return st.integers(-(2**63), 2**63) | FINITE
    if annotation is Any:
        return JSONISH
    return st.from_type(annotation)


def messages_of(cls: type[msgspec.Struct]) -> st.SearchStrategy[Any]:
    return st.builds(cls, **{field.name: field_values(field.type) for field in msgspec.structs.fields(cls)})


MESSAGES = st.lists(st.one_of([messages_of(t) for t in fidelity_plugin.MESSAGE_TYPES]), min_size=1, max_size=4)


@settings(max_examples=25, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])
@given(sent=MESSAGES)
def test_every_handler_message_type_round_trips_exactly(tmp_path: Path, sent: list[Any]) -> None:
    """For messages of every type the plugin handles, generated from their field types, the
    handler live is given what the logged JSON decodes to, and reproduction gives it the same:
    each failure is reproduced with the identical message."""
    path = fresh_log(tmp_path)
    live = record(path, *sent)
    for message, text in zip(sent, live):
        assert text == repr(msgspec.json.decode(msgspec.json.encode(message), type=type(message)))
        if not isinstance(message, (Measured, Loose)):  # nothing to coerce: the message arrives as sent
            assert text == repr(message)
    with EventStore.open_readonly(path) as store:
        recorded = [r for r in store.events(kinds=["failure.raised"])]
        assert [r.event.message for r in recorded] == live
        for failure in recorded:
            assert_reproduced(reproduced(store, failure.seq), failure.event)
