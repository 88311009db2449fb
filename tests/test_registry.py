"""The type registry: which user types may be registered, and how refusals read."""

from __future__ import annotations

import uuid
from typing import ClassVar

import msgspec
import pytest

from actorlog.events import (
    ActorlogError,
    Codec,
    Event,
    GaugeSet,
    Message,
    NotRegisteredError,
    PluginStarted,
    RegistrationError,
    TypeRegistry,
    default_codec,
    default_registry,
    register,
)


def unique_tag(prefix: str = "tests.registry") -> str:
    return f"{prefix}.t{uuid.uuid4().hex}"


def test_register_decorator_adds_a_user_type_to_the_default_registry() -> None:
    tag = unique_tag()

    @register
    class OrderPlaced(Event, tag=tag, frozen=True):
        version: ClassVar[int] = 2
        order_id: str

    assert OrderPlaced.__name__ == "OrderPlaced", "the decorator returns the class itself"
    assert default_registry.type_for(tag) is OrderPlaced
    assert default_registry.is_registered(OrderPlaced)
    assert tag in default_registry.kinds()
    kind, version, payload = default_codec.encode(OrderPlaced(order_id="o-1"))
    assert (kind, version) == (tag, 2)
    assert default_codec.decode(kind, version, payload) == OrderPlaced(order_id="o-1")


def test_registering_a_message_type_works_like_an_event_type() -> None:
    registry = TypeRegistry()

    @registry.register
    class Generate(Message, tag="llm.generate", frozen=True):
        prompt: str

    assert registry.type_for("llm.generate") is Generate
    assert Codec(registry).encode(Generate(prompt="hi"))[0] == "llm.generate"


def test_a_fresh_registry_starts_empty() -> None:
    registry = TypeRegistry()
    assert registry.types() == () and registry.kinds() == ()
    with pytest.raises(NotRegisteredError):
        Codec(registry).encode(PluginStarted(plugin="x"))


def test_class_without_explicit_tag_is_refused_with_a_suggested_tag() -> None:
    class OrderShipped(Event, frozen=True):
        order_id: str

    with pytest.raises(RegistrationError) as caught:
        TypeRegistry().register(OrderShipped)
    message = str(caught.value)
    assert 'tag="myapp.' in message
    assert "OrderShipped" in message
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ActorlogError)


@pytest.mark.parametrize("bad_tag", ["Shop.Order", "shop order", "shop..order", ".shop", "shop.", "1shop.order", ""])
def test_tags_that_are_not_lowercase_dotted_words_are_refused(bad_tag: str) -> None:
    class Odd(Event, tag=bad_tag, frozen=True):
        x: int = 0

    with pytest.raises(RegistrationError, match='tag="myapp.'):
        TypeRegistry().register(Odd)


def test_a_second_class_with_a_taken_tag_is_refused_naming_both_classes() -> None:
    registry = TypeRegistry()

    class FirstOwner(Event, tag="shop.order_placed", frozen=True):
        order_id: str

    class SecondOwner(Event, tag="shop.order_placed", frozen=True):
        order_id: str
        total: float

    registry.register(FirstOwner)
    generation = registry.generation
    with pytest.raises(RegistrationError) as caught:
        registry.register(SecondOwner)
    message = str(caught.value)
    assert "FirstOwner" in message and "SecondOwner" in message and "shop.order_placed" in message
    assert registry.type_for("shop.order_placed") is FirstOwner, "the refused class must not displace the first"
    assert registry.generation == generation


def test_a_taken_builtin_tag_is_refused_in_the_default_registry() -> None:
    class FakeGauge(Event, tag="gauge.set", frozen=True):
        name: str

    with pytest.raises(RegistrationError, match="GaugeSet"):
        register(FakeGauge)
    assert default_registry.type_for("gauge.set") is GaugeSet


def test_replace_true_swaps_the_owner_of_a_tag() -> None:
    registry = TypeRegistry()

    class Old(Event, tag="shop.thing", frozen=True):
        a: int

    class New(Event, tag="shop.thing", frozen=True):
        b: int

    registry.register(Old)
    registry.register(New, replace=True)
    assert registry.type_for("shop.thing") is New
    assert not registry.is_registered(Old)
    with pytest.raises(NotRegisteredError):
        Codec(registry).encode(Old(a=1))


def test_registering_the_same_class_twice_is_harmless() -> None:
    registry = TypeRegistry()

    class Once(Event, tag="shop.once", frozen=True):
        a: int

    assert registry.register(Once) is Once
    generation = registry.generation
    assert registry.register(Once) is Once
    assert registry.types() == (Once,)
    assert registry.generation == generation


@pytest.mark.parametrize("version", [0, -1, "2", True, 1.5])
def test_version_must_be_a_positive_int(version: object) -> None:
    class Versioned(Event, tag="shop.versioned", frozen=True):
        a: int

    setattr(Versioned, "version", version)  # noqa: B010 - a bad version, on purpose
    with pytest.raises(RegistrationError, match="version"):
        TypeRegistry().register(Versioned)


class PlainStruct(msgspec.Struct, tag="shop.plain", frozen=True):
    a: int


class NotAStruct:
    pass


@pytest.mark.parametrize(
    "thing",
    [
        pytest.param(PlainStruct, id="plain-msgspec-struct"),
        pytest.param(NotAStruct, id="plain-class"),
        pytest.param(dict, id="builtin-type"),
        pytest.param(PluginStarted(plugin="x"), id="an-instance"),
        pytest.param("shop.thing", id="a-string"),
    ],
)
def test_only_message_and_event_subclasses_can_be_registered(thing: object) -> None:
    with pytest.raises(RegistrationError, match="Message or Event"):
        TypeRegistry().register(thing)  # type: ignore[type-var]


@pytest.mark.parametrize(
    "options",
    [pytest.param({"tag_field": "type"}, id="other-tag-field"), pytest.param({"array_like": True}, id="array-like")],
)
def test_a_type_the_shared_decoder_cannot_hold_is_refused_at_registration(options: dict[str, object]) -> None:
    """Every registered type goes into one msgspec tagged union; a type that cannot join it
    must be refused when registered, not break decoding of every other type afterwards."""
    registry = TypeRegistry()
    registry.register(PluginStarted)

    class Odd(Event, tag="shop.odd", frozen=True, **options):
        a: int

    with pytest.raises(RegistrationError):
        registry.register(Odd)
    codec = Codec(registry)
    assert codec.decode(*codec.encode(PluginStarted(plugin="x"))) == PluginStarted(plugin="x")


def test_event_subclasses_are_frozen_even_without_saying_so() -> None:
    class Loose(Event, tag="shop.loose"):  # type: ignore[misc]
        a: int

    with pytest.raises(AttributeError):
        Loose(a=1).a = 2


# -- encoding what is not registered ---------------------------------------------------------


class UnregisteredEvent(Event, tag="tests.registry.unregistered", frozen=True):
    a: int = 0


class GaugeSubclass(GaugeSet, tag="tests.registry.gauge_subclass", frozen=True):
    pass


@pytest.mark.parametrize(
    ("obj", "type_name"),
    [
        pytest.param(UnregisteredEvent(), "UnregisteredEvent", id="unregistered-event"),
        pytest.param(GaugeSubclass(name="q", value=1.0), "GaugeSubclass", id="subclass-of-registered"),
        pytest.param({"kind": "gauge.set", "name": "q", "value": 1.0}, "dict", id="plain-dict"),
        pytest.param(PlainStruct(a=1), "PlainStruct", id="plain-struct"),
        pytest.param(None, "NoneType", id="none"),
    ],
)
def test_encoding_anything_but_a_registered_instance_raises_not_registered(obj: object, type_name: str) -> None:
    with pytest.raises(NotRegisteredError) as caught:
        default_codec.encode(obj)
    assert type_name in str(caught.value)
    assert isinstance(caught.value, TypeError) and isinstance(caught.value, ActorlogError)
    with pytest.raises(NotRegisteredError):
        default_registry.kind_and_version(obj)


def test_not_registered_message_tells_how_to_register_an_event_type() -> None:
    with pytest.raises(NotRegisteredError, match=r"register\(UnregisteredEvent\)"):
        default_codec.encode(UnregisteredEvent())
