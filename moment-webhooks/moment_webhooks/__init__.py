"""Moment webhook receiver that triggers the moment-to-fortnox Meltano job within seconds.

Public API: :class:`JobTrigger` (coalescing, single-flight, per-tenant locked runs),
:class:`CommandRunner` (runs the job command), :func:`create_app` (the Flask receiver),
:class:`ReceiverSettings` (settings from CLI and environment).
"""

from moment_webhooks.app import create_app
from moment_webhooks.runner import CommandRunner
from moment_webhooks.settings import ReceiverSettings, SettingsError, tenant_lock_path
from moment_webhooks.trigger import JobRunner, JobTrigger, RunRecord

__all__ = [
    "CommandRunner",
    "JobRunner",
    "JobTrigger",
    "ReceiverSettings",
    "RunRecord",
    "SettingsError",
    "create_app",
    "tenant_lock_path",
]
