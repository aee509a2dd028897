#!/usr/bin/env python
"""Write ``.env.example`` and ``docs/configuration.md`` from ``app/settings.py`` (names, defaults,
descriptions, allowed values, and the section comments between its fields).

    python scripts/gen_settings_docs.py          # rewrite both (make docs)
    python scripts/gen_settings_docs.py --check  # exit 1 if either differs from what Settings says

``tests/test_settings_docs.py`` fails when they drift: after adding or changing a setting, run this.
"""

from __future__ import annotations

import argparse
import inspect
import re
import sys
import textwrap
from enum import Enum
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

from pydantic import SecretStr
from pydantic.fields import FieldInfo

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from app.settings import Settings  # noqa: E402

ENV_EXAMPLE = ROOT / ".env.example"
CONFIGURATION_DOC = ROOT / "docs" / "configuration.md"
PREFIX = str(Settings.model_config.get("env_prefix", ""))
FIRST_SECTION = "Server"
GENERATED = "Generated from app/settings.py by scripts/gen_settings_docs.py (make docs): edit the settings, not here."

_SECTION = re.compile(r"^    # (?P<title>[^:(]+?)\s*(?:\(.*\))?$")
_FIELD = re.compile(r"^    (?P<name>[a-z_][a-z0-9_]*)\s*:")


def sections() -> list[tuple[str, list[str]]]:
    """(section title, field names) in the order of the class: a ``    # Title`` comment line between
    fields starts a section (a parenthesis after the title is left out)."""
    grouped: list[tuple[str, list[str]]] = [(FIRST_SECTION, [])]
    for line in inspect.getsource(Settings).splitlines():
        section, field = _SECTION.match(line), _FIELD.match(line)
        if section:
            grouped.append((section["title"], []))
        elif field and field["name"] in Settings.model_fields:
            grouped[-1][1].append(field["name"])
    placed = {name for _, names in grouped for name in names}
    missing = [name for name in Settings.model_fields if name not in placed]
    if missing:
        grouped.append(("Other", missing))
    return [(title, names) for title, names in grouped if names]


def env_value(value: Any) -> str:
    """A default as the environment variable would spell it (empty: unset)."""
    if value is None:
        return ""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, Path):
        home = str(Path.home())
        text = str(value)
        return "~" + text[len(home) :] if text == home or text.startswith(home + "/") else text
    return str(value)


def allowed_values(field: FieldInfo) -> list[str]:
    if get_origin(field.annotation) is Literal:
        return [env_value(value) for value in get_args(field.annotation)]
    return []


def description(name: str, field: FieldInfo) -> str:
    text = (field.description or "").strip()
    if not text:
        raise SystemExit(f"Settings.{name} has no description: give it Field(..., description=...)")
    return text


def render_env_example() -> str:
    lines = [
        "# comparefaces settings, read from the environment (COMPAREFACES_<NAME>); docs/configuration.md has",
        "# the same as a table. Every variable is optional and shown commented out with its default: copy",
        "# this file to .env (docker compose reads it) and uncomment what you change. An empty value counts",
        "# as unset.",
        f"# {GENERATED}",
    ]
    for title, names in sections():
        lines += ["", f"# ---- {title}"]
        for name in names:
            field = Settings.model_fields[name]
            text = description(name, field)
            values = allowed_values(field)
            if values:
                text += f" (one of: {' | '.join(values)})"
            lines += textwrap.wrap(text, width=100, initial_indent="# ", subsequent_indent="# ")
            lines.append(f"# {PREFIX}{name.upper()}={env_value(field.default)}")
    return "\n".join(lines) + "\n"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_configuration_doc() -> str:
    lines = [
        "# Configuration",
        "",
        f"<!-- {GENERATED} -->",
        "",
        f"Every setting is an environment variable with the prefix `{PREFIX}`, read once at start into one",
        "typed settings object (`app/settings.py`) that is passed down; an empty value counts as unset (its",
        "default applies). A variable with the prefix that names no setting is reported at start.",
        "[`.env.example`](../.env.example) lists every variable with its default.",
    ]
    for title, names in sections():
        lines += ["", f"## {title}", "", "| variable | default | meaning |", "|---|---|---|"]
        for name in names:
            field = Settings.model_fields[name]
            default = env_value(field.default)
            text = description(name, field)
            values = allowed_values(field)
            if values:
                text += ". One of: " + ", ".join(f"`{value}`" for value in values)
            shown = f"`{_cell(default)}`" if default else "empty"
            lines.append(f"| `{PREFIX}{name.upper()}` | {shown} | {_cell(text)} |")
    return "\n".join(lines) + "\n"


def outputs() -> dict[Path, str]:
    return {ENV_EXAMPLE: render_env_example(), CONFIGURATION_DOC: render_configuration_doc()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is out of date")
    args = parser.parse_args(argv)
    stale = [path for path, text in outputs().items() if not path.is_file() or path.read_text() != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(ROOT)} is out of date: run python scripts/gen_settings_docs.py", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs().items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    print("wrote", ", ".join(str(path.relative_to(ROOT)) for path in outputs()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
