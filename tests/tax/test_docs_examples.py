"""Every Python block of docs/tax.rst runs as written."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "tax.rst"
BLOCK = re.compile(r"^\.\. code-block:: python\n\n((?:   .*\n|\n)+)", re.MULTILINE)


def blocks() -> list[str]:
    return [re.sub(r"^   ", "", block, flags=re.MULTILINE) for block in BLOCK.findall(DOC.read_text("utf-8"))]


def test_the_page_has_python_blocks() -> None:
    assert len(blocks()) >= 2


@pytest.mark.parametrize("index", range(2))
def test_each_block_runs(index: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in list(os.environ):
        if name.upper().startswith("PAYMENTS_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    exec(compile(blocks()[index], f"{DOC.name}[{index}]", "exec"), {})  # noqa: S102
