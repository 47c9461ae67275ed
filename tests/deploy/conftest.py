"""Deployment and operations tests: real agents, real backend processes, real PostgreSQL, real nginx.

PostgreSQL tests read HASHED_TEST_DATABASE_URL and make throw-away databases (and, for the deployed layout, a
throw-away role); each is dropped afterwards. Helpers are in `_support.py`, which the tests import.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for `_support`
