"""docs/openapi.json is what the app serves (regenerate: uv run python backend/scripts/write_openapi.py)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "write_openapi.py"


def test_docs_openapi_json_is_current():
    spec = importlib.util.spec_from_file_location("write_openapi", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert module.TARGET.read_text() == module.render(), "run: uv run python backend/scripts/write_openapi.py"
