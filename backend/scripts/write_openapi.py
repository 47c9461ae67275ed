"""Write docs/openapi.json from the app (run after changing the API; a test checks it is current).

uv run python backend/scripts/write_openapi.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from hashed_backend import BackendSettings, create_app

TARGET = Path(__file__).resolve().parents[2] / "docs" / "openapi.json"


def render() -> str:
    """The OpenAPI document as written to docs/openapi.json."""
    app = create_app(BackendSettings(database_url="sqlite:///unused.db"))
    return json.dumps(app.openapi(), indent=2, sort_keys=True) + "\n"


if __name__ == "__main__":
    TARGET.write_text(render())
    sys.stdout.write(f"wrote {TARGET}\n")
