"""Every setting is documented where operators look: .env.example and the README's table."""

from pathlib import Path

import pytest

from app.settings import Settings

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("field", sorted(Settings.model_fields))
def test_setting_is_documented(field: str) -> None:
    variable = f"COMPAREFACES_{field.upper()}"
    assert variable in (ROOT / ".env.example").read_text(), f"{variable} missing from .env.example"
    readme = (ROOT / "README.md").read_text()
    assert variable in readme or f"`{field.upper()}`" in readme, f"{variable} missing from README.md"
