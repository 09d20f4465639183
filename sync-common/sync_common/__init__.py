"""What every Moment/Fortnox plugin shares and no API owns.

Shared settings declarations (``plugin_config_schema``, ``notify_settings_schema``), run
summaries (``RunSummary``), replayable dead letters (``DeadLetters``), the failure e-mail
(``FailureMailer``), secret redaction in logs (``install_secret_redaction``, ``redact``),
progress lines (``ProgressReporter``), per-record handling of Singer protocol slips
(``RecordGuard``) and of values that break a typed schema (``RecordsAsSent``), pre-flight
reports (``PreflightReport``, ``CheckResult``, ``run_check``) and commands
(``PreflightCommand``), the ``meltano`` commands the plugins print, in the environment they ran
in (``meltano_command``), the run store that keeps dead letters and other per-run memory where the
state is kept (``RunStoreSettings``, ``run_store_settings_schema``); ``sync-report`` shows the last
runs (``sync_common.report``). Needs filelock; psycopg for a PostgreSQL store.
"""

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
    RecordIssue,
    RunSummary,
    StreamCounts,
    load_runs,
    render_runs_table,
)
from sync_common.singer_input import (
    RecordGuard,
    RecordsAsSent,
    is_keyless_letter_key,
    keyless_letter_key,
    missing_key_properties,
)

__all__ = [
    "OUTCOMES",
    "CheckResult",
    "DeadLetter",
    "DeadLetters",
    "FailureMailer",
    "FileRunStore",
    "PostgresRunStore",
    "PreflightCommand",
    "PreflightReport",
    "ProgressReporter",
    "RecordGuard",
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
    "dead_letters_path",
    "failure_report",
    "install_secret_redaction",
    "is_keyless_letter_key",
    "keyless_letter_key",
    "load_runs",
    "meltano_command",
    "missing_key_properties",
    "notify_settings_schema",
    "plugin_config_schema",
    "redact",
    "render_runs_table",
    "run_check",
    "run_store_settings_schema",
    "secret_setting_values",
]
