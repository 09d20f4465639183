"""Write (or check) every copy of the plugins' settings from each plugin's `--about --format=json`.

One source, the settings each plugin declares (its `config_jsonschema`), written to:

- the settings tables of README.md (one per plugin) and of each plugin's own README, between
  `<!-- generated:settings -->` and `<!-- /generated:settings -->`;
- the `settings:` and `settings_group_validation:` blocks of each plugin in meltano.yml (name,
  kind, label, description, default value, options, `sensitive`); nothing else of meltano.yml is
  touched, so its comments, commands, environments, jobs and schedules stay as they are written;
- the plugin definitions in hub/ (scripts/plugin_definitions.py knows their format).

Re-run after a setting changes: `.venv/bin/python scripts/plugin_settings.py`. `--check` writes
nothing and exits 1 naming the files that are out of date (tests/test_plugin_settings.py runs it).
"""

from __future__ import annotations

import argparse
import functools
import json
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
MELTANO_YML = ROOT / "meltano.yml"
# The plugins of this repository; each one's folder holds its README.
PLUGINS = ("tap-moment", "target-fortnox", "tap-fortnox-expenses", "target-moment")
BEGIN, END = "<!-- generated:settings -->", "<!-- /generated:settings -->"
# singer-sdk's own settings (stream maps, flattening, batching...) are documented by the SDK: the
# README tables leave them out.
SDK_BUILTINS = frozenset(
    {
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
)
# The SDK settings meltano.yml declares as well, so `meltano config` and the environment set them.
MELTANO_SDK_SETTINGS = ("stream_maps", "stream_map_config")
# Acronyms written in capitals in setting labels (api_url -> "API URL").
ACRONYMS = {"api": "API", "url": "URL", "smtp": "SMTP", "id": "ID"}


@functools.cache
def about(plugin: str) -> dict[str, Any]:
    """The plugin's `--about --format=json`, run from this virtualenv (once per process)."""
    exe = Path(sys.executable).parent / plugin
    out = subprocess.run([str(exe), "--about", "--format=json"], check=True, capture_output=True)
    return json.loads(out.stdout)  # type: ignore[no-any-return]


def own_settings(plugin: str) -> dict[str, dict[str, Any]]:
    """The plugin's own settings (name -> JSON schema), in its order, without the SDK's."""
    props: dict[str, dict[str, Any]] = about(plugin)["settings"]["properties"]
    return {name: spec for name, spec in props.items() if name not in SDK_BUILTINS}


def kind(spec: dict[str, Any]) -> str:
    """The Meltano setting kind of a setting's JSON schema.

    A date (`format: date`) is `date_iso8601`, which Meltano also fills from a relative value
    ("6 months ago"); a date-time is a `string`. An `enum` is `options`. A JSON `number` is an
    `integer`, not Meltano's `decimal`: Meltano 4.4 turns a `decimal` read from the environment or
    .env into a Python Decimal that it then cannot write into the plugin's config ("Object of type
    Decimal is not JSON serializable"), so `TAP_MOMENT_TIMEOUT=30` would stop every run; with
    `integer`, whole numbers come from the environment and any number from meltano.yml
    (tests/test_plugin_settings.py runs Meltano to show it).
    """
    types = [t for t in spec.get("type", []) if t != "null"]
    if "enum" in spec:
        return "options"
    if types == ["string"] and spec.get("format") == "date":
        return "date_iso8601"
    if types == ["number"]:
        return "integer"
    if len(types) == 1 and types[0] in ("string", "integer", "boolean", "array", "object"):
        return str(types[0])
    raise ValueError(f"no Meltano setting kind for JSON schema {spec}")


def label(name: str, spec: dict[str, Any]) -> str:
    """The setting's `title`, else its name in words (`api_url` -> "API URL")."""
    if spec.get("title"):
        return str(spec["title"])
    text = " ".join(ACRONYMS.get(word, word) for word in name.split("_"))
    return text[0].upper() + text[1:]


def description(spec: dict[str, Any]) -> str:
    """The setting's description (else its title) on one line."""
    return " ".join(str(spec.get("description") or spec.get("title") or "").split())


def setting(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    """One setting in Meltano's plugin definition syntax (meltano.yml and hub/)."""
    out: dict[str, Any] = {
        "name": name,
        "kind": kind(spec),
        "label": label(name, spec),
        "description": description(spec),
    }
    if "enum" in spec:
        out["options"] = [{"label": str(v), "value": v} for v in spec["enum"]]
    if spec.get("secret"):
        out["sensitive"] = True
    if spec.get("default") is not None:
        out["value"] = spec["default"]
    return out


def meltano_settings(plugin: str) -> list[dict[str, Any]]:
    """The settings meltano.yml declares for the plugin: its own, then stream maps."""
    props = about(plugin)["settings"]["properties"]
    names = [*own_settings(plugin), *(n for n in MELTANO_SDK_SETTINGS if n in props)]
    return [setting(name, props[name]) for name in names]


def json_type(spec: dict[str, Any]) -> str:
    """The setting's JSON schema type(s) other than null, e.g. ``number``."""
    return "/".join(t for t in spec.get("type", []) if t != "null")


def settings_table(plugin: str) -> str:
    """The Markdown table of the plugin's own settings (env var, required, default, secret)."""
    schema = about(plugin)["settings"]
    required = set(schema.get("required", []))
    rows = [
        "| setting | env var | required | default | secret | description |",
        "|---|---|---|---|---|---|",
    ]
    env_prefix = plugin.upper().replace("-", "_")
    for name, spec in own_settings(plugin).items():
        default = spec.get("default")
        shown = "" if default is None else f"`{json.dumps(default)}`"
        text = description(spec).replace("|", "\\|")
        rows.append(
            f"| `{name}` | `{env_prefix}_{name.upper()}` | {'yes' if name in required else ''} "
            f"| {shown} | {'yes' if spec.get('secret') else ''} | {text} ({json_type(spec)}) |"
        )
    return "\n".join(rows)


def replace_section(text: str, body: str, where: str) -> str:
    """``text`` with the part between the settings markers replaced by ``body``."""
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise ValueError(f"{where}: needs exactly one {BEGIN} ... {END} section")
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{body}\n{END}{tail}"


def root_readme(text: str) -> str:
    """README.md with one settings table per plugin."""
    body = "\n\n".join(f"#### {plugin}\n\n{settings_table(plugin)}" for plugin in PLUGINS)
    return replace_section(text, body, "README.md")


def indent_of(line: str) -> int:
    """The number of leading spaces of ``line``."""
    return len(line) - len(line.lstrip(" "))


def block_end(lines: list[str], start: int, key_indent: int) -> int:
    """The index after the value of the mapping key at ``lines[start]`` (trailing blanks excluded).

    The value is every following line indented deeper than the key, or a block sequence at the
    key's own indent (``settings:`` followed by ``- name: ...`` in the same column).
    """
    end = start + 1
    last = start + 1
    while end < len(lines):
        line = lines[end]
        if line.strip():
            indent = indent_of(line)
            if indent < key_indent or (indent == key_indent and not line.lstrip().startswith("- ")):
                break
            last = end + 1
        end += 1
    return last


def plugin_span(lines: list[str], plugin: str) -> tuple[int, int, int]:
    """(first line, end, key indent) of the plugin's entry in meltano.yml's `plugins:`."""
    pattern = re.compile(rf"^( *)- name: {re.escape(plugin)}\s*$")
    starts = [i for i, line in enumerate(lines) if pattern.match(line)]
    plugins_at = next(i for i, line in enumerate(lines) if line.rstrip() == "plugins:")
    plugins_end = next(
        (i for i in range(plugins_at + 1, len(lines)) if re.match(r"^\S", lines[i])), len(lines)
    )
    starts = [i for i in starts if plugins_at < i < plugins_end]
    if len(starts) != 1:
        raise ValueError(f"meltano.yml: expected one plugin entry `- name: {plugin}`")
    start = starts[0]
    dash = indent_of(lines[start])
    end = start + 1
    while end < plugins_end and (not lines[end].strip() or indent_of(lines[end]) > dash):
        end += 1
    return start, end, dash + 2


def set_key(lines: list[str], plugin: str, key: str, value: list[str]) -> list[str]:
    """``lines`` with the plugin's ``key:`` block replaced by ``value`` (lines under the key).

    A key the plugin does not have yet is added at the end of its entry; an empty ``value``
    removes the key.
    """
    start, end, key_indent = plugin_span(lines, plugin)
    prefix = " " * key_indent
    block = [f"{prefix}{key}:", *value] if value else []
    at = next((i for i in range(start, end) if lines[i] == f"{prefix}{key}:"), None)
    if at is None:
        while end > start and not lines[end - 1].strip():
            end -= 1
        return lines[:end] + block + lines[end:]
    return lines[:at] + block + lines[block_end(lines, at, key_indent) :]


class Quoted(str):
    """A string meltano.yml shows in double quotes, as its hand-written settings were."""


class SettingsDumper(yaml.SafeDumper):  # type: ignore[misc]
    """PyYAML's safe dumper, writing `Quoted` strings in double quotes."""


SettingsDumper.add_representer(
    Quoted, lambda dumper, data: dumper.represent_scalar("tag:yaml.org,2002:str", data, style='"')
)


def settings_yaml(settings: list[dict[str, Any]]) -> list[str]:
    """The settings as YAML lines, descriptions and string values double-quoted."""
    quoted = [
        {
            k: Quoted(v) if k in ("description", "value") and isinstance(v, str) else v
            for k, v in s.items()
        }
        for s in settings
    ]
    text: str = yaml.dump(
        quoted, Dumper=SettingsDumper, sort_keys=False, allow_unicode=True, width=1_000_000
    )
    return text.splitlines()


def meltano_yml(text: str) -> str:
    """meltano.yml with each plugin's settings and required group as the plugin declares them."""
    lines = text.split("\n")
    for plugin in PLUGINS:
        _, _, key_indent = plugin_span(lines, plugin)
        prefix = " " * key_indent
        required = about(plugin)["settings"].get("required", [])
        group = [f"{prefix}  - [{', '.join(required)}]"] if required else []
        lines = set_key(lines, plugin, "settings_group_validation", group)
        dumped = settings_yaml(meltano_settings(plugin))
        lines = set_key(lines, plugin, "settings", [prefix + line for line in dumped])
    return "\n".join(lines)


def targets() -> dict[Path, Callable[[str], str]]:
    """Every generated file and the function that turns its current text into the wanted one."""
    import plugin_definitions

    out: dict[Path, Callable[[str], str]] = {README: root_readme, MELTANO_YML: meltano_yml}
    for plugin in PLUGINS:
        out[ROOT / plugin / "README.md"] = functools.partial(
            lambda p, text: replace_section(text, settings_table(p), f"{p}/README.md"), plugin
        )
        out[plugin_definitions.path_of(plugin)] = functools.partial(
            lambda p, _old: plugin_definitions.render(p), plugin
        )
    return out


def main(argv: list[str] | None = None) -> int:
    """Write the generated files, or with ``--check`` name the stale ones and return 1."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    stale = []
    for path, rewrite in targets().items():
        old = path.read_text(encoding="utf-8") if path.is_file() else ""
        new = rewrite(old)
        if new == old:
            continue
        if args.check:
            stale.append(str(path.relative_to(ROOT)))
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(new, encoding="utf-8")
    if stale:
        print(f"out of date: {', '.join(stale)}: run scripts/plugin_settings.py")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
