"""`python -m hashed_backend [serve|migrate]`: with no command, serve."""

from __future__ import annotations

import sys

from hashed_backend.cli import main

main(sys.argv[1:] or ["serve"])
