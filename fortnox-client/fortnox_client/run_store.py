"""Where a Fortnox plugin's run store is: beside its token store, unless set otherwise.

The run store (``sync_common.run_store``) holds what a plugin must remember between runs (dead
letters, target-fortnox's fingerprint ledger, the memory of e-mailed failures); it is kept where
the tokens are, which every Fortnox deployment already keeps safe: the folder ``run-store/`` next
to ``token_store_path``, or, with ``token_store_url``, the table ``<token table>_run_store`` of the
same database and tenant. ``run_store_url`` / ``run_store_path`` override it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

from sync_common.postgres import parse_url
from sync_common.run_store import RunStoreSettings

from fortnox_client.settings import DEFAULT_TOKEN_STORE_PATH
from fortnox_client.token_store_postgres import DEFAULT_TABLE as TOKEN_TABLE

RUN_STORE_DIRNAME: Final = "run-store"


def run_store_settings(config: Mapping[str, Any]) -> RunStoreSettings:
    """The run store beside the Fortnox token store, unless run_store_url/path say otherwise.

    That is the folder ``run-store/`` next to ``token_store_path``, or, with
    ``token_store_url``, the table ``<token table>_run_store`` of the same database and tenant.
    """
    token_url = str(config.get("token_store_url") or "").strip() or None
    token_path = Path(
        str(config.get("token_store_path") or "").strip() or DEFAULT_TOKEN_STORE_PATH
    ).expanduser()
    token_table = None
    if token_url:
        token_table = parse_url(token_url, setting="token_store_url", default_table=TOKEN_TABLE)[1]
    return RunStoreSettings.from_config(
        config,
        default_path=token_path.parent / RUN_STORE_DIRNAME,
        inherited_url=token_url,
        inherited_setting="token_store_url",
        inherited_table=f"{token_table}_run_store" if token_table else None,
        tenant=str(config.get("tenant_id") or "").strip() or None,
        extra="fortnox-client[postgres]",
    )


def run_store_setting_overrides(holds: str) -> dict[str, dict[str, Any]]:
    """The Fortnox plugins' wording of ``run_store_path`` and ``run_store_url``.

    For ``sync_common.plugin_config_schema(overrides=...)``: both say where the run store is by
    default (:func:`run_store_settings`); ``holds`` is the plugin's own part, what its store
    keeps.
    """
    return {
        "run_store_path": {
            "description": f"Folder of the run store: {holds} (default: {RUN_STORE_DIRNAME}/ "
            "beside token_store_path)"
        },
        "run_store_url": {
            "description": "PostgreSQL URL of the run store (default: token_store_url, table "
            "<token table>_run_store); wins over run_store_path"
        },
    }
