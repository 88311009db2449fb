"""Typed messages and events, their registry, codec and schema evolution.

    >>> from typing import ClassVar
    >>> from actorlog.events import Event, register
    >>> @register
    ... class OrderPlaced(Event, tag="shop.order_placed", frozen=True):
    ...     version: ClassVar[int] = 1
    ...     order_id: str
"""

from actorlog.events.base import Event, Message, UnknownEvent, tag_of
from actorlog.events.catalogue import (
    BUILTIN_EVENTS,
    MEASUREMENT_KINDS,
    Checkpoint,
    RESERVED_KINDS,
    CounterIncremented,
    Escalated,
    FailureAssessed,
    FailureRaised,
    GaugeSet,
    HistogramObserved,
    MeasurementsDropped,
    MetricsConfigured,
    MessageReceived,
    MessageRefused,
    OperationTimed,
    PluginFailed,
    PluginHealthChecked,
    PluginRegistered,
    PluginRestarted,
    PluginStarted,
    PluginStarting,
    PluginStopped,
    PluginStopping,
    PluginStopTimedOut,
    RecoveryAction,
    RecoveryDecided,
    RetryScheduled,
    RunStarted,
    RunStopped,
    Severity,
    SnapshotTaken,
    TaskGaveUp,
    TaskSucceeded,
)
from actorlog.events.codec import Codec, default_codec
from actorlog.events.errors import (
    ActorlogError,
    DecodeError,
    EncodeError,
    NotRegisteredError,
    RegistrationError,
    UnknownKindError,
)
from actorlog.events.registry import TypeRegistry, Upcaster, default_registry, register, upcaster

for _cls in BUILTIN_EVENTS:
    default_registry.register(_cls)
del _cls

__all__ = [
    "BUILTIN_EVENTS",
    "Checkpoint",
    "MEASUREMENT_KINDS",
    "RESERVED_KINDS",
    "ActorlogError",
    "Codec",
    "CounterIncremented",
    "DecodeError",
    "EncodeError",
    "Escalated",
    "Event",
    "FailureAssessed",
    "FailureRaised",
    "GaugeSet",
    "HistogramObserved",
    "MeasurementsDropped",
    "MetricsConfigured",
    "Message",
    "MessageReceived",
    "MessageRefused",
    "OperationTimed",
    "NotRegisteredError",
    "PluginFailed",
    "PluginHealthChecked",
    "PluginRegistered",
    "PluginRestarted",
    "PluginStarted",
    "PluginStarting",
    "PluginStopped",
    "PluginStopping",
    "PluginStopTimedOut",
    "RecoveryAction",
    "RecoveryDecided",
    "RegistrationError",
    "RetryScheduled",
    "RunStarted",
    "RunStopped",
    "Severity",
    "SnapshotTaken",
    "TaskGaveUp",
    "TaskSucceeded",
    "TypeRegistry",
    "UnknownEvent",
    "UnknownKindError",
    "Upcaster",
    "default_codec",
    "default_registry",
    "register",
    "tag_of",
    "upcaster",
]
