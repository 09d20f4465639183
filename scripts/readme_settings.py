"""Write (or check) the settings tables in README.md from each plugin's `--about --format=json`.

The tables sit between `<!-- settings:begin -->` and `<!-- settings:end -->`; `--check` exits 1
when the README no longer matches what the plugins declare (the test suite runs it).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
PLUGINS = ("tap-moment", "target-fortnox", "tap-fortnox-expenses", "target-moment")
BEGIN, END = "<!-- settings:begin -->", "<!-- settings:end -->"
# singer-sdk's own settings (stream maps, flattening, batching...) are documented by the SDK.
SDK_BUILTINS = {
    "stream_maps",
    "stream_map_config",
    "faker_config",
    "flattening_enabled",
    "flattening_max_depth",
    "flattening_max_key_length",
    "flattening_separator",
    "batch_config",
    "add_record_metadata",
    "load_method",
    "batch_size_rows",
    "validate_records",
}


def about(plugin: str) -> dict[str, Any]:
    exe = Path(sys.executable).parent / plugin
    out = subprocess.run([str(exe), "--about", "--format=json"], check=True, capture_output=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def own_settings(plugin: str) -> dict[str, dict[str, Any]]:
    props: dict[str, dict[str, Any]] = about(plugin)["settings"]["properties"]
    return {name: spec for name, spec in props.items() if name not in SDK_BUILTINS}


def table(plugin: str) -> str:
    schema = about(plugin)["settings"]
    required = set(schema.get("required", []))
    rows = [
        f"#### {plugin}",
        "",
        "| setting | env var | required | default | secret | description |",
        "|---|---|---|---|---|---|",
    ]
    env_prefix = plugin.upper().replace("-", "_")
    for name, spec in own_settings(plugin).items():
        default = spec.get("default")
        shown = "" if default is None else f"`{json.dumps(default)}`"
        types = [t for t in spec.get("type", []) if t != "null"] if "type" in spec else []
        kind = "/".join(types)
        description = str(spec.get("description", "")).replace("|", "\\|").replace("\n", " ")
        rows.append(
            f"| `{name}` | `{env_prefix}_{name.upper()}` | {'yes' if name in required else ''} "
            f"| {shown} | {'yes' if spec.get('secret') else ''} | {description} ({kind}) |"
        )
    return "\n".join(rows)


def generated() -> str:
    return "\n\n".join(table(plugin) for plugin in PLUGINS)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if README.md is out of date")
    args = parser.parse_args()
    text = README.read_text(encoding="utf-8")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{BEGIN}\n{generated()}\n{END}{tail}"
    if args.check:
        if new != text:
            print("README.md settings tables are out of date: run scripts/readme_settings.py")
            return 1
        return 0
    README.write_text(new, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
