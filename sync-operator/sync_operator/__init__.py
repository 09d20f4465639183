"""The operator's tools: what is run by hand around the pipelines, never inside a sync.

The pre-flights and switch-overs read both systems, so no tap or target has to import the other
system's client:

- the pre-flight checks of each pipeline (``target-fortnox-preflight``,
  ``tap-fortnox-expenses-preflight``), built from ``PreflightReport``, ``CheckResult``,
  ``run_check`` and ``PreflightCommand``, with the shared checks of the connections
  (``connection_checks``) and of Moment's reads (``moment_checks``);
- the switch-over from Moment's own Fortnox integration (``target-fortnox-cutover``,
  ``tap-fortnox-expenses-cutover``; docs/SWITCH-OVER.md);
- ``sync-report``: the last runs per stream and one record's history, from the run summaries;
- ``fortnox-auth``: connect a Fortnox company (consent, service-account check, token status;
  ``fortnox_auth``, ``onboarding``).

The plugins' ``pip_url`` in meltano.yml installs this package with the extra of its pipeline, so
``meltano invoke <plugin>:preflight`` and the others find their executables in the plugin's own
environment.
"""

from sync_operator.preflight import CheckResult, PreflightReport, run_check
from sync_operator.preflight_command import PreflightCommand

__all__ = ["CheckResult", "PreflightCommand", "PreflightReport", "run_check"]
