"""Settings are documented in one place, ``app/settings.py``; ``.env.example`` and
``docs/configuration.md`` are generated from it (``make docs``) and must not drift."""

from pathlib import Path

import pytest

from app.settings import Settings
from scripts.gen_settings_docs import CONFIGURATION_DOC, ENV_EXAMPLE, outputs, sections

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_every_setting_has_a_description(field: str) -> None:
    description = Settings.model_fields[field].description
    assert description and description.strip(), f"Settings.{field} needs Field(..., description=...)"


@pytest.mark.parametrize("path", [ENV_EXAMPLE, CONFIGURATION_DOC], ids=lambda path: path.name)
def test_generated_file_matches_settings(path: Path) -> None:
    assert path.is_file(), f"{path.relative_to(ROOT)} is missing: run make docs"
    assert path.read_text() == outputs()[path], f"{path.relative_to(ROOT)} is out of date: run make docs"


def test_every_setting_is_in_both_files_once() -> None:
    assert sorted(name for _, names in sections() for name in names) == sorted(Settings.model_fields)
    for path, text in outputs().items():
        for field in Settings.model_fields:
            assert text.count(f"COMPAREFACES_{field.upper()}=") + text.count(f"`COMPAREFACES_{field.upper()}`") == 1, (
                path.name,
                field,
            )


def test_no_machine_specific_default_is_written() -> None:
    home = str(Path.home())
    for text in outputs().values():
        assert len(home) <= 1 or home + "/" not in text  # the cache folder's default is written as ~/...


def test_readme_links_the_configuration_reference() -> None:
    assert "docs/configuration.md" in (ROOT / "README.md").read_text()
