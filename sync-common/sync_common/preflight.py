"""Pre-flight reports: named checks with pass/fail and the exact fix, as text or JSON.

Owns ``CheckResult`` (one check's outcome), ``PreflightReport`` (the ordered results, the exit
code, the table and the JSON) and ``run_check`` (runs one check function so that an unexpected
exception becomes a failed check naming it instead of a traceback that hides the other checks).
The checks themselves live with the plugins that know what to check; this module knows nothing of
Fortnox or Moment.
"""

from __future__ import annotations

import json
import logging
import textwrap
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Final, Literal

Status = Literal["pass", "fail", "warn", "manual"]
STATUSES: Final = ("pass", "fail", "warn", "manual")
# Exit codes of a pre-flight command: 0 ready, 1 a blocking check failed, 2 could not run at all.
EXIT_READY: Final = 0
EXIT_BLOCKED: Final = 1
EXIT_UNUSABLE: Final = 2

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CheckResult:
    """One check: ``name`` (stable id), ``status``, what was found, and what to do about it.

    ``fail`` blocks a run; ``warn`` is worth reading but does not block; ``manual`` is a check no
    API can answer (the ``fix`` says where to look).
    """

    name: str
    status: Status
    detail: str
    fix: str = ""
    items: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return self.status == "fail"


class PreflightReport:
    """The results of one pre-flight run, in the order the checks ran."""

    def __init__(self, pipeline: str, *, title: str = "Pre-flight check") -> None:
        self.pipeline = pipeline
        # "Pre-flight check", or another command's name (the switch-over report).
        self.title = title
        self.results: list[CheckResult] = []
        # Further figures for automation (--json), e.g. the switch-over's counts per register.
        self.details: dict[str, Any] = {}

    def add(self, result: CheckResult) -> CheckResult:
        self.results.append(result)
        return result

    @property
    def ready(self) -> bool:
        """True when no blocking check failed."""
        return not any(result.blocking for result in self.results)

    @property
    def exit_code(self) -> int:
        return EXIT_READY if self.ready else EXIT_BLOCKED

    def counts(self) -> dict[str, int]:
        return {status: sum(r.status == status for r in self.results) for status in STATUSES}

    def to_dict(self) -> dict[str, Any]:
        return {
            "pipeline": self.pipeline,
            "ready": self.ready,
            "counts": self.counts(),
            "checks": [{**asdict(result), "blocking": result.blocking} for result in self.results],
            **self.details,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def render(self, width: int = 100) -> str:
        """``[PASS] name: detail`` per check, the fix indented under it, a verdict at the end."""
        lines = [f"{self.title}: {self.pipeline}"]
        for result in self.results:
            lines.append(f"[{result.status.upper():6}] {result.name}: {result.detail}")
            for item in result.items[:20]:
                lines.append(f"           - {item}")
            if len(result.items) > 20:
                lines.append(f"           … and {len(result.items) - 20} more (see --json)")
            if result.fix and result.status != "pass":
                wrapped = textwrap.wrap(
                    result.fix, width - 16, initial_indent="", subsequent_indent=""
                )
                for index, chunk in enumerate(wrapped):
                    lines.append(("           fix: " if index == 0 else "                ") + chunk)
        counts = self.counts()
        summary = ", ".join(f"{counts[s]} {s}" for s in STATUSES if counts[s])
        verdict = (
            "READY: no blocking problem found"
            if self.ready
            else "NOT READY: fix the failed checks above"
        )
        lines.append(f"{verdict} ({summary}).")
        return "\n".join(lines)


def run_check(
    report: PreflightReport, name: str, check: Callable[[], CheckResult | list[CheckResult]]
) -> list[CheckResult]:
    """Run ``check`` and add its result(s); an unexpected error fails that check, not the run.

    Pre-flight is where misconfiguration shows up, so one broken check must not hide the others.
    """
    try:
        outcome = check()
    except Exception as exc:
        logger.debug("pre-flight check %s raised", name, exc_info=True)
        outcome = CheckResult(
            name,
            "fail",
            f"the check could not run: {type(exc).__name__}: {exc}",
            "Fix the error above (settings, network) and run the pre-flight check again.",
        )
    results = outcome if isinstance(outcome, list) else [outcome]
    for result in results:
        report.add(result)
    return results
