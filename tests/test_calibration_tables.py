"""The measured tables in docs/models-and-calibration.md are generated from the shipped calibration
files (``make docs``), never typed by hand, and must not drift from them."""

from scripts.gen_calibration_tables import DOC, rendered


def test_docs_tables_match_the_shipped_calibrations() -> None:
    text = DOC.read_text()
    assert rendered(text) == text, "docs/models-and-calibration.md tables are out of date: run make docs"
