"""Record the core client's HTTP cassettes against a real backend on loopback.

    uv run python scripts/record_cassettes.py

Starts `python -m hashed_backend serve` on a free port with a throw-away SQLite database (15 requests/s
per key, a burst of 60, so the rate-limit test can record a 429), signs up an organisation, and runs
hashed-core/tests/shipping with HASHED_RECORD_CASSETTES pointing at it. Commit the changed cassettes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from hashed_backend.testing import LocalBackend

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    """Record every cassette; returns pytest's exit code."""
    with tempfile.TemporaryDirectory() as tmp:
        env = {"HASHED_BACKEND_RATE_PER_KEY": "15"}  # a burst of 60 per key (4 s of rate)
        with LocalBackend(Path(tmp), env=env) as backend:
            org = backend.bootstrap()
            live = json.dumps({"url": backend.url, "admin_key": org.admin_key})
            return subprocess.call(  # noqa: S603 - our own test suite
                [
                    sys.executable,
                    "-m",
                    "pytest",
                    str(ROOT / "hashed-core/tests/shipping"),
                    "-q",
                    "-p",
                    "no:cacheprovider",
                ],
                env={**os.environ, "HASHED_RECORD_CASSETTES": live},
            )


if __name__ == "__main__":
    raise SystemExit(main())
