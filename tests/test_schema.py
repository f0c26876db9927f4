"""docs/reference.md is what `harness schema` writes: the reference cannot drift from the code."""

from __future__ import annotations

from pathlib import Path

from harness.cli import main

REPO = Path(__file__).resolve().parent.parent


def test_reference_is_current(capsys):
    code = main(["schema", "--out", str(REPO / "docs" / "reference.md"), "--check"])
    assert code == 0, capsys.readouterr().out + " (run: harness schema --out docs/reference.md)"


def test_every_key_is_documented_and_check_catches_drift(tmp_path, capsys):
    from harness.config.schema import render

    text = render()
    assert "|  |\n" not in text  # every key says what it is
    for key in ("subjects", "choices_fields", "labels_field", "category_field", "repetition_penalty", "samples_per_task",
                "HARNESS_CACHE", "HF_HUB_OFFLINE"):
        assert f"`{key}" in text, key
    stale = tmp_path / "ref.md"
    stale.write_text(text.replace("Seed for", "A seed for"))
    assert main(["schema", "--out", str(stale), "--check"]) == 1
    assert "out of date" in capsys.readouterr().out
