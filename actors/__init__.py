"""The actor system an application embeds: plugins, supervisor, error handler, metrics."""

from actorlog.actors.context import PluginContext, PluginRef
from actorlog.actors.error_handler import Policy
from actorlog.actors.error_policy import DEFAULT_ACTIONS, DEFAULT_SEVERITIES, Decision, ErrorPolicy, Failure
from actorlog.actors.errors import (
    AskCycleError,
    ConfigError,
    DependencyError,
    EscalationError,
    MetricsAddressError,
    PluginError,
    PluginNotRunningError,
    PluginOverloadedError,
    RegistrationError,
    StartError,
    SystemStoppedError,
    UnhealthyError,
    UnknownPluginError,
    UpgradeError,
    UpgradeRefusedError,
)
from actorlog.actors.loading import ENTRY_POINT_GROUP
from actorlog.actors.metrics import MetricsOptions
from actorlog.actors.metrics_server import MetricsServer
from actorlog.actors.monitor import MetricsClient, Operation, PerformanceMonitor
from actorlog.actors.plugin import Health, Plugin, handler
from actorlog.actors.protocol import CarryOut, ReportFailure
from actorlog.actors.retry import Attempt, Retrying, RetryPolicy
from actorlog.actors.router import ANYONE, APP
from actorlog.actors.supervisor import RestartPolicy
from actorlog.actors.system import ActorSystem

__all__ = [
    "AskCycleError",
    "ANYONE",
    "DEFAULT_ACTIONS",
    "DEFAULT_SEVERITIES",
    "Attempt",
    "Decision",
    "ErrorPolicy",
    "Failure",
    "RetryPolicy",
    "Retrying",
    "APP",
    "ENTRY_POINT_GROUP",
    "ActorSystem",
    "CarryOut",
    "ConfigError",
    "DependencyError",
    "EscalationError",
    "Health",
    "MetricsAddressError",
    "MetricsClient",
    "MetricsOptions",
    "MetricsServer",
    "Operation",
    "PerformanceMonitor",
    "Plugin",
    "PluginContext",
    "PluginError",
    "PluginNotRunningError",
    "PluginOverloadedError",
    "PluginRef",
    "Policy",
    "RegistrationError",
    "ReportFailure",
    "RestartPolicy",
    "StartError",
    "SystemStoppedError",
    "UnhealthyError",
    "UnknownPluginError",
    "UpgradeError",
    "UpgradeRefusedError",
    "handler",
]
