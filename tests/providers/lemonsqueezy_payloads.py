"""The real Lemon Squeezy webhook bodies collected in ``../shared/provider-payloads/lemonsqueezy``.

The folder sits next to the repository; tests that use it skip when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

PAYLOADS = Path(__file__).resolve().parents[2].parent / "shared" / "provider-payloads" / "lemonsqueezy"


def payload_files() -> list[Path]:
    """Every collected body, sorted by name (empty when the folder is absent)."""
    return sorted(PAYLOADS.glob("*.json")) if PAYLOADS.is_dir() else []


def payload_params() -> list[object]:
    """``pytest.mark.parametrize`` values: one per file, or one skipped case without the folder."""
    files = payload_files()
    if not files:
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"{PAYLOADS} is absent"))]
    return [pytest.param(path, id=path.stem) for path in files]


def read_payload(path: Path) -> bytes:
    """A collected body, byte for byte (Lemon Squeezy's ``\\/`` escapes included)."""
    return path.read_bytes()
