"""``fortnox-auth authorize`` with a real browser: headless Chromium approves the consent.

The command runs as a child process with ``--no-browser``; the test reads the consent URL it
prints, lets Chromium (driven by Selenium through Debian's chromedriver) open the sandbox's
consent page and click Approve, and expects the command to end connected. Chromium follows the
redirect to the command's loopback callback itself, exactly as a user's browser would.

Needs ``apt-get install chromium chromium-driver`` and ``pip install selenium``; skipped (with
that reason) when they are missing.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
TENANT = "1234567"

if not CHROMIUM.exists() or not Path(CHROMEDRIVER).exists():
    pytest.skip(
        "headless Chromium is not installed: apt-get install -y chromium chromium-driver "
        "(needs /usr/bin/chromium and chromedriver)",
        allow_module_level=True,
    )
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed: pip install -e 'fortnox-client[test]'"
)
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support import expected_conditions  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402


@pytest.fixture
def chromium(tmp_path: Path) -> Iterator[Any]:
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",  # small /dev/shm in containers
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(flag)
    # An explicit driver path: Selenium Manager would otherwise try to download one.
    service = webdriver.ChromeService(executable_path=CHROMEDRIVER)
    driver = webdriver.Chrome(options=options, service=service)
    driver.set_page_load_timeout(30)
    try:
        yield driver
    finally:
        driver.quit()


def test_headless_chromium_approves_and_the_command_ends_connected(
    fortnox_sandbox: Any, tmp_path: Path, chromium: Any
) -> None:
    store = tmp_path / "secrets" / "fortnox-token.json"
    config = tmp_path / "fortnox.json"
    config.write_text(
        json.dumps(
            {
                "client_id": "sandbox-client",
                "client_secret": "sandbox-secret",
                "api_url": f"{fortnox_sandbox.url}/3",
                "token_url": f"{fortnox_sandbox.url}/oauth-v1/token",
                "token_store_path": str(store),
                "max_requests_per_5s": 0,
            }
        )
    )
    command = [
        str(Path(sys.executable).with_name("fortnox-auth")),
        "authorize",
        "--no-browser",
        "--timeout",
        "90",
        "--config",
        str(config),
    ]
    process = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    lines: queue.Queue[str | None] = queue.Queue()

    def pump() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            lines.put(line)
        lines.put(None)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    try:
        url = None
        while url is None:
            line = lines.get(timeout=30)
            assert line is not None, f"no consent URL printed:\n{''.join(seen)}"
            seen.append(line)
            match = re.search(r"(http://\S+/oauth-v1/auth\?\S+)", line)
            url = match.group(1) if match else None

        chromium.get(url)
        assert "service account" not in chromium.page_source
        chromium.find_element(By.CSS_SELECTOR, "button[value='approve']").click()
        WebDriverWait(chromium, 30).until(expected_conditions.title_is("Connected to Fortnox"))
        landing = chromium.current_url

        assert process.wait(30) == 0, process.stderr.read() if process.stderr else ""
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    while (line := lines.get(timeout=30)) is not None:
        seen.append(line)
    out = "".join(seen)
    assert re.match(r"http://127\.0\.0\.1:\d+/callback\?", landing)
    assert "Connected to Fortnox." in out
    assert f"DatabaseNumber:   {TENANT}" in out
    assert "is now connected" in chromium.page_source
    assert stat.S_IMODE(store.stat().st_mode) == 0o600
    assert json.loads(store.read_text())["refresh_token_grant"]["tenant_id"] == TENANT
