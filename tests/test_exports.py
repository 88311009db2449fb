"""The public surface of each package changes only on purpose (trio's ``test_exports`` habit).

Every public name a package defines is in its ``__all__``, every name in ``__all__``
exists, and ``__all__`` is exactly the list below: adding or removing a public name
means changing this test too.
"""

from __future__ import annotations

import importlib
import types

import pytest

EXPECTED: dict[str, list[str]] = {
    "actorlog.actors": [
        "ANYONE", "APP", "ActorSystem", "AskCycleError", "Attempt", "CarryOut", "ConfigError", "DEFAULT_ACTIONS",
        "DEFAULT_SEVERITIES", "Decision", "DependencyError", "ENTRY_POINT_GROUP", "ErrorPolicy",
        "EscalationError", "Failure", "Health", "MetricsAddressError", "MetricsClient", "MetricsOptions",
        "MetricsServer", "Operation",
        "PerformanceMonitor", "Plugin", "PluginContext", "PluginError", "PluginNotRunningError",
        "PluginOverloadedError", "PluginRef", "Policy", "RegistrationError", "ReportFailure", "RestartPolicy",
        "RetryPolicy", "Retrying", "StartError", "SystemStoppedError", "UnhealthyError", "UnknownPluginError", "UpgradeError",
        "UpgradeRefusedError",
        "handler",
    ],
    "actorlog.events": [
        "ActorlogError", "BUILTIN_EVENTS", "Checkpoint", "Codec", "ConfigReloadRefused", "ConfigReloaded", "CounterIncremented", "DecodeError", "EncodeError",
        "Escalated", "Event", "FailureAssessed", "FailureRaised", "GaugeSet", "HistogramObserved",
        "MEASUREMENT_KINDS", "MeasurementsDropped", "Message", "MessageReceived", "MessageRefused",
        "MetricsConfigured", "NotRegisteredError", "OperationTimed", "PluginFailed", "PluginHealthChecked",
        "PluginRegistered", "PluginRestarted", "PluginStarted", "PluginStarting", "PluginStopTimedOut",
        "PluginStopped", "PluginStopping", "PluginUpgradeFailed", "PluginUpgradeRefused", "PluginUpgraded",
        "PluginUpgrading", "RESERVED_KINDS", "RecoveryAction", "RecoveryDecided", "RegistrationError",
        "RetryScheduled", "RunStarted", "RunStopped", "Severity", "SnapshotTaken", "TaskGaveUp", "TaskSucceeded",
        "TypeRegistry", "UnknownEvent", "UnknownKindError", "Upcaster", "default_codec", "default_registry",
        "register", "tag_of", "upcaster",
    ],
    "actorlog.replay": [
        "ErrorStatistics", "ErrorStatisticsSnapshot", "Metrics", "MetricsSnapshot", "PluginState",
        "PluginStates", "RecentError", "ReplayError", "Statistics", "StatisticsDocument", "Summary", "VersionChange",
        "format_time",
        "newest_snapshot", "parse_time", "percentile", "rebuild", "rebuild_error_statistics",
        "rebuild_metrics", "statistics_document", "story", "take_snapshot", "to_prometheus",
    ],
    "actorlog.store": [
        "Commit", "CopyReport", "DEFAULT_MAX_PAYLOAD_BYTES", "EventFilter", "EventRecord", "EventStore",
        "LogLocation", "MissingDependencyError", "NotAnEventLogError", "NotWritableError", "PayloadTooLargeError", "ReadOnlyError", "SCHEMA_VERSION",
        "SchemaVersionError", "StoreClosedError", "StoreError", "StoreLockedError", "StoreReadError",
        "StoreWriteError", "Synchronous", "Ticket", "VerifyReport", "copy_log", "new_run_id",
        "parse_location", "row_hash",
    ],
}


@pytest.mark.parametrize("package", sorted(EXPECTED))
def test_all_is_exactly_the_public_names(package: str) -> None:
    module = importlib.import_module(package)
    exported = list(module.__all__)
    assert len(exported) == len(set(exported)), "a name is listed twice in __all__"
    public = {
        name for name, value in vars(module).items()
        if not name.startswith("_") and not isinstance(value, types.ModuleType) and name != "annotations"
    }
    assert public == set(exported), "public names missing from __all__, or listed but not defined"
    assert sorted(exported) == EXPECTED[package]
