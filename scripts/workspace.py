"""The packages of this repository, read from the root pyproject's workspace members (one place for that list).

The release script, the install and deployment tests and the docs site's navigation all call `packages()`, so an
adapter added to `[tool.uv.workspace] members` is released, install-tested and documented without another edit.

Example:
    >>> [p.dist for p in packages()][:1]
    ['hashed-core']
"""

from __future__ import annotations

import dataclasses
import re
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - the oldest supported Python
    import tomli as tomllib

__all__ = ["ROOT", "Package", "packages", "read_version"]

ROOT = Path(__file__).resolve().parent.parent
_VERSION = re.compile(r'^__version__ = "([^"]+)"$', re.M)


@dataclasses.dataclass(frozen=True)
class Package:
    """One distribution of the workspace."""

    dist: str  # hashed-core
    folder: Path  # <root>/hashed-core
    module: str  # hashed
    version_file: Path  # <root>/hashed-core/src/hashed/_version.py

    @property
    def framework(self) -> str | None:
        """`langchain` for `hashed-langchain`; None for the core and the backend."""
        name = self.dist.removeprefix("hashed-")
        return None if name in ("core", "backend") else name

    @property
    def wheel_prefix(self) -> str:
        """How the built files' names start (`hashed_core-`)."""
        return self.dist.replace("-", "_") + "-"

    @property
    def version(self) -> str:
        """The version in `_version.py`, the package's only version source."""
        return read_version(self.version_file)


def read_version(path: Path) -> str:
    """The `__version__ = "…"` of a `_version.py`."""
    match = _VERSION.search(path.read_text())
    if match is None:
        raise ValueError(f'{path}: no line `__version__ = "X.Y.Z"`')
    return match.group(1)


def packages(root: Path = ROOT) -> list[Package]:
    """Every workspace member, in the order the root pyproject lists them."""
    workspace = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["uv"]["workspace"]
    found = []
    for member in workspace["members"]:
        folder = root / member
        project = tomllib.loads((folder / "pyproject.toml").read_text())
        version_path = project["tool"]["hatch"]["version"]["path"]  # src/<module>/_version.py
        found.append(
            Package(
                dist=project["project"]["name"],
                folder=folder,
                module=Path(version_path).parent.name,
                version_file=folder / version_path,
            )
        )
    return found
