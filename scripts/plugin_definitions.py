"""Write (or check) the Meltano plugin definitions in hub/ from the plugins' `--about` output.

One YAML file per plugin, in the format `meltano add --from-ref <file-or-url> <plugin>` reads (the
format of a Meltano Hub variant): hub/extractors/tap-moment.yml, hub/loaders/target-fortnox.yml, ...
Settings, their kinds, defaults, secrets and the required group come from `--about`; the operator
commands and the packages each plugin installs come from this repository's meltano.yml; the version
from the plugin's pyproject.toml. `pip_url` installs the plugin and the repository's packages it
needs (sync-common, moment-client, fortnox-client) straight from the repository at the release tag.

Re-run after a setting changes: `.venv/bin/python scripts/plugin_definitions.py`.
`--check` exits 1 when a file in hub/ no longer matches (the test suite runs it).
`--repo-url` / `--ref` write definitions for another fork or tag (README "Add to your own Meltano
project").
"""

from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from readme_settings import PLUGINS, ROOT, about

__all__ = ["HUB", "PLUGINS", "REPO_URL", "ROOT", "about", "definition", "path_of", "version"]

HUB = ROOT / "hub"
# The one place the repository's public URL lives; a placeholder until the project is published.
REPO_URL = "https://github.com/<owner>/moment-fortnox"
VARIANT = "moment-fortnox"
PROJECT_ROOT_PREFIX = "${MELTANO_PROJECT_ROOT}/"
# Acronyms written in capitals in setting labels (api_url -> "API URL").
ACRONYMS = {"api": "API", "url": "URL", "smtp": "SMTP", "id": "ID"}


def version(folder: str) -> str:
    data = tomllib.loads((ROOT / folder / "pyproject.toml").read_text(encoding="utf-8"))
    return str(data["project"]["version"])


def repo_plugins() -> dict[str, dict[str, Any]]:
    project = yaml.safe_load((ROOT / "meltano.yml").read_text(encoding="utf-8"))
    plugins = project["plugins"]["extractors"] + project["plugins"]["loaders"]
    return {p["name"]: p for p in plugins}


def pip_url(repo_pip_url: str, repo_url: str, ref: str) -> str:
    """meltano.yml's editable installs (`-e ${MELTANO_PROJECT_ROOT}/pkg[extra]`), from git instead.

    Each requirement names its package (`pkg[extra]@git+URL@REF#subdirectory=pkg`), so pip takes
    the repository's sync-common, moment-client and fortnox-client, never a same-named package of
    an index.
    """
    requirements = []
    for token in repo_pip_url.split():
        if token == "-e":
            continue
        if not token.startswith(PROJECT_ROOT_PREFIX):
            raise ValueError(f"meltano.yml pip_url entry {token!r} is not a package of this repo")
        spec = token.removeprefix(PROJECT_ROOT_PREFIX)
        match = re.fullmatch(r"([A-Za-z0-9_.-]+)(\[[A-Za-z0-9_,.-]+\])?", spec)
        if not match or not (ROOT / match[1] / "pyproject.toml").is_file():
            raise ValueError(f"meltano.yml pip_url entry {token!r} is not a package folder")
        folder, extras = match[1], match[2] or ""
        requirements.append(f"{folder}{extras}@git+{repo_url}@{ref}#subdirectory={folder}")
    return " ".join(requirements)


def label(name: str) -> str:
    words = [ACRONYMS.get(word, word) for word in name.split("_")]
    text = " ".join(words)
    return text[0].upper() + text[1:]


def kind(spec: dict[str, Any]) -> str:
    types = [t for t in spec.get("type", []) if t != "null"]
    if "enum" in spec:
        return "options"
    if types == ["string"] and spec.get("format") in ("date", "date-time"):
        return "date_iso8601"
    if types == ["number"]:
        return "decimal"
    if len(types) == 1 and types[0] in ("string", "integer", "boolean", "array", "object"):
        return str(types[0])
    raise ValueError(f"no Meltano setting kind for JSON schema {spec}")


def setting(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "name": name,
        "kind": kind(spec),
        "label": spec.get("title") or label(name),
        "description": " ".join(str(spec.get("description") or spec.get("title") or "").split()),
    }
    if "enum" in spec:
        out["options"] = [{"label": str(v), "value": v} for v in spec["enum"]]
    if spec.get("secret"):
        out["sensitive"] = True
    if spec.get("default") is not None:
        out["value"] = spec["default"]
    return out


def definition(plugin: str, repo_url: str, ref: str | None) -> dict[str, Any]:
    info = about(plugin)
    repo = repo_plugins()[plugin]
    tag = ref or f"v{version(plugin)}"
    out: dict[str, Any] = {
        "name": plugin,
        "namespace": repo["namespace"],
        "variant": VARIANT,
        "label": plugin,
        "description": info["description"],
        "repo": repo_url,
        "docs": f"{repo_url}/tree/{tag}/{plugin}#readme",
        "pip_url": pip_url(repo["pip_url"], repo_url, tag),
        "executable": repo["executable"],
        "capabilities": info["capabilities"],
    }
    if repo.get("commands"):
        out["commands"] = repo["commands"]
    required = info["settings"].get("required", [])
    if required:
        out["settings_group_validation"] = [required]
    out["settings"] = [setting(n, s) for n, s in info["settings"]["properties"].items()]
    return out


def path_of(plugin: str) -> Path:
    kind_dir = "extractors" if plugin.startswith("tap-") else "loaders"
    return HUB / kind_dir / f"{plugin}.yml"


def render(plugin: str, repo_url: str = REPO_URL, ref: str | None = None) -> str:
    header = (
        f"# {plugin}: Meltano plugin definition, generated by scripts/plugin_definitions.py from\n"
        f"# `{plugin} --about --format=json` and meltano.yml. Do not edit; re-run the script.\n"
        f"# meltano add --from-ref <this file or its raw URL> {plugin}\n"
    )
    body = yaml.safe_dump(
        definition(plugin, repo_url, ref), sort_keys=False, allow_unicode=True, width=100
    )
    return header + str(body)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="exit 1 if hub/ is out of date")
    parser.add_argument("--repo-url", default=REPO_URL, help=f"default {REPO_URL}")
    parser.add_argument("--ref", help="git tag or commit (default v<version of the plugin>)")
    parser.add_argument("--out", type=Path, default=HUB, help="folder to write (default hub/)")
    args = parser.parse_args()
    stale = []
    for plugin in PLUGINS:
        target = args.out / path_of(plugin).relative_to(HUB)
        text = render(plugin, args.repo_url, args.ref)
        if args.check:
            if not target.is_file() or target.read_text(encoding="utf-8") != text:
                stale.append(
                    str(target.relative_to(ROOT) if target.is_relative_to(ROOT) else target)
                )
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    if stale:
        print(f"out of date: {', '.join(stale)}: run scripts/plugin_definitions.py")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
