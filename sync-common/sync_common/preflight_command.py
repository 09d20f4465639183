"""The command line of a pipeline's pre-flight check, one copy for both pipelines.

Owns what ``target-fortnox-preflight`` and ``tap-fortnox-expenses-preflight`` do around their
checks: the arguments (``--config``, ``--moment-config``, ``--json``; the hidden prefixes and
``--preflight``), reading the plugin's settings and Moment's (with a message naming the Moment
variables when there are none), redacting every secret before anything can log it, exit code 2
(``EXIT_UNUSABLE``) with the reason when the settings cannot make clients, and printing the
report. What is checked, and the clients, come from the plugin (``connect``); reading settings
too (``load_config``, i.e. ``fortnox_client.cli.load_config``), so sync-common stays free of both
clients.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from sync_common.preflight import EXIT_UNUSABLE, PreflightReport
from sync_common.redaction import install_secret_redaction

# Every secret either side's settings can hold (the plugin's Fortnox/SMTP ones, Moment's key).
SECRET_KEYS = ("client_secret", "refresh_token", "token_store_url", "smtp_password", "api_key")


class Preflight(Protocol):
    """A pipeline's checks over connected clients (``run`` reads only)."""

    def run(self) -> PreflightReport: ...


class ConfigLoader(Protocol):
    """Reads ``--config`` sources (JSON files, or ``ENV`` for ``<env_prefix>_*`` variables)."""

    def __call__(self, sources: Sequence[str] | None, *, env_prefix: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class PreflightCommand:
    """One pipeline's pre-flight command: its name, its help, and where its settings live."""

    prog: str
    description: str
    # --config help: whose settings, e.g. "target-fortnox settings"
    settings_label: str
    env_prefix: str
    # Moment's settings belong to the other plugin of the pipeline: its variables are read.
    moment_env_prefix: str
    # A command's own arguments (the switch-over's --apply, --start); ``connect`` then also
    # receives the parsed arguments.
    options: Callable[[argparse.ArgumentParser], None] | None = None

    def parser(self) -> argparse.ArgumentParser:
        parser = argparse.ArgumentParser(prog=self.prog, description=self.description)
        parser.add_argument(
            "--config",
            action="append",
            metavar="PATH|ENV",
            help=f"{self.settings_label}: JSON file(s), or ENV for {self.env_prefix}_* "
            "(default ENV)",
        )
        parser.add_argument("--env-prefix", default=self.env_prefix, help=argparse.SUPPRESS)
        parser.add_argument(
            "--moment-config",
            action="append",
            metavar="PATH|ENV",
            help=f"Moment settings (api_url, company_code, api_key): JSON file(s), or ENV for "
            f"{self.moment_env_prefix}_* (default ENV)",
        )
        parser.add_argument(
            "--moment-env-prefix", default=self.moment_env_prefix, help=argparse.SUPPRESS
        )
        parser.add_argument("--json", action="store_true", help="print the report as JSON")
        # singer-sdk style flag, so `args: --config ENV --preflight` also reads naturally.
        parser.add_argument("--preflight", action="store_true", help=argparse.SUPPRESS)
        if self.options is not None:
            self.options(parser)
        return parser

    def main(
        self,
        argv: Sequence[str] | None,
        *,
        load_config: ConfigLoader,
        config_error: type[Exception],
        connect: Callable[..., Preflight],
    ) -> int:
        """Parse ``argv``, read both settings, ``connect(plugin_config, moment_config)`` (plus
        the parsed arguments when the command has ``options``), run.

        ``config_error`` is what ``load_config`` raises when there are no settings; it, and a
        ``ValueError`` from building the clients, end the command with ``EXIT_UNUSABLE``.
        """
        args = self.parser().parse_args(argv)
        try:
            plugin_config = load_config(args.config, env_prefix=args.env_prefix)
            try:
                moment_config = load_config(args.moment_config, env_prefix=args.moment_env_prefix)
            except config_error:
                prefix = args.moment_env_prefix
                raise config_error(
                    f"No Moment settings: set {prefix}_COMPANY_CODE and {prefix}_API_KEY (and "
                    f"{prefix}_API_URL for a non-default API) in the environment or .env, or pass "
                    "--moment-config moment.json."
                ) from None
            install_secret_redaction(
                str(config[key])
                for config in (plugin_config, moment_config)
                for key in SECRET_KEYS
                if config.get(key)
            )
            extra = (args,) if self.options is not None else ()
            preflight = connect(plugin_config, moment_config, *extra)
        except (config_error, ValueError) as exc:
            print(f"{self.prog}: {exc}", file=sys.stderr)
            return EXIT_UNUSABLE
        report = preflight.run()
        print(report.to_json() if args.json else report.render())
        return report.exit_code
