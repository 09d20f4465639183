"""Every command the README shows, and every command the plugins print, run as written in prod.

`meltano.yml` makes `dev` (the sandboxes) the default environment, so a command that does not
select `prod` itself quietly talks to the sandboxes. This module runs the commands against a
prod-like copy of the project and fails for each one that does not end well in `prod`:

- the copy: this `meltano.yml` with the `prod` environment's URLs pointed at the module's
  sandboxes (the `pipelines` fixture) and every other environment's at a closed port, so a
  command in `dev` fails at once; `.env` as README "Going live" writes it, with the sandbox's
  values for its placeholders; the plugin environments of the checkout's `meltano install`
  (same `pip_url`, so Meltano does not reinstall them); its own system DB, state, token store,
  run store and results.
- the commands: each `sh` block of README.md (`\\` continuations joined, comments dropped; a line
  that only sets variables or sources a file is run before the later lines of its block) and
  each inline code span that runs `meltano`, in README order with "Going live" first (a reader
  starts there), each once; in bash in the copy's folder after step 3's `. .venv/bin/activate`,
  with no MELTANO_* variable in the shell. Where `authorize` prints the consent URL the test
  approves it on the sandbox's consent page, as the Fortnox administrator would.
- a command passes when it exits as the README says (0 unless `RUN` says otherwise) and every
  Meltano process it started logged "Environment 'prod' is active" and no other environment.
- the commands the plugins print (the pre-flight's fixes, the failure e-mail's replay) run in a
  shell that selects `dev` (MELTANO_ENVIRONMENT=dev): only the command itself can lead to prod.

Each README command is in `RUN` (how to run it: the variables its prose says to set first, a
placeholder filled in, `meltano run --dry-run` where the copy lacks a PostgreSQL warehouse or the
reader's CSV export) or in `EXCLUDED` with the reason; `EXCLUDED_SECTIONS` and `EXCLUDED_FENCES`
name whole sections and block kinds that are not this project's production commands. A command in
none of them fails `test_every_readme_command_is_run_or_excluded`, so a new one is run or left out
on purpose.
"""

from __future__ import annotations

import html
import io
import json
import mailbox
import os
import re
import shlex
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import Message
from pathlib import Path
from typing import IO, Any
from urllib.parse import urljoin

import pytest
import requests
import yaml
from aiosmtpd.controller import Controller
from aiosmtpd.handlers import Mailbox
from aiosmtpd.smtp import AuthResult
from dotenv import dotenv_values
from markdown_it import MarkdownIt

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PROD = "prod"
# Where every environment but prod points in the copy: the discard port, where nothing listens.
CLOSED = "http://127.0.0.1:9/not-prod"
TENANT = "1234567"  # the Fortnox sandbox company's DatabaseNumber
ACTIVE = re.compile(r"Environment '([^']*)' is active")
FIRST_SECTION = "Going live"
SHELL_FENCES = {"sh", "bash", "shell"}
# An inline code span is a command when it runs meltano (after variables, or behind a pipe).
INLINE_COMMAND = re.compile(r"^(?:[A-Za-z_]\w*=\S+\s+)*meltano\s|\|\s*meltano\s")
ASSIGNMENT = re.compile(r"^[A-Za-z_]\w*=")

# The sandbox's values for the placeholders of README "Going live" step 4's `.env`, by the end of
# the variable's name.
SANDBOX_VALUES = {
    "_COMPANY_CODE": "demo",
    "_API_KEY": "sandbox-key",
    "_CLIENT_ID": "sandbox-client",
    "_CLIENT_SECRET": "sandbox-secret",
    "_SMTP_USERNAME": "mailer@example.se",
    "_SMTP_PASSWORD": "smtp-password-of-the-test",
    "_SMTP_FROM": "sync@example.se",
}
# The test's SMTP server (plain, on loopback); _SMTP_PORT is its port.
TEST_SMTP = {"_SMTP_HOST": "127.0.0.1", "_SMTP_PORT": "", "_SMTP_STARTTLS": "false"}
PLACEHOLDER = re.compile(r"^\.\.\.$|yourcompany")


@dataclass(frozen=True)
class How:
    """How the copy runs a README command."""

    # Variables its prose says to set first (e.g. "set TARGET_FORTNOX_TENANT_ID in .env, then").
    env: dict[str, str] = field(default_factory=dict)
    # Placeholders the reader fills in.
    fill: dict[str, str] = field(default_factory=dict)
    # `meltano run --dry-run`: Meltano resolves the environment, the job and its plugins and
    # stops there, for a job whose run needs what the copy lacks (named in `why`).
    dry_run: bool = False
    exit_code: int = 0
    why: str = ""


WAREHOUSE = "needs a PostgreSQL warehouse: tests/stack/test_warehouse.py runs these jobs"
REPEAT = (
    "the same job ran for real above; this variant differs only in settings or flags for one "
    "run, which a dry run shows Meltano takes, in prod"
)
RUN: dict[str, How] = {
    # Going live
    "meltano --environment prod invoke target-fortnox:authorize": How(),
    "meltano --environment prod invoke target-fortnox:verify-service-account": How(
        env={"TARGET_FORTNOX_TENANT_ID": TENANT}
    ),
    "meltano --environment prod invoke target-fortnox:status": How(),
    "meltano --environment prod invoke target-fortnox:preflight": How(),
    "meltano --environment prod invoke tap-fortnox-expenses:preflight": How(),
    "meltano --environment prod invoke target-fortnox:preflight --json": How(),
    "TARGET_FORTNOX_DRY_RUN=true meltano --environment prod run moment-to-fortnox": How(),
    "TARGET_MOMENT_DRY_RUN=true meltano --environment prod run fortnox-expenses-to-moment": How(),
    "meltano --environment prod run moment-to-fortnox": How(),
    "meltano --environment prod run fortnox-expenses-to-moment": How(),
    "meltano --environment prod invoke target-fortnox:report": How(),
    "meltano --environment prod invoke target-fortnox:report --failures": How(),
    "meltano --environment prod invoke target-fortnox:report --record invoices 7012": How(
        fill={"7012": "7001"}  # the copy seeds invoices 7001-7006
    ),
    "meltano --environment prod invoke target-fortnox:cutover": How(),
    "meltano --environment prod invoke tap-fortnox-expenses:cutover": How(),
    # Jobs and schedules
    "meltano schedule list": How(),
    # Use in your data stack
    "meltano --environment prod run moment-to-warehouse fortnox-expenses-to-warehouse": How(
        dry_run=True, why=WAREHOUSE
    ),
    """TAP_MOMENT__SELECT='["customers.customerNumber", "customers.name", "customers.email"]' """
    "meltano run moment-to-warehouse": How(dry_run=True, why=WAREHOUSE),
    """TAP_MOMENT_STREAM_MAPS='{"customers": {"name_upper": "name.upper()", "address2": null}, """
    """"invoices": null}' meltano run moment-to-warehouse""": How(dry_run=True, why=WAREHOUSE),
    "TAP_CSV_FOLDER_PATH=exports/kunder meltano --environment prod run csv-customers-to-fortnox": (
        How(
            dry_run=True,
            why="reads the reader's own CSV export: tests/stack/test_csv_to_fortnox.py runs it",
        )
    ),
    # Backfills
    "meltano --environment prod state clear --force prod:tap-fortnox-expenses-to-target-moment": (
        How()
    ),
    "meltano --environment prod state clear --force prod:tap-moment-to-target-fortnox": How(),
    "TAP_FORTNOX_EXPENSES_LOOKBACK_DAYS=365 meltano --environment prod run "
    "fortnox-expenses-to-moment": How(dry_run=True, why=REPEAT),
    "TAP_FORTNOX_EXPENSES_START_DATE=2026-01-01 meltano --environment prod run "
    "fortnox-expenses-to-moment": How(dry_run=True, why=REPEAT),
    "TAP_FORTNOX_EXPENSES_START_DATE=2025-01-01 meltano --environment prod run --state-id-suffix "
    "backfill-2025 fortnox-expenses-to-moment": How(dry_run=True, why=REPEAT),
    "meltano state list": How(),
    "meltano state get <id>": How(fill={"<id>": "prod:tap-moment-to-target-fortnox"}),
    # Troubleshooting
    "cat .secrets/run-store/dead-letters/target-fortnox.singer | meltano --environment prod "
    "invoke target-fortnox": How(),
    "meltano --environment prod run --force …": How(
        fill={"…": "moment-to-fortnox"}, dry_run=True, why=REPEAT
    ),
}

NAME = "a name in a sentence, not a command to run"
AUTHORIZE_VARIANT = (
    "`target-fortnox:authorize` (run above, in prod) with a fixed callback port or paste mode: "
    "fortnox-client/tests/test_onboarding.py and tests/operator/test_server_operations.py run them"
)
EXCLUDED: dict[str, str] = {
    "make demo": "the sandbox demo (dev by design): tests/test_demo.py runs it",
    "make test": "the test suite itself",
    "make install": "builds .venv from the package index; the checkout's .venv stands in for it",
    "meltano install": "the session fixture meltano_installed runs it in the checkout, whose "
    "plugin environments the copy uses",
    "meltano add utility airflow": "downloads Airflow from the package index",
    "meltano --environment prod invoke airflow scheduler": "needs Airflow and runs until stopped",
    "meltano add loader <name>": "a placeholder for any Singer loader, downloaded from its index",
    "meltano run tap-moment <name>": "a placeholder for that loader",
    "meltano select tap-moment ...": "a placeholder; it writes the rules into meltano.yml, which "
    "the README advises against for a warehouse-only selection",
    "meltano run": NAME,
    "meltano select": NAME,
    "meltano --environment prod …": NAME,
    "meltano --env-file .env.rehearsal --environment prod …": NAME,
    "meltano --environment prod invoke target-fortnox:authorize --port 8765": AUTHORIZE_VARIANT,
    "meltano --environment prod invoke target-fortnox:authorize --port 8765 --paste": (
        AUTHORIZE_VARIANT
    ),
    "meltano --environment prod invoke target-fortnox:authorize --port 8765 --no-browser": (
        AUTHORIZE_VARIANT
    ),
    "meltano --environment prod invoke target-fortnox:authorize --port 8765 --paste "
    "--service-account": AUTHORIZE_VARIANT,
    "ssh -L 8765:127.0.0.1:8765 you@server": "opens a tunnel to the reader's own server",
    "meltano --environment prod invoke target-fortnox:cutover --apply": "writes the project's "
    ".env and ledger, so the README's first real run would start today: "
    "tests/operator/test_cutover.py runs it (with --env-file) and the first run after it",
}
EXCLUDED_SECTIONS = {
    "Add to your own Meltano project": "steps in another Meltano project (meltano init) with the "
    "plugins from hub/: tests/test_add_to_meltano_project.py runs them there",
    "Development": "developer commands on the checkout, not the production project",
}
EXCLUDED_FENCES = {
    "cron": "crontab lines: cron starts them at their hour (`meltano` in them finds prod like "
    "any command in the project folder)",
}
# Commands the plugins print that cannot run as printed.
PRINTED_EXCLUDED = {
    "<config.json>": "outside Meltano: the reader's own config file",
}
# What the fix of a pre-flight check says to do before its command.
PRINTED_ENV = {
    ":verify-service-account": {"TARGET_FORTNOX_TENANT_ID": TENANT},
}


@dataclass(frozen=True)
class Command:
    text: str
    section: str
    setup: tuple[str, ...] = ()


def strip_comment(line: str) -> str:
    """``line`` without a shell comment (a ``#`` after whitespace, outside quotes)."""
    quote = None
    for i, char in enumerate(line):
        if quote:
            quote = None if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def logical_lines(block: str) -> list[str]:
    """A shell block's commands: continuations joined, comments and blank lines dropped."""
    lines, pending = [], ""
    for raw in block.splitlines():
        line = pending + raw
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        pending = ""
        code = " ".join(strip_comment(line).split())
        if code:
            lines.append(code)
    return lines


def is_setup(line: str) -> bool:
    """Only sets variables (``export``, ``NAME=value``) or sources a file: it prepares the block."""
    words = shlex.split(line)
    return words[0] in ("export", ".", "source") or all(ASSIGNMENT.match(w) for w in words)


def readme_blocks() -> Iterator[tuple[str, str, str]]:
    """(section, kind, content) of README.md: kind is a fence's info string or ``inline``."""
    section = ""
    tokens = MarkdownIt("commonmark").enable("table").parse(README.read_text(encoding="utf-8"))
    for i, token in enumerate(tokens):
        if token.type == "heading_open" and token.tag == "h2":
            section = tokens[i + 1].content
        elif token.type == "fence":
            yield section, token.info.strip(), token.content
        elif token.type == "inline":
            for child in token.children or []:
                if child.type == "code_inline":
                    yield section, "inline", " ".join(child.content.split())


def is_dotenv(lines: list[str]) -> bool:
    return bool(lines) and all(len(shlex.split(line)) == 1 and is_setup(line) for line in lines)


def readme_commands() -> list[Command]:
    """Every command README.md shows (excluded fences and sections left out), each once, in
    README order with "Going live" first."""
    found: list[Command] = []
    for section, kind, content in readme_blocks():
        if section in EXCLUDED_SECTIONS or kind in EXCLUDED_FENCES:
            continue
        if kind == "inline":
            if INLINE_COMMAND.search(content):
                found.append(Command(content, section))
            continue
        if kind not in SHELL_FENCES:
            continue
        lines = logical_lines(content)
        if is_dotenv(lines):
            continue
        setup: list[str] = []
        for line in lines:
            if is_setup(line):
                setup.append(line)
            else:
                found.append(Command(line, section, tuple(setup)))
    found.sort(key=lambda c: c.section != FIRST_SECTION)  # stable: README order otherwise
    unique: dict[str, Command] = {}
    for command in found:
        unique.setdefault(command.text, command)
    return list(unique.values())


def readme_dotenv() -> dict[str, str]:
    """The `.env` README "Going live" writes (its one block of bare assignments)."""
    blocks = [
        content
        for section, kind, content in readme_blocks()
        if section == FIRST_SECTION and kind in SHELL_FENCES and is_dotenv(logical_lines(content))
    ]
    assert len(blocks) == 1, f"README '{FIRST_SECTION}' should show one .env block: {blocks}"
    values = dotenv_values(stream=io.StringIO(blocks[0]))
    return {k: v or "" for k, v in values.items()}


# -- the prod-like copy ----------------------------------------------------------------------------


@dataclass
class ShellResult:
    command: str
    returncode: int
    stdout: str
    stderr: str

    @property
    def environments(self) -> list[str]:
        return ACTIVE.findall(self.stdout + self.stderr)

    def problem(self, exit_code: int = 0) -> str | None:
        """Why this run of a command is wrong, or None."""
        problems = []
        if self.returncode != exit_code:
            problems.append(f"exit code {self.returncode}, expected {exit_code}")
        if re.search(r"\bmeltano\s", self.command) and set(self.environments) != {PROD}:
            found = ", ".join(sorted(set(self.environments))) or "none"
            problems.append(f"Meltano environment(s) {found}, not {PROD} only")
        if not problems:
            return None
        output = (self.stdout[-1500:] + "\n" + self.stderr[-2500:]).strip()
        return f"$ {self.command}\n  -> {'; '.join(problems)}\n{output}"


@dataclass
class ProdProject:
    path: Path
    pipelines: Any
    smtp_port: int
    maildir: Path
    base_env: dict[str, str]

    def sh(
        self,
        command: str,
        *,
        setup: tuple[str, ...] = (),
        env: dict[str, str] | None = None,
        timeout: float = 180,
    ) -> ShellResult:
        """``command`` in bash in the project folder, after step 3's `. .venv/bin/activate`.

        When it prints a Fortnox consent URL (``authorize``), the test does what the administrator
        does: opens it, presses Approve, and the browser follows Fortnox's redirect to the
        command's callback. A URL that cannot be approved (another environment's closed port)
        interrupts the command, as Ctrl-C would, instead of letting it wait for a consent.
        """
        script = "\n".join(["set -o pipefail", ". .venv/bin/activate", *setup, command])
        with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
            process = subprocess.Popen(
                ["bash", "-c", script],
                cwd=self.path,
                env={**self.base_env, **(env or {})},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                text=True,
                start_new_session=True,
            )
            deadline, consent = time.monotonic() + timeout, None
            while process.poll() is None and time.monotonic() < deadline:
                if consent is None and (consent := CONSENT_URL.search(read_all(out))):
                    try:
                        approve_consent(consent[0])
                    except requests.RequestException as exc:
                        err.write(f"\n(the consent page could not be approved: {exc})\n")
                        os.killpg(process.pid, signal.SIGINT)
                time.sleep(0.1)
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                err.write(f"\n(killed after {timeout:g} s)\n")
            returncode = process.wait()
            return ShellResult(command, returncode, read_all(out), read_all(err))

    def mails(self) -> list[Message]:
        return [m for _, m in sorted(mailbox.Maildir(self.maildir).items(), key=lambda i: i[0])]


def prod_like(project: dict[str, Any], fortnox_url: str, moment_url: str) -> dict[str, Any]:
    """``project`` (meltano.yml) with prod's systems at the sandboxes, the other environments'
    at a closed port, and the checkout's plugin packages in every pip_url."""
    urls = {
        "api_url": {"fortnox": f"{fortnox_url}/3", "moment": f"{moment_url}/api/1.0"},
        "token_url": {"fortnox": f"{fortnox_url}/oauth-v1/token"},
    }
    for environment in project["environments"]:
        plugins = environment.get("config", {}).get("plugins", {})
        for plugin in plugins.get("extractors", []) + plugins.get("loaders", []):
            system = "fortnox" if "fortnox" in plugin["name"] else "moment"
            config = plugin.get("config", {})
            for key, by_system in urls.items():
                if key in config:
                    config[key] = by_system[system] if environment["name"] == PROD else CLOSED
    for plugin in project["plugins"]["extractors"] + project["plugins"]["loaders"]:
        plugin["pip_url"] = plugin["pip_url"].replace("${MELTANO_PROJECT_ROOT}", str(ROOT))
    return project


def dotenv_for_sandboxes(readme_env: dict[str, str], smtp_port: int, moment_url: str) -> str:
    """README's `.env` with the sandbox's values for its placeholders; every plugin that mails
    (has a notify address) mails through the test's SMTP server, whatever server README shows;
    and Moment's URL for the pre-flight commands (they read the other plugin's Moment settings
    from its variables, where real Moment is the default)."""
    env: dict[str, str] = {}
    for name, value in readme_env.items():
        if PLACEHOLDER.search(value) and not name.endswith(("_NOTIFY_EMAIL", *TEST_SMTP)):
            suffix = next((s for s in SANDBOX_VALUES if name.endswith(s)), None)
            assert suffix, (
                f"README's .env sets {name}={value}: add its sandbox value to SANDBOX_VALUES"
            )
            value = SANDBOX_VALUES[suffix]
        env[name] = value
    for name in [n for n in env if n.endswith("_NOTIFY_EMAIL")]:
        prefix = name.removesuffix("_NOTIFY_EMAIL")
        env |= {prefix + suffix: value for suffix, value in TEST_SMTP.items()}
    env |= {name: str(smtp_port) for name in env if name.endswith("_SMTP_PORT")}
    for prefix in ("TAP_MOMENT", "TARGET_MOMENT"):
        env[f"{prefix}_API_URL"] = f"{moment_url}/api/1.0"
    return "".join(f"{name}={shlex.quote(value)}\n" for name, value in env.items())


CONSENT_URL = re.compile(r"https?://\S+/oauth-v1/auth\?\S+")


def read_all(file: IO[str]) -> str:
    file.flush()
    file.seek(0)
    return file.read()


def approve_consent(url: str) -> None:
    """Open Fortnox's consent page and press Approve; the redirect goes to the command."""
    http = requests.Session()
    page = http.get(url, timeout=30)
    page.raise_for_status()
    form = re.search(r'<form[^>]*action="([^"]*)"', page.text)
    assert form, f"no form on the consent page {url}"
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.text))
    answer = http.post(
        urljoin(page.url, html.unescape(form[1])),
        data={**fields, "decision": "approve"},
        timeout=60,
    )
    answer.raise_for_status()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def accept_any_login(*_: Any) -> AuthResult:
    return AuthResult(success=True, handled=False)


@pytest.fixture(scope="module")
def prod(pipelines: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProdProject]:
    work = tmp_path_factory.mktemp("prod-like")
    path = work / "project"
    path.mkdir()
    fortnox, moment = pipelines.fortnox, pipelines.moment
    # A few of each record: a command's cost is then Meltano's start-up, not volume.
    fortnox.admin("POST", "seed", {"seed": 1, "supplierinvoices": 6, "moment_projects": 4})
    moment.admin("POST", "seed", {"seed": 1, "customers": 6, "projects": 4, "invoices": 6})
    # A customer Fortnox refuses (postal code too long): the failure e-mail and the dead letters.
    moment.admin(
        "POST",
        "customers",
        {"customerNumber": "8901", "name": "Lång Postkod AB", "postalCode": "211 22 MALMÖ C"},
    )

    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    (path / "meltano.yml").write_text(
        yaml.safe_dump(prod_like(project, fortnox.url, moment.url), sort_keys=False),
        encoding="utf-8",
    )
    (path / ".venv").symlink_to(ROOT / ".venv", target_is_directory=True)
    (path / ".meltano").mkdir()
    for kind in ("extractors", "loaders"):
        (path / ".meltano" / kind).symlink_to(ROOT / ".meltano" / kind, target_is_directory=True)

    maildir = work / "mail"
    smtp_port = free_port()
    controller = Controller(
        Mailbox(maildir),
        hostname="127.0.0.1",
        port=smtp_port,
        authenticator=accept_any_login,
        auth_require_tls=False,
    )
    controller.start()
    (path / ".env").write_text(
        dotenv_for_sandboxes(readme_dotenv(), smtp_port, moment.url), encoding="utf-8"
    )
    base_env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TAP_", "TARGET_", "MELTANO_"))
    }
    # No real browser: `authorize` prints the consent URL, the test approves it (ProdProject.sh).
    base_env |= {"BROWSER": "true", "MELTANO_SEND_ANONYMOUS_USAGE_STATS": "false"}
    try:
        yield ProdProject(path, pipelines, smtp_port, maildir, base_env)
    finally:
        controller.stop()


def run_printed(prod: ProdProject, commands: list[str]) -> list[str]:
    """Run commands a plugin printed in a shell that selects dev; the problems found."""
    problems = []
    for command in commands:
        env = {"MELTANO_ENVIRONMENT": "dev"}
        for marker, extra in PRINTED_ENV.items():
            if marker in command:
                env |= extra
        problem = prod.sh(command, env=env).problem()
        if problem:
            problems.append(problem)
    return problems


# -- the tests -------------------------------------------------------------------------------------


def test_every_readme_command_is_run_or_excluded() -> None:
    commands = {c.text: c for c in readme_commands()}
    unknown = [
        f"{c.section}: {t}" for t, c in commands.items() if t not in RUN and t not in EXCLUDED
    ]
    assert not unknown, (
        "README commands neither run nor excluded by tests/test_readme_commands.py: add each to "
        "RUN (how to run it in the prod-like copy) or to EXCLUDED (why not):\n  "
        + "\n  ".join(unknown)
    )
    gone = [t for t in [*RUN, *EXCLUDED] if t not in commands]
    assert not gone, "no longer in README.md, remove from RUN/EXCLUDED:\n  " + "\n  ".join(gone)
    assert not set(RUN) & set(EXCLUDED)


def test_preflight_fixes_lead_to_prod(prod: ProdProject) -> None:
    """A pre-flight before Fortnox is connected says how to connect; that command reaches prod."""
    result = prod.sh("meltano --environment prod invoke tap-fortnox-expenses:preflight --json")
    assert result.returncode == 1, result.stderr[-3000:]
    report = json.loads(result.stdout)
    fixes = " ".join(check.get("fix") or "" for check in report["checks"])
    printed = list(dict.fromkeys(re.findall(r"`(meltano [^`]+)`", fixes)))
    assert any(":authorize" in c for c in printed), fixes
    problems = run_printed(prod, printed)
    assert not problems, "pre-flight fixes that do not lead to prod:\n" + "\n\n".join(problems)


def test_readme_commands_run_in_prod_as_written(prod: ProdProject) -> None:
    problems = []
    for command in readme_commands():
        if command.text in EXCLUDED:
            continue
        how = RUN.get(command.text, How())
        text = command.text
        for placeholder, value in how.fill.items():
            text = text.replace(placeholder, value)
        if how.dry_run:
            text = re.sub(r"\bmeltano (.*?)\brun\b", r"meltano \1run --dry-run", text, count=1)
        result = prod.sh(text, setup=command.setup, env=how.env)
        problem = result.problem(how.exit_code)
        if problem:
            problems.append(f"[{command.section}] {problem}")
    assert not problems, (
        f"{len(problems)} README command(s) not right in prod as written:\n\n"
        + "\n\n".join(problems)
    )


def test_failure_mail_replay_leads_to_prod(prod: ProdProject) -> None:
    """The README's first real run mailed the customer Fortnox refused; its replay reaches prod."""
    mails = [m for m in prod.mails() if "target-fortnox" in m["Subject"]]
    assert mails, "no failure e-mail of target-fortnox reached the test's SMTP server"
    payload = mails[-1].get_payload(decode=True)
    assert isinstance(payload, bytes)
    body = payload.decode()
    assert "8901" in body
    printed = [
        line.strip()
        for line in body.splitlines()
        if line.startswith("  ") and re.match(r"(meltano|cat) ", line.strip())
    ]
    runnable = [c for c in printed if not any(marker in c for marker in PRINTED_EXCLUDED)]
    assert runnable, body
    problems = run_printed(prod, runnable)
    assert not problems, "failure e-mail commands that do not lead to prod:\n" + "\n\n".join(
        problems
    )
