"""Where the recorded API responses live: $CIVICFLOW_SHARED_DIR, else the `shared` folder beside the repo."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED = Path(os.environ.get("CIVICFLOW_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")


def shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data not found: {path}")
    return path
