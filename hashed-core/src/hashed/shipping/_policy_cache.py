"""The last good policy the backend served, kept on disk so an agent restarts into it when the backend is down."""

from __future__ import annotations

import json
import os
from pathlib import Path

from hashed.shipping._client import PolicyAnswer

__all__ = ["PolicyCache"]


class PolicyCache:
    """`<home>/policy.remote.yaml` plus `<home>/policy.remote.json` (its ETag, version and source)."""

    def __init__(self, home: Path) -> None:
        self.text_path = home / "policy.remote.yaml"
        self.meta_path = home / "policy.remote.json"

    def load(self) -> PolicyAnswer | None:
        """The cached policy, or None when there is none (or it is unreadable)."""
        try:
            meta = json.loads(self.meta_path.read_text())
            return PolicyAnswer(
                self.text_path.read_text(encoding="utf-8"), str(meta["etag"]), int(meta["version"]), str(meta["source"])
            )
        except (OSError, ValueError, KeyError):
            return None

    def etag(self) -> str | None:
        """The cached policy's ETag (for If-None-Match)."""
        cached = self.load()
        return None if cached is None else cached.etag

    def store(self, answer: PolicyAnswer) -> None:
        """Write atomically: text first, then the metadata that points at it."""
        for path, content in (
            (self.text_path, answer.yaml),
            (self.meta_path, json.dumps({"etag": answer.etag, "version": answer.version, "source": answer.source})),
        ):
            tmp = path.with_name(path.name + ".tmp")
            tmp.write_text(content, encoding="utf-8")
            os.replace(tmp, path)
