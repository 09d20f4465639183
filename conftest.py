"""How the whole suite is spread over pytest-xdist workers.

The fixtures every test folder shares are pytest plugins of the packages, so that each package's
tests also run alone (`pytest <package>/tests`): the sandboxes and PostgreSQL in
sandbox/sandbox/pytest_plugin.py, the SMTP servers in sync-common/sync_common/testing/smtp.py.

`make test` runs the suite on two pytest-xdist workers (`--dist loadgroup`, no reordering). Every
test is put in a group of its file, so a module's tests (and its module-scoped sandboxes and
`meltano run`s, which later tests of the module build on) stay on one worker. Files are handed out
longest first (SLOW_FIRST, measured), so that no long file starts last and runs alone at the end.
"""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).parent
# The longest test files (minutes on two workers, `--durations`), handed out first in this order.
SLOW_FIRST = (
    "tests/reliability/test_kill9.py",
    "tests/test_expenses_to_moment.py",
    "tests/test_orchestrator_tenants.py",
    "tests/test_add_to_meltano_project.py",
    "tests/reliability/test_bad_input.py",
    "tests/reliability/test_faults_moment_to_fortnox.py",
    "tests/reliability/test_faults_expenses_to_moment.py",
    "tests/test_readme_commands.py",
    "tests/test_postgres_deployment.py",
    "tests/test_moment_to_fortnox.py",
    "tests/test_demo.py",
    "tests/operator/test_operator_commands.py",
    "tests/reliability/test_real_conditions.py",
    "tests/reliability/test_dead_letters_mail_secrets.py",
    "tests/moment_to_fortnox/test_rate_limit.py",
    "tests/operator/test_cutover.py",
    "tests/test_failure_alerts.py",
    "tests/operator/test_server_operations.py",
)


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups into the node ids
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """One xdist group per test file, the slow files first. The order is the same in every
    worker, as xdist requires (a stable sort of the collection order)."""
    rank = {name: i for i, name in enumerate(SLOW_FIRST)}
    for item in items:
        item.add_marker(pytest.mark.xdist_group(_file(item)))
    items.sort(key=lambda item: rank.get(_file(item), len(rank)))


def _file(item: pytest.Item) -> str:
    return Path(str(item.path)).relative_to(ROOT).as_posix()
