"""Assembling a plugin's ``config_jsonschema`` from shared settings fragments.

Owns how the settings several plugins share (the Fortnox connection from ``fortnox-client``, the
Moment connection from ``moment-client``, the failure e-mail from :mod:`sync_common.mailer`) and a
plugin's own settings become one JSON schema: in the order given (the order ``--about``, the
READMEs and ``meltano.yml`` list them), with a plugin's own wording of a shared setting where it
has one; and which setting values are secrets (``secret_setting_values``). A fragment is a plain
JSON-schema object (``{"properties": ..., "required": ...}``), so
the clients need no singer-sdk; a singer-sdk ``PropertiesList.to_dict()`` is one too.
"""

from __future__ import annotations

from collections.abc import Mapping
from copy import deepcopy
from typing import Any

# singer-sdk writes a property's keys in this order; an override keeps it, so --about is stable.
_PROPERTY_KEY_ORDER = ("type", "default", "description", "secret", "writeOnly")


def plugin_config_schema(
    *fragments: Mapping[str, Any],
    overrides: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """One config JSON schema from ``fragments``, their settings in the order given.

    ``overrides`` maps a setting name to keys that replace or add to its declaration (a
    plugin's own ``description``, or a ``default``). A setting declared twice, or an override of
    a setting no fragment declares, is a programming error and raises ``ValueError``.
    """
    properties: dict[str, Any] = {}
    required: list[str] = []
    dialect: dict[str, Any] = {}
    for fragment in fragments:
        # singer-sdk's PropertiesList names its JSON-schema dialect; keep it as --about shows it.
        if "$schema" in fragment:
            dialect.setdefault("$schema", fragment["$schema"])
        for name, spec in fragment.get("properties", {}).items():
            if name in properties:
                raise ValueError(f"setting {name!r} is declared by two settings fragments")
            properties[name] = deepcopy(spec)
        required += [name for name in fragment.get("required", []) if name not in required]
    for name, changes in (overrides or {}).items():
        if name not in properties:
            raise ValueError(f"override of setting {name!r}, which no settings fragment declares")
        properties[name] = _in_key_order({**properties[name], **changes})
    return {"type": "object", "properties": properties, "required": required, **dialect}


def _in_key_order(spec: Mapping[str, Any]) -> dict[str, Any]:
    ordered = {key: spec[key] for key in _PROPERTY_KEY_ORDER if key in spec}
    return {**ordered, **{key: value for key, value in spec.items() if key not in ordered}}


def secret_setting_values(schema: Mapping[str, Any], config: Mapping[str, Any]) -> list[str]:
    """The values in ``config`` of every setting ``schema`` marks ``secret``, for redaction.

    Read from the schema rather than listed by hand, so a new secret setting (such as
    ``token_store_url``, a database URL with its password) is masked from its first run.
    """
    secret = [name for name, spec in schema.get("properties", {}).items() if spec.get("secret")]
    return [str(config[name]) for name in secret if config.get(name)]
