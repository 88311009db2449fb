"""Schema evolution: old payloads are upcast to the current version on read."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from actorlog.events import Codec, DecodeError, Event, TypeRegistry, UnknownEvent
from actorlog.store import EventStore

KIND = "test.upcast"


class UpcastV1(Event, tag=KIND, frozen=True):
    version: ClassVar[int] = 1
    a: int


class UpcastV3(Event, tag=KIND, frozen=True):
    """Version 3: ``a`` became ``amount`` (v2), then ``unit`` was added (v3)."""

    version: ClassVar[int] = 3
    amount: int
    unit: str


def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {"kind": data["kind"], "amount": data.pop("a")}


def v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
    return {**data, "unit": "eur"}


def registry_v1() -> TypeRegistry:
    registry = TypeRegistry()
    registry.register(UpcastV1)
    return registry


def registry_v3(*, with_v1_step: bool = True, with_v2_step: bool = True) -> TypeRegistry:
    registry = TypeRegistry()
    registry.register(UpcastV3)
    if with_v1_step:
        registry.add_upcaster(KIND, 1, v1_to_v2)
    if with_v2_step:

        @registry.upcaster(KIND, 2)
        def _v2_to_v3(data: dict[str, Any]) -> dict[str, Any]:
            return v2_to_v3(data)

    return registry


def test_a_v1_payload_is_upcast_through_every_step_to_the_current_version() -> None:
    kind, version, payload = Codec(registry_v1()).encode(UpcastV1(a=5))
    assert (kind, version) == (KIND, 1)
    decoded = Codec(registry_v3()).decode(kind, version, payload)
    assert decoded == UpcastV3(amount=5, unit="eur")
    assert type(decoded) is UpcastV3


def test_a_v2_payload_runs_only_the_remaining_step() -> None:
    payload = b'{"kind":"test.upcast","amount":7}'
    assert Codec(registry_v3(with_v1_step=False)).decode(KIND, 2, payload) == UpcastV3(amount=7, unit="eur")


def test_a_current_version_payload_is_not_upcast() -> None:
    codec = Codec(registry_v3())
    kind, version, payload = codec.encode(UpcastV3(amount=1, unit="usd"))
    assert version == 3
    assert codec.decode(kind, version, payload) == UpcastV3(amount=1, unit="usd")


def test_a_missing_upcaster_step_is_a_decode_error_naming_the_step() -> None:
    _, _, payload = Codec(registry_v1()).encode(UpcastV1(a=5))
    codec = Codec(registry_v3(with_v2_step=False))
    with pytest.raises(DecodeError, match=r"no upcaster from version 2 to 3") as caught:
        codec.decode(KIND, 1, payload, seq=11)
    assert "seq 11" in str(caught.value)
    placeholder = codec.decode(KIND, 1, payload, seq=11, lenient=True)
    assert isinstance(placeholder, UnknownEvent) and "version 2" in placeholder.reason


def test_an_upcaster_that_raises_is_a_decode_error() -> None:
    registry = registry_v3(with_v1_step=False)

    def broken(data: dict[str, Any]) -> dict[str, Any]:
        raise KeyError("b")

    registry.add_upcaster(KIND, 1, broken)
    _, _, payload = Codec(registry_v1()).encode(UpcastV1(a=5))
    with pytest.raises(DecodeError, match=r"upcaster from version 1 raised KeyError") as caught:
        Codec(registry).decode(KIND, 1, payload, seq=3)
    assert isinstance(caught.value.__cause__, KeyError)
    placeholder = Codec(registry).decode(KIND, 1, payload, lenient=True)
    assert isinstance(placeholder, UnknownEvent) and placeholder.payload == {"kind": KIND, "a": 5}


def test_an_upcaster_producing_the_wrong_shape_is_a_decode_error() -> None:
    registry = registry_v3(with_v2_step=False)
    registry.add_upcaster(KIND, 2, lambda data: data)  # forgets to add "unit"
    _, _, payload = Codec(registry_v1()).encode(UpcastV1(a=5))
    with pytest.raises(DecodeError, match="unit"):
        Codec(registry).decode(KIND, 1, payload)


def test_a_payload_newer_than_the_registered_type_is_refused_strict_and_a_placeholder_lenient() -> None:
    codec = Codec(registry_v1())
    payload = b'{"kind":"test.upcast","amount":1,"unit":"eur"}'
    with pytest.raises(DecodeError, match="newer") as caught:
        codec.decode(KIND, 3, payload, seq=9)
    assert "seq 9" in str(caught.value) and caught.value.version == 3
    placeholder = codec.decode(KIND, 3, payload, seq=9, lenient=True)
    assert placeholder == UnknownEvent(
        kind=KIND, version=3, payload={"kind": KIND, "amount": 1, "unit": "eur"}, reason=placeholder.reason
    )
    assert "newer" in placeholder.reason


def test_a_log_written_by_v1_code_reads_back_upcast_with_v3_code(log_path: Path) -> None:
    with EventStore(log_path, registry=registry_v1()) as old:
        old.append_many([UpcastV1(a=i) for i in range(5)], actor="shop")
        assert old.flush() == 5

    expected = [UpcastV3(amount=i, unit="eur") for i in range(5)]
    with EventStore.open_readonly(log_path, registry=registry_v3()) as reader:
        records = list(reader.events())
        assert [r.event for r in records] == expected
        assert {r.version for r in records} == {1}, "the stored version is kept on the record"
        assert reader.verify().ok

    with EventStore(log_path, registry=registry_v3()) as new:
        new.append(UpcastV3(amount=99, unit="usd"), actor="shop")
        new.flush()
        records = list(new.events())
    assert [r.event for r in records] == [*expected, UpcastV3(amount=99, unit="usd")]
    assert [r.version for r in records] == [1, 1, 1, 1, 1, 3]

    with EventStore.open_readonly(log_path, registry=registry_v1()) as old_reader:
        with pytest.raises(DecodeError, match="seq 6"):
            list(old_reader.events())
        lenient = list(old_reader.events(lenient=True))
    assert [r.event for r in lenient[:5]] == [UpcastV1(a=i) for i in range(5)]
    assert isinstance(lenient[5].event, UnknownEvent) and lenient[5].event.version == 3
