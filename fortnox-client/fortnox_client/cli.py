"""``fortnox-auth``: connect a Fortnox company (authorize, verify-service-account, status).

Owns the command line and where settings come from. Settings are read the way singer-sdk plugins
read them: ``--config FILE`` (repeatable, later files win) and/or ``--config ENV``, which reads
``<PREFIX>_<SETTING>`` environment variables (plus a ``.env`` found in the current directory or
a parent; the real environment wins). Meltano passes a plugin command its settings that way, so
``meltano invoke target-fortnox:authorize`` works with ``args: "authorize --config ENV"``.
The prefix is ``--env-prefix``, else the first of ``TARGET_FORTNOX`` and
``TAP_FORTNOX_EXPENSES`` whose ``_CLIENT_ID`` (or any setting) is set. No ``--config`` at all
means ``--config ENV``.

Exit codes: 0 done/connected; 1 failed (message on stderr); 2 ``status --warn-exit`` and the
refresh token expires within 7 days; 3 ``authorize`` timed out; 64 bad command line;
130 interrupted.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import threading
import webbrowser
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn, TextIO

from dotenv import dotenv_values, find_dotenv

from fortnox_client.onboarding import (
    AuthorizationFlow,
    ConsentTimeout,
    NotARedirect,
    OnboardingError,
    token_status,
    verify_service_account,
)
from fortnox_client.settings import DEFAULT_TOKEN_STORE_PATH, FortnoxSettings, SettingsError
from fortnox_client.token_store import TokenStore

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_WARNING = 2
EXIT_TIMEOUT = 3
EXIT_USAGE = 64
EXIT_INTERRUPTED = 130

ENV = "ENV"
# The plugins whose settings carry the Fortnox connection, in the order they are tried.
KNOWN_ENV_PREFIXES = ("TARGET_FORTNOX", "TAP_FORTNOX_EXPENSES")


class ConfigError(Exception):
    """The settings could not be read; the message says where to put them."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # argparse's own exit code (2) would be mistaken for status's "expires soon".
        self.print_usage(sys.stderr)
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    common = _Parser(add_help=False)
    common.add_argument(
        "--config",
        action="append",
        metavar="PATH|ENV",
        help="a JSON settings file (repeatable; later wins), or ENV for <PREFIX>_<SETTING> "
        "environment variables (the default)",
    )
    common.add_argument(
        "--env-prefix",
        metavar="PREFIX",
        help=f"environment prefix for --config ENV (default: the first of "
        f"{', '.join(KNOWN_ENV_PREFIXES)} that is set)",
    )
    parser = _Parser(
        prog="fortnox-auth",
        description="Connect this project to a Fortnox company and check the connection.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    authorize = commands.add_parser(
        "authorize",
        parents=[common],
        help="OAuth consent in the browser; writes the token store",
        description="Open Fortnox's consent page, receive the answer on a loopback redirect URI "
        "(http://127.0.0.1:<port>/callback) or as the redirect address pasted from a browser "
        "on another machine (--paste), and store the new token chain.",
    )
    authorize.add_argument(
        "--port",
        type=_port,
        default=0,
        help="callback port (0 = any free port; real Fortnox needs the port of the redirect URI "
        "registered for the app)",
    )
    authorize.add_argument(
        "--timeout", type=_seconds, default=300.0, help="seconds to wait for the consent (300)"
    )
    authorize.add_argument(
        "--no-browser", action="store_true", help="only print the consent URL, do not open it"
    )
    authorize.add_argument(
        "--paste",
        action="store_true",
        help="for a machine without a browser: print the consent URL, open it on any other "
        "machine, and paste here the address the browser lands on after approving (also the "
        "default when no display is found); the callback port still listens, for an SSH tunnel",
    )
    authorize.add_argument(
        "--service-account",
        action="store_true",
        help="ask for a service account (account_type=service; an administrator must approve)",
    )

    verify = commands.add_parser(
        "verify-service-account",
        parents=[common],
        help="client-credentials token for tenant_id, then read the company",
    )
    verify.add_argument("--tenant-id", help="override the tenant_id setting (DatabaseNumber)")

    status = commands.add_parser(
        "status", parents=[common], help="what the token store holds and when it lapses"
    )
    status.add_argument("--json", action="store_true", help="machine-readable output")
    status.add_argument(
        "--warn-exit",
        action="store_true",
        help="exit 2 when the refresh token expires within 7 days",
    )
    return parser


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}") from None
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0-65535, got {port}")
    return port


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if seconds <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text}")
    return seconds


# -- settings ------------------------------------------------------------------------------------


def load_config(
    sources: Sequence[str] | None,
    *,
    env_prefix: str | None = None,
    environ: Mapping[str, str] | None = None,
    dotenv_path: str | None = None,
) -> dict[str, Any]:
    """Merge the ``--config`` sources in order; ``ENV`` reads the environment (and ``.env``)."""
    config: dict[str, Any] = {}
    for source in sources or [ENV]:
        if source == ENV:
            config.update(env_config(env_prefix, environ=environ, dotenv_path=dotenv_path))
        else:
            config.update(_file_config(Path(source)))
    return config


def env_config(
    prefix: str | None,
    *,
    environ: Mapping[str, str] | None = None,
    dotenv_path: str | None = None,
) -> dict[str, Any]:
    """``<PREFIX>_CLIENT_ID=…`` → ``{"client_id": "…"}`` for every variable with the prefix."""
    variables = _environment(environ, dotenv_path)
    chosen = prefix.upper().rstrip("_") if prefix else _detect_prefix(variables)
    if chosen is None:
        raise ConfigError(
            "No Fortnox settings in the environment: set TARGET_FORTNOX_CLIENT_ID, "
            "TARGET_FORTNOX_CLIENT_SECRET, ... (or the TAP_FORTNOX_EXPENSES_ ones), pass "
            "--env-prefix, or give --config settings.json."
        )
    head = chosen + "_"
    config: dict[str, Any] = {}
    for name, value in variables.items():
        rest = name[len(head) :] if name.upper().startswith(head) else ""
        # A double underscore is Meltano's extras namespace (e.g. ..._ _SELECT), not a setting.
        if rest and not rest.startswith("_") and value is not None:
            config[rest.lower()] = value
    if not config:
        raise ConfigError(f"No environment variables start with {head}; set {head}CLIENT_ID etc.")
    return config


def _environment(environ: Mapping[str, str] | None, dotenv_path: str | None) -> dict[str, str]:
    if environ is not None:
        return dict(environ)
    path = dotenv_path if dotenv_path is not None else find_dotenv(usecwd=True)
    from_file = {k: v for k, v in dotenv_values(path).items() if v is not None} if path else {}
    return {**from_file, **os.environ}


def _detect_prefix(variables: Mapping[str, str]) -> str | None:
    names = {name.upper() for name in variables}
    for prefix in KNOWN_ENV_PREFIXES:
        if f"{prefix}_CLIENT_ID" in names:
            return prefix
    for prefix in KNOWN_ENV_PREFIXES:
        if any(name.startswith(prefix + "_") for name in names):
            return prefix
    return None


def _file_config(path: Path) -> dict[str, Any]:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"Config file {path} does not exist.") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"Config file {path} is not valid JSON (line {exc.lineno}, column {exc.colno})."
        ) from None
    if not isinstance(document, dict):
        raise ConfigError(f"Config file {path} must hold a JSON object of settings.")
    return document


# -- commands ------------------------------------------------------------------------------------


def _say(text: str = "") -> None:
    # Flushed at once: a wrapper (or a test) reads the consent URL while the command waits.
    print(text, flush=True)


def _fail(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def run_authorize(args: argparse.Namespace, config: Mapping[str, Any]) -> int:
    settings = FortnoxSettings.from_config(config)
    headless = not args.no_browser and not args.paste and not display_available()
    with AuthorizationFlow(settings, port=args.port, service_account=args.service_account) as flow:
        url = flow.start()
        _say("Open this URL in a browser, log in to Fortnox and approve the app:")
        _say(f"  {url}")
        if args.paste or headless:
            if headless:
                _say("(No display here, so no browser: open the URL on any computer.)")
            _say(
                f"After you approve, the browser goes to {flow.redirect_uri}?code=…&state=… "
                "and, on another computer, shows that it cannot connect. Copy that whole address "
                "from its address bar and paste it here, then press Enter (the code is valid for "
                "10 minutes, once):"
            )
            _read_pasted_redirect(flow, sys.stdin)
        elif not args.no_browser and not _open_browser(url):
            _say("(Could not open a browser here: open the URL yourself.)")
        _say(f"Waiting up to {args.timeout:g} s for Fortnox to redirect to {flow.redirect_uri} ...")
        try:
            connection = flow.wait(args.timeout)
        except ConsentTimeout as exc:
            _fail(str(exc))
            return EXIT_TIMEOUT
    for line in connection.lines():
        _say(line)
    return EXIT_OK


def display_available(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a browser could show a page here: always on macOS and Windows; elsewhere (a Linux
    server, an SSH session) only with an X11 or Wayland display."""
    if sys.platform == "darwin" or sys.platform.startswith("win"):
        return True
    env = os.environ if environ is None else environ
    return bool(env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"))


def _read_pasted_redirect(flow: AuthorizationFlow, stream: TextIO) -> None:
    """Read lines from ``stream`` on a daemon thread until one is the redirect address; the
    flow's :meth:`~AuthorizationFlow.wait` takes it (or the loopback callback, whichever first)."""

    def read() -> None:
        try:
            for line in stream:
                if not line.strip():
                    continue
                try:
                    flow.submit_redirect(line)
                except NotARedirect as exc:
                    _fail(str(exc))
                    continue
                return
        except (OSError, ValueError):
            return  # no usable stdin (closed, or captured): the loopback callback still works

    threading.Thread(target=read, name="fortnox-oauth-paste", daemon=True).start()


def _open_browser(url: str) -> bool:
    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


def run_verify(args: argparse.Namespace, config: Mapping[str, Any]) -> int:
    if args.tenant_id:
        config = {**config, "tenant_id": args.tenant_id}
    check = verify_service_account(FortnoxSettings.from_config(config))
    for line in check.lines():
        _say(line)
    return EXIT_OK


def run_status(args: argparse.Namespace, config: Mapping[str, Any]) -> int:
    status = token_status(_status_store(config))
    if args.json:
        _say(json.dumps(status.as_json(), indent=2, ensure_ascii=False))
    else:
        for line in status.lines():
            (_fail if line.startswith("ERROR") else _say)(line)
    if status.level in ("missing", "expired"):
        return EXIT_FAILED
    if status.level == "warning" and args.warn_exit:
        return EXIT_WARNING
    return EXIT_OK


def _status_store(config: Mapping[str, Any]) -> TokenStore:
    """The store ``status`` reads: the PostgreSQL row of ``token_store_url``, else the file.

    Reading needs no secret; the PostgreSQL row is keyed by client id (and tenant), so that
    backend needs ``client_id``.
    """
    url = str(config.get("token_store_url") or "").strip() or None
    client_id = str(config.get("client_id") or "").strip()
    if url and not client_id:
        raise SettingsError(
            "status with token_store_url reads the row of one Fortnox app: set client_id "
            "(e.g. TARGET_FORTNOX_CLIENT_ID) as for the jobs."
        )
    settings = FortnoxSettings(
        client_id=client_id,
        client_secret="",
        token_store_path=Path(
            str(config.get("token_store_path") or DEFAULT_TOKEN_STORE_PATH)
        ).expanduser(),
        token_store_url=url,
        tenant_id=str(config.get("tenant_id") or "").strip() or None,
    )
    return TokenStore(settings)  # the backend follows token_store_url


COMMANDS = {
    "authorize": run_authorize,
    "verify-service-account": run_verify,
    "status": run_status,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The token store logs at INFO on every refresh; the commands print what matters themselves.
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        try:
            config = load_config(args.config, env_prefix=args.env_prefix)
        except ConfigError:
            # status needs only token_store_path, which has a default; the others need secrets.
            if args.command != "status" or args.config:
                raise
            config = {}
        return COMMANDS[args.command](args, config)
    except (ConfigError, SettingsError, OnboardingError) as exc:
        _fail(f"fortnox-auth {args.command}: {exc}")
        return EXIT_FAILED
    except KeyboardInterrupt:
        _fail(f"fortnox-auth {args.command}: interrupted; nothing more was stored.")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
