"""What every Moment/Fortnox plugin shares and no API owns.

Shared settings declarations (``plugin_config_schema``, ``notify_settings_schema``), run
summaries (``RunSummary``), replayable dead letters (``DeadLetters``), the failure e-mail
(``FailureMailer``) and what to e-mail when (``Alerts``: once per new failure, then a daily
digest), a tap's run with the marks that tell its target how it ended (``reported_tap_run``,
``TapMarks``), secret redaction in logs (``install_secret_redaction``, ``redact``),
progress lines (``ProgressReporter``), per-record handling of Singer protocol slips
(``RecordGuard``) and of values that break a typed schema (``RecordsAsSent``), pre-flight
reports (``PreflightReport``, ``CheckResult``, ``run_check``) and commands
(``PreflightCommand``), the ``meltano`` commands the plugins print, in the environment they ran
in (``meltano_command``), the run store that keeps dead letters and other per-run memory where the
state is kept (``RunStoreSettings``, ``run_store_settings_schema``), the run summaries over time
(``load_runs``, ``record_history``, compaction by ``runs_keep_days``: ``run_settings_schema``,
``keep_days_setting``); ``sync-report`` shows the last runs and one record's history
(``sync_common.report``). Needs filelock; psycopg for a PostgreSQL store.
"""

from sync_common.alerts import AlertResult, Alerts, DigestSettings
from sync_common.config_schema import plugin_config_schema, secret_setting_values
from sync_common.dead_letters import DeadLetter, DeadLetters, dead_letters_path
from sync_common.mailer import (
    FailureMailer,
    SmtpSettings,
    failure_report,
    notify_settings_schema,
)
from sync_common.meltano_command import meltano_command
from sync_common.preflight import CheckResult, PreflightReport, run_check
from sync_common.preflight_command import PreflightCommand
from sync_common.progress import ProgressReporter
from sync_common.redaction import SecretRedactingFilter, install_secret_redaction, redact
from sync_common.run_history import (
    RecordHistory,
    keep_days_setting,
    load_runs,
    record_history,
    run_settings_schema,
)
from sync_common.run_store import (
    FileRunStore,
    PostgresRunStore,
    RunStore,
    RunStoreError,
    RunStoreNotPersistent,
    RunStoreSettings,
    run_store_settings_schema,
)
from sync_common.run_summary import (
    OUTCOMES,
    RecordEvent,
    RecordIssue,
    RunSummary,
    StreamCounts,
    render_runs_table,
)
from sync_common.singer_input import (
    RecordGuard,
    RecordsAsSent,
    is_keyless_letter_key,
    keyless_letter_key,
    missing_key_properties,
)
from sync_common.tap_run import TapMarks, TapStop, describe_error, reported_tap_run

__all__ = [
    "OUTCOMES",
    "AlertResult",
    "Alerts",
    "CheckResult",
    "DeadLetter",
    "DeadLetters",
    "DigestSettings",
    "FailureMailer",
    "FileRunStore",
    "PostgresRunStore",
    "PreflightCommand",
    "PreflightReport",
    "ProgressReporter",
    "RecordEvent",
    "RecordGuard",
    "RecordHistory",
    "RecordIssue",
    "RecordsAsSent",
    "RunStore",
    "RunStoreError",
    "RunStoreNotPersistent",
    "RunStoreSettings",
    "RunSummary",
    "SecretRedactingFilter",
    "SmtpSettings",
    "StreamCounts",
    "TapMarks",
    "TapStop",
    "dead_letters_path",
    "describe_error",
    "failure_report",
    "install_secret_redaction",
    "is_keyless_letter_key",
    "keep_days_setting",
    "keyless_letter_key",
    "load_runs",
    "meltano_command",
    "missing_key_properties",
    "notify_settings_schema",
    "plugin_config_schema",
    "record_history",
    "redact",
    "render_runs_table",
    "reported_tap_run",
    "run_check",
    "run_settings_schema",
    "run_store_settings_schema",
    "secret_setting_values",
]
