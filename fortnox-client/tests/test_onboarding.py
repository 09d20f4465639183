"""``fortnox-auth`` against the real Fortnox sandbox over HTTP (root fixture ``fortnox_sandbox``).

The consent page is driven by an HTTP client that parses the sandbox's HTML form and submits
Approve or Deny, like a user would; the browser version is in ``test_onboarding_browser.py``.
Covers: a whole consent with the console script (store 0600, tenant printed, chain usable), a
service-account consent, a forged state, Deny, a timeout, client credentials right and wrong,
and the settings sources (``--config FILE`` / ``--config ENV`` with prefix detection).
"""

from __future__ import annotations

import json
import os
import queue
import re
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit, urlunsplit

import pytest
import requests
from fortnox_client import FortnoxClient, FortnoxSettings
from fortnox_client.cli import ConfigError, env_config, load_config, main
from fortnox_client.onboarding import (
    REQUIRED_SCOPES,
    AuthorizationFlow,
    Connection,
    ConsentDenied,
    StateMismatch,
    auth_url_for,
)

TENANT = "1234567"  # the sandbox company's DatabaseNumber
SCRIPT = Path(sys.executable).with_name("fortnox-auth")


class ConsentForm(HTMLParser):
    """The consent page's form: its action, hidden fields and submit buttons."""

    def __init__(self) -> None:
        super().__init__()
        self.action: str | None = None
        self.fields: dict[str, str] = {}
        self.buttons: dict[str, tuple[str, str]] = {}  # label → (name, value)
        self._button: tuple[str, str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.action = attributes.get("action", "")
        elif tag == "input" and attributes.get("type") == "hidden":
            self.fields[attributes["name"]] = attributes.get("value", "")
        elif tag == "button" and attributes.get("type", "submit") == "submit":
            self._button = (attributes.get("name", ""), attributes.get("value", ""))

    def handle_data(self, data: str) -> None:
        if self._button is not None and data.strip():
            self.buttons[data.strip()] = self._button

    def handle_endtag(self, tag: str) -> None:
        if tag == "button":
            self._button = None


def submit_consent(url: str, label: str = "Approve", *, follow: bool = True) -> requests.Response:
    """Open the consent URL, press the button called ``label``; follow the redirect if asked."""
    http = requests.Session()
    page = http.get(url, timeout=10)
    assert page.status_code == 200, page.text
    form = ConsentForm()
    form.feed(page.text)
    assert form.action is not None, "no form on the consent page"
    name, value = form.buttons[label]
    return http.post(
        urljoin(page.url, form.action),
        data={**form.fields, name: value},
        allow_redirects=follow,
        timeout=30,
    )


@pytest.fixture
def sandbox(fortnox_sandbox: Any) -> Any:
    return fortnox_sandbox


@pytest.fixture
def config(sandbox: Any, tmp_path: Path) -> dict[str, Any]:
    return {
        "client_id": "sandbox-client",
        "client_secret": "sandbox-secret",
        "api_url": f"{sandbox.url}/3",
        "token_url": f"{sandbox.url}/oauth-v1/token",
        "token_store_path": str(tmp_path / "secrets" / "fortnox-token.json"),
        "max_requests_per_5s": 0,
    }


@pytest.fixture
def config_file(config: dict[str, Any], tmp_path: Path) -> Path:
    path = tmp_path / "fortnox.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    return path


@pytest.fixture
def company(config: dict[str, Any], tmp_path: Path) -> dict[str, Any]:
    """The sandbox company as Fortnox reports it, read with a service-account token."""
    settings = FortnoxSettings.from_config(
        {**config, "tenant_id": TENANT, "token_store_path": str(tmp_path / "cc.json")}
    )
    body = FortnoxClient(settings).get_path("companyinformation")
    info: dict[str, Any] = body["CompanyInformation"]
    return info


class Lines:
    """A child process's stdout, line by line, with a deadline instead of a blocking read."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None
        stream = process.stdout

        def pump() -> None:
            for line in stream:
                self._queue.put(line)
            self._queue.put(None)

        threading.Thread(target=pump, daemon=True).start()

    def wait_for(self, pattern: str, timeout: float = 30) -> re.Match[str]:
        while True:
            line = self._queue.get(timeout=timeout)
            if line is None:
                raise AssertionError(f"output ended without {pattern!r}:\n{''.join(self.seen)}")
            self.seen.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def rest(self) -> str:
        while (line := self._queue.get(timeout=30)) is not None:
            self.seen.append(line)
        return "".join(self.seen)


@pytest.fixture
def run_authorize(config_file: Path) -> Iterator[Any]:
    """Start ``fortnox-auth authorize --no-browser`` as a child; killed if a test leaves it.

    ``browser=True`` leaves out ``--no-browser``; ``env`` replaces the child's environment; its
    stdin is a pipe (``process.stdin``) for the pasted redirect address.
    """
    started: list[subprocess.Popen[str]] = []

    def start(
        *extra: str,
        command: list[str] | None = None,
        browser: bool = False,
        env: dict[str, str] | None = None,
    ) -> tuple[subprocess.Popen[str], Lines]:
        base = command or [str(SCRIPT)]
        flags = [] if browser else ["--no-browser"]
        process = subprocess.Popen(
            [*base, "authorize", *flags, "--config", str(config_file), *extra],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**(os.environ if env is None else env), "PYTHONUNBUFFERED": "1"},
        )
        started.append(process)
        return process, Lines(process)

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
        process.wait(10)


def _flow_in_thread(
    flow: AuthorizationFlow, timeout: float
) -> tuple[threading.Thread, dict[str, Any]]:
    outcome: dict[str, Any] = {}

    def wait() -> None:
        try:
            outcome["connection"] = flow.wait(timeout)
        except Exception as exc:  # handed to the test thread to assert on
            outcome["error"] = exc

    thread = threading.Thread(target=wait, daemon=True)
    thread.start()
    return thread, outcome


# -- (1) the whole consent, with the console script ------------------------------------------------
def test_authorize_with_consent_form_connects_and_writes_private_store(
    run_authorize: Any, config: dict[str, Any], company: dict[str, Any]
) -> None:
    process, lines = run_authorize("--timeout", "60")
    url = lines.wait_for(r"(http://\S+/oauth-v1/auth\?\S+)").group(1)
    query = {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}
    assert urlsplit(url)._replace(query="").geturl() == auth_url_for(config["token_url"])
    assert query["client_id"] == "sandbox-client"
    assert query["scope"].split() == list(REQUIRED_SCOPES)
    assert query["response_type"] == "code"
    assert query["access_type"] == "offline"
    assert "account_type" not in query
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/callback", query["redirect_uri"])
    assert len(query["state"]) >= 32

    page = submit_consent(url, "Approve")  # follows the redirect to the command's callback

    assert process.wait(30) == 0, process.stderr.read() if process.stderr else ""
    out = lines.rest()
    assert "Connected to Fortnox" in page.text
    assert company["CompanyName"] in page.text
    assert "Connected to Fortnox." in out
    assert f"Company:          {company['CompanyName']} ({company['OrganizationNumber']})" in out
    assert f"DatabaseNumber:   {TENANT}" in out
    assert f"Scopes granted:   {' '.join(REQUIRED_SCOPES)}" in out

    store = Path(config["token_store_path"])
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    chain = json.loads(store.read_text())["refresh_token_grant"]
    assert chain["tenant_id"] == TENANT
    assert chain["refresh_token"]
    for secret in (chain["refresh_token"], chain["access_token"], config["client_secret"]):
        assert secret not in out
    # The stored chain is live: a plugin's client refreshes and reads with it.
    settings = FortnoxSettings.from_config(config)
    client = FortnoxClient(settings)
    client.tokens.force_refresh(chain["access_token"])
    assert client.get_path("settings/company")["CompanySettings"]["DatabaseNumber"] == TENANT


def test_authorize_opens_the_consent_url_in_the_browser(
    config_file: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    opened: list[str] = []

    def browser(url: str) -> bool:
        # Stands in for the user's browser: the real consent form is approved over HTTP.
        opened.append(url)
        threading.Thread(target=submit_consent, args=(url, "Approve"), daemon=True).start()
        return True

    monkeypatch.setattr("fortnox_client.cli.webbrowser.open", browser)
    monkeypatch.setenv("DISPLAY", ":0")  # a desktop: without a display the command asks to paste
    assert main(["authorize", "--timeout", "30", "--config", str(config_file)]) == 0
    out = capsys.readouterr().out
    assert len(opened) == 1
    assert opened[0] in out
    assert "Could not open a browser" not in out
    assert f"DatabaseNumber:   {TENANT}" in out


def test_module_entry_point_runs_the_same_command(run_authorize: Any) -> None:
    process, lines = run_authorize(
        "--timeout", "60", command=[sys.executable, "-m", "fortnox_client.cli"]
    )
    url = lines.wait_for(r"(http://\S+/oauth-v1/auth\?\S+)").group(1)
    submit_consent(url, "Approve")
    assert process.wait(30) == 0
    assert f"DatabaseNumber:   {TENANT}" in lines.rest()


def test_service_account_consent_asks_for_account_type_service(config: dict[str, Any]) -> None:
    with AuthorizationFlow(FortnoxSettings.from_config(config), service_account=True) as flow:
        url = flow.start()
        assert parse_qs(urlsplit(url).query)["account_type"] == ["service"]
        assert "service account" in requests.get(url, timeout=10).text
        thread, outcome = _flow_in_thread(flow, 30)
        submit_consent(url, "Approve")
        thread.join(30)
    connection: Connection = outcome["connection"]
    assert connection.service_account
    assert connection.database_number == TENANT
    assert f"set tenant_id={TENANT}" in "\n".join(connection.lines())


# -- (1b) a server without a browser: the redirect address pasted --------------------------------
def _redirect_address(url: str) -> str:
    """Approve in "another computer's browser": the address it is sent to (which it could not
    open, the command's loopback port being on the server)."""
    redirect = submit_consent(url, "Approve", follow=False)
    assert redirect.status_code in (302, 303), redirect.text
    return str(redirect.headers["Location"])


def test_authorize_paste_takes_the_redirect_address_from_stdin(
    run_authorize: Any, config: dict[str, Any]
) -> None:
    process, lines = run_authorize("--paste", "--timeout", "60")
    url = lines.wait_for(r"(http://\S+/oauth-v1/auth\?\S+)").group(1)
    lines.wait_for(r"paste it here")
    address = _redirect_address(url)
    assert process.stdin is not None
    # A wrong paste first (half an address): the command says so and waits for another.
    process.stdin.write("http://127.0.0.1/callback?code=\n")
    process.stdin.write(f"  {address}  \n")
    process.stdin.flush()

    assert process.wait(30) == 0, process.stderr.read() if process.stderr else ""
    out, err = lines.rest(), process.stderr.read() if process.stderr else ""
    assert "That is not the address Fortnox sent the browser to" in err
    assert "Connected to Fortnox." in out
    assert f"DatabaseNumber:   {TENANT}" in out
    store = Path(config["token_store_path"])
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    chain = json.loads(store.read_text())["refresh_token_grant"]
    assert chain["tenant_id"] == TENANT
    code = parse_qs(urlsplit(address).query)["code"][0]
    for secret in (code, chain["refresh_token"], chain["access_token"]):
        assert secret not in out + err


def test_authorize_paste_with_a_foreign_state_stores_nothing(
    run_authorize: Any, config: dict[str, Any]
) -> None:
    process, lines = run_authorize("--paste", "--timeout", "60")
    url = lines.wait_for(r"(http://\S+/oauth-v1/auth\?\S+)").group(1)
    location = urlsplit(_redirect_address(url))
    params = {k: v[0] for k, v in parse_qs(location.query).items()}
    params["state"] = "the-state-of-an-older-tab"
    assert process.stdin is not None
    process.stdin.write(urlunsplit(location._replace(query=urlencode(params))) + "\n")
    process.stdin.flush()

    assert process.wait(30) == 1
    err = process.stderr.read() if process.stderr else ""
    assert "state parameter does not match" in err
    assert "Nothing was stored" in err
    assert "Connected" not in lines.rest()
    assert not Path(config["token_store_path"]).exists()


def test_without_a_display_authorize_asks_for_the_address_and_opens_no_browser(
    run_authorize: Any, config: dict[str, Any], tmp_path: Path
) -> None:
    if sys.platform == "darwin" or sys.platform.startswith("win"):
        pytest.skip("macOS and Windows always have a display")
    opened = tmp_path / "browser-was-started"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$@" > {opened}\n')
    browser.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    env["BROWSER"] = str(browser)  # what webbrowser.open would start
    process, lines = run_authorize("--timeout", "60", browser=True, env=env)
    url = lines.wait_for(r"(http://\S+/oauth-v1/auth\?\S+)").group(1)
    lines.wait_for(r"No display here")
    assert process.stdin is not None
    process.stdin.write(_redirect_address(url) + "\n")
    process.stdin.flush()

    assert process.wait(30) == 0, process.stderr.read() if process.stderr else ""
    assert f"DatabaseNumber:   {TENANT}" in lines.rest()
    assert not opened.exists()
    assert Path(config["token_store_path"]).exists()


# -- (2) state mismatch ----------------------------------------------------------------------------
def test_callback_with_foreign_state_is_refused_and_nothing_stored(config: dict[str, Any]) -> None:
    with AuthorizationFlow(FortnoxSettings.from_config(config)) as flow:
        url = flow.start()
        thread, outcome = _flow_in_thread(flow, 30)
        # A real code from the sandbox, delivered with another state (a forged or stale callback).
        redirect = submit_consent(url, "Approve", follow=False)
        assert redirect.status_code in (302, 303)
        location = urlsplit(redirect.headers["Location"])
        params = {k: v[0] for k, v in parse_qs(location.query).items()}
        assert params["code"]
        params["state"] = "not-the-state-this-command-sent"
        page = requests.get(urlunsplit(location._replace(query=urlencode(params))), timeout=30)
        thread.join(30)

    error = outcome["error"]
    assert isinstance(error, StateMismatch)
    assert "state parameter does not match" in str(error)
    assert "Nothing was stored" in str(error)
    assert page.status_code == 400
    assert "state parameter does not match" in page.text
    assert not Path(config["token_store_path"]).exists()


# -- (3) Deny --------------------------------------------------------------------------------------
def test_deny_fails_with_clear_message_and_exit_code(
    run_authorize: Any, config: dict[str, Any]
) -> None:
    process, lines = run_authorize("--timeout", "60")
    url = lines.wait_for(r"(http://\S+/oauth-v1/auth\?\S+)").group(1)
    page = submit_consent(url, "Deny")

    assert process.wait(30) == 1
    stderr = process.stderr.read() if process.stderr else ""
    assert "denied in Fortnox (error=access_denied)" in stderr
    assert "Run fortnox-auth authorize again and press Approve" in stderr
    assert "Connected" not in lines.rest()
    assert page.status_code == 400
    assert "denied" in page.text
    assert not Path(config["token_store_path"]).exists()


def test_consent_request_refused_by_fortnox_names_the_fix(config: dict[str, Any]) -> None:
    # An unknown scope makes Fortnox redirect back with error=invalid_scope instead of a page.
    settings = FortnoxSettings.from_config(config)
    with AuthorizationFlow(settings, scopes=("customer", "no-such-scope")) as flow:
        url = flow.start()
        thread, outcome = _flow_in_thread(flow, 30)
        requests.get(url, timeout=30)
        thread.join(30)
    error = outcome["error"]
    assert isinstance(error, ConsentDenied)
    assert "invalid_scope" in str(error)
    assert "developer portal" in str(error)


# -- (4) timeout -----------------------------------------------------------------------------------
def test_authorize_times_out_with_what_to_do(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["authorize", "--no-browser", "--timeout", "0.3", "--config", str(config_file)])
    out, err = capsys.readouterr()
    assert code == 3
    assert "/oauth-v1/auth?" in out
    assert "No answer from Fortnox within 0.3 s" in err
    assert "Run fortnox-auth authorize again" in err
    assert "--timeout" in err


# -- (5) service account ---------------------------------------------------------------------------
def test_verify_service_account_prints_tenant_and_scopes(
    config_file: Path, company: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["verify-service-account", "--config", str(config_file), "--tenant-id", TENANT])
    out, _ = capsys.readouterr()
    assert code == 0
    assert "Service account works" in out
    assert f"{company['CompanyName']} ({company['OrganizationNumber']})" in out
    assert f"DatabaseNumber:   {TENANT} (tenant_id {TENANT})" in out
    assert "Scopes granted:   customer project invoice" in out


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ({"client_secret": "wrong-secret-value"}, "Check client_id and client_secret"),
        ({"tenant_id": "7777777"}, "Check tenant_id (the company's DatabaseNumber)"),
        ({"tenant_id": None}, "tenant_id is not set"),
    ],
)
def test_verify_service_account_wrong_credentials_are_actionable(
    config: dict[str, Any],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    override: dict[str, Any],
    expected: str,
) -> None:
    path = tmp_path / "wrong.json"
    path.write_text(json.dumps({**config, "tenant_id": TENANT, **override}))
    code = main(["verify-service-account", "--config", str(path)])
    out, err = capsys.readouterr()
    assert code == 1
    assert out == ""
    assert expected in err
    assert "wrong-secret-value" not in err


# -- settings sources ------------------------------------------------------------------------------
def test_verify_reads_meltano_style_environment(
    config: dict[str, Any],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.chdir(tmp_path)  # no .env from the repository
    for key, value in {**config, "tenant_id": TENANT}.items():
        monkeypatch.setenv(f"TAP_FORTNOX_EXPENSES_{key.upper()}", str(value))
    assert main(["verify-service-account", "--config", "ENV"]) == 0
    assert f"tenant_id {TENANT}" in capsys.readouterr().out


def test_env_prefix_detection_and_override() -> None:
    environ = {
        "TAP_FORTNOX_EXPENSES_CLIENT_ID": "tap",
        "TARGET_FORTNOX_CLIENT_ID": "target",
        "TARGET_FORTNOX_TOKEN_STORE_PATH": "/x/store.json",
        "TARGET_FORTNOX__SELECT": "not-a-setting",
        "PATH": "/bin",
    }
    assert env_config(None, environ=environ) == {
        "client_id": "target",
        "token_store_path": "/x/store.json",
    }
    assert env_config("TAP_FORTNOX_EXPENSES", environ=environ) == {"client_id": "tap"}
    only_tap = {"TAP_FORTNOX_EXPENSES_CLIENT_SECRET": "s"}
    assert env_config(None, environ=only_tap) == {"client_secret": "s"}
    with pytest.raises(ConfigError, match="TARGET_FORTNOX_CLIENT_ID"):
        env_config(None, environ={"PATH": "/bin"})


def test_config_files_and_env_merge_in_order(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    first.write_text(json.dumps({"client_id": "a", "api_url": "http://a/3"}))
    second.write_text(json.dumps({"client_id": "b"}))
    environ = {"TARGET_FORTNOX_API_URL": "http://env/3"}
    merged = load_config([str(first), str(second), "ENV"], environ=environ)
    assert merged == {"client_id": "b", "api_url": "http://env/3"}
    with pytest.raises(ConfigError, match="does not exist"):
        load_config([str(tmp_path / "missing.json")])
