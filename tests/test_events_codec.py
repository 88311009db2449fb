"""The codec: registered types to JSON payloads and back, and what it refuses."""

from __future__ import annotations

import json
import math
from typing import Any, ClassVar, Literal

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from strategies import struct_strategy

from actorlog.events import (
    BUILTIN_EVENTS,
    ActorlogError,
    Codec,
    CounterIncremented,
    DecodeError,
    EncodeError,
    Event,
    GaugeSet,
    HistogramObserved,
    Message,
    MessageReceived,
    PluginStarted,
    RecoveryDecided,
    TypeRegistry,
    UnknownEvent,
    UnknownKindError,
    default_codec,
    default_registry,
    tag_of,
)


class Everything(Event, tag="tests.codec.everything", frozen=True):
    """A user event using every field shape the codec promises to carry."""

    version: ClassVar[int] = 1
    text: str
    number: int
    ratio: float
    flag: bool
    nothing: None
    level: Literal["a", "b", "c"]
    either: int | str
    maybe: float | None
    names: tuple[str, ...]
    labels: dict[str, str]
    extra: dict[str, Any]
    defaulted: str = "x"


class Ping(Message, tag="tests.codec.ping", frozen=True):
    """A user message type: messages go through the same codec."""

    target: str
    attempt: int = 0


class Measured(Event, tag="tests.codec.measured", frozen=True):
    value: float


class MaybeMeasured(Event, tag="tests.codec.maybe_measured", frozen=True):
    value: float | None = None


def user_codec() -> Codec:
    registry = TypeRegistry()
    for cls in (Everything, Ping, Measured, MaybeMeasured):
        registry.register(cls)
    return Codec(registry)


# -- round trips ---------------------------------------------------------------------------


def test_every_builtin_event_is_registered_by_default_under_its_own_tag() -> None:
    tags = [tag_of(cls) for cls in BUILTIN_EVENTS]
    assert len(set(tags)) == len(tags), "built-in tags must be unique"
    for cls, tag in zip(BUILTIN_EVENTS, tags, strict=True):
        assert tag is not None and tag != cls.__name__
        assert default_registry.type_for(tag) is cls
        assert default_registry.by_type[cls] == (tag, cls.version)


@pytest.mark.parametrize("cls", BUILTIN_EVENTS, ids=lambda cls: tag_of(cls))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_builtin_event_round_trips_through_the_codec(cls: type[Event], data: st.DataObject) -> None:
    event = data.draw(struct_strategy(cls))
    kind, version, payload = default_codec.encode(event)
    assert kind == tag_of(cls)
    assert version == cls.version
    assert json.loads(payload)["kind"] == kind, "the payload must be a JSON object carrying its tag"
    decoded = default_codec.decode(kind, version, payload)
    assert type(decoded) is cls
    assert decoded == event


@settings(max_examples=100, deadline=None)
@given(event=struct_strategy(Everything))
def test_user_event_with_every_field_shape_round_trips(event: Everything) -> None:
    codec = user_codec()
    kind, version, payload = codec.encode(event)
    assert (kind, version) == ("tests.codec.everything", 1)
    assert codec.decode(kind, version, payload) == event
    assert codec.decode(kind, version, payload.decode()) == event, "str payloads (as SQLite returns) decode too"


@settings(max_examples=30, deadline=None)
@given(message=struct_strategy(Ping))
def test_user_message_round_trips(message: Ping) -> None:
    codec = user_codec()
    kind, version, payload = codec.encode(message)
    assert kind == "tests.codec.ping"
    assert codec.decode(kind, version, payload) == message


def test_message_received_keeps_a_nested_message_exactly() -> None:
    nested = {"kind": "llm.generate", "prompt": "hi", "options": {"n": 2, "temperature": 0.5, "stop": ["\n", None]}}
    event = MessageReceived(recipient="llm", sender="app", message=nested, seed=12345)
    kind, version, payload = default_codec.encode(event)
    decoded = default_codec.decode(kind, version, payload)
    assert decoded == event
    assert decoded.message == nested


def test_events_are_immutable() -> None:
    event = GaugeSet(name="q", value=1.0)
    with pytest.raises(AttributeError):
        event.value = 2.0  # type: ignore[misc]


# -- non-finite floats ----------------------------------------------------------------------


@pytest.mark.parametrize("cls", [CounterIncremented, GaugeSet, HistogramObserved])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_measurement_events_refuse_non_finite_values_at_construction(cls: type[Event], bad: float) -> None:
    with pytest.raises(ValueError, match="finite"):
        cls(name="x", value=bad)


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_encoding_a_non_finite_float_field_raises_encode_error(bad: float) -> None:
    codec = user_codec()
    with pytest.raises(EncodeError, match=r"NaN|infinite") as caught:
        codec.encode(Measured(value=bad))
    assert isinstance(caught.value, ActorlogError)
    assert isinstance(caught.value, ValueError)


def test_builtin_float_field_without_validation_still_refuses_nan_on_encode() -> None:
    with pytest.raises(EncodeError, match=r"NaN|infinite"):
        default_codec.encode(RecoveryDecided(plugin="llm", action="retry", delay=math.nan))


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(MaybeMeasured(value=math.nan), id="optional-float-field"),
        pytest.param(
            MessageReceived(recipient="llm", sender="app", message={"temperature": math.nan}),
            id="float-inside-dict-any",
        ),
    ],
)
def test_nan_is_never_silently_stored_as_null(event: Event) -> None:
    """A NaN where JSON ``null`` is also valid must not be turned into None without a word."""
    codec = user_codec()
    codec.registry.register(MessageReceived)
    with pytest.raises(EncodeError, match=r"NaN|infinite"):
        codec.encode(event)


# -- decoding what cannot be decoded -------------------------------------------------------


def test_unknown_kind_strict_raises_naming_kind_and_seq_lenient_gives_placeholder() -> None:
    codec = Codec(TypeRegistry())
    payload = b'{"kind":"shop.order_placed","order_id":"o-1"}'
    with pytest.raises(UnknownKindError) as caught:
        codec.decode("shop.order_placed", 1, payload, seq=7)
    assert "shop.order_placed" in str(caught.value) and "seq 7" in str(caught.value)
    assert caught.value.kind == "shop.order_placed" and caught.value.seq == 7
    assert isinstance(caught.value, LookupError) and isinstance(caught.value, ActorlogError)

    placeholder = codec.decode("shop.order_placed", 1, payload, seq=7, lenient=True)
    assert placeholder == UnknownEvent(
        kind="shop.order_placed", version=1, payload={"kind": "shop.order_placed", "order_id": "o-1"},
        reason="unknown kind",
    )


@pytest.mark.parametrize(
    "payload",
    [
        pytest.param(b"\x00\xffnot json at all", id="garbage-bytes"),
        pytest.param(b'{"kind":"plugin.started"', id="truncated-json"),
        pytest.param(b'{"kind":"plugin.started","plugin":42}', id="wrong-field-type"),
        pytest.param(b'{"kind":"plugin.started"}', id="missing-field"),
        pytest.param(b'{"kind":"gauge.set","name":"q","value":1.0}', id="tagged-as-another-kind"),
        pytest.param(b"[1, 2, 3]", id="not-an-object"),
    ],
)
def test_undecodable_payload_strict_raises_decode_error_lenient_gives_placeholder(payload: bytes) -> None:
    with pytest.raises(DecodeError) as caught:
        default_codec.decode("plugin.started", 1, payload, seq=42)
    message = str(caught.value)
    assert "seq 42" in message and "plugin.started" in message
    assert caught.value.seq == 42 and isinstance(caught.value, ValueError)

    placeholder = default_codec.decode("plugin.started", 1, payload, seq=42, lenient=True)
    assert isinstance(placeholder, UnknownEvent)
    assert (placeholder.kind, placeholder.version) == ("plugin.started", 1)
    assert placeholder.reason
    try:
        expected_raw: Any = json.loads(payload)
    except ValueError:
        expected_raw = payload.decode("utf-8", "replace")
    assert placeholder.payload == expected_raw


def test_decoded_payload_is_checked_against_the_declared_kind() -> None:
    _, _, gauge_payload = default_codec.encode(GaugeSet(name="q", value=1.0))
    with pytest.raises(DecodeError, match="GaugeSet"):
        default_codec.decode("plugin.started", 1, gauge_payload)
    # and the right kind reads it fine
    assert default_codec.decode("gauge.set", 1, gauge_payload) == GaugeSet(name="q", value=1.0)


def test_codec_sees_types_registered_after_it_was_built() -> None:
    registry = TypeRegistry()
    registry.register(PluginStarted)
    codec = Codec(registry)
    assert codec.decode(*codec.encode(PluginStarted(plugin="a"))) == PluginStarted(plugin="a")
    registry.register(Measured)
    assert codec.decode(*codec.encode(Measured(value=2.5))) == Measured(value=2.5)


def test_payload_is_plain_json_any_tool_can_read() -> None:
    event = GaugeSet(name="queue", value=3.0, tags={"host": "a"})
    _, _, payload = default_codec.encode(event)
    assert json.loads(payload) == {"kind": "gauge.set", "name": "queue", "value": 3.0, "tags": {"host": "a"}}
    assert msgspec.json.decode(payload, type=GaugeSet) == event
