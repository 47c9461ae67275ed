"""The install and build commands of every doc (READMEs, CONTRIBUTING.md, docs/, adapters' usage docstrings).

`python scripts/doc_commands.py` lists them; tests/install runs each one as written.

Example:
    >>> DocCommand("pip install ./hashed-core ./backend", "docs/install.md").kind
    'local'
    >>> DocCommand("pip install hashed-langchain", "README.md").kind
    'index'
"""

from __future__ import annotations

import dataclasses
import re
import shlex
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workspace import ROOT, Package, packages

__all__ = ["OURS", "PACKAGES", "DocCommand", "doc_commands", "install_targets", "poison_version"]

PACKAGES = packages()
OURS = {p.dist for p in PACKAGES}
_SHELL_BLOCK = re.compile(r"^([ \t]*)```(?:bash|sh|shell|console)[ \t]*\n(.*?)^\1```", re.M | re.S)
_DOCSTRING_LINE = re.compile(r"^\s+((?:python3? -m )?pip install .*)$", re.M)


@dataclasses.dataclass(frozen=True)
class DocCommand:
    """One command of a doc, and where it was read."""

    text: str
    source: str

    @property
    def kind(self) -> str:
        """`build` (uv build), `local` (our packages by path), `index` (our packages by name), `other`."""
        words = shlex.split(self.text, comments=True)
        if words[:2] == ["uv", "build"]:
            return "build"
        targets = install_targets(words)
        if any(t.startswith(("./", "dist/", "/")) for t in targets):
            return "local"
        if any(re.split(r"[<>=!~\[ ]", t)[0] in OURS for t in targets):
            return "index"
        return "other"


def install_targets(words: list[str]) -> list[str]:
    """The requirements of a `pip install` command line (options dropped)."""
    if "install" not in words:
        return []
    return [w for w in words[words.index("install") + 1 :] if not w.startswith("-")]


def _doc_files() -> list[Path]:
    files = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", ROOT / "SECURITY.md"]
    files += sorted((ROOT / "docs").rglob("*.md"))
    files += [p.folder / "README.md" for p in PACKAGES]
    files += [p.folder / "src" / p.module / "__init__.py" for p in PACKAGES]
    return [f for f in files if f.exists()]


def doc_commands() -> list[DocCommand]:
    """Every install or build command of every doc, in reading order, once each."""
    seen: dict[str, DocCommand] = {}
    for path in _doc_files():
        text = path.read_text()
        blocks = [m.group(2) for m in _SHELL_BLOCK.finditer(text)]
        if path.suffix == ".py":
            blocks = ["\n".join(_DOCSTRING_LINE.findall(text))]
        for block in blocks:
            for raw in block.replace("\\\n", " ").splitlines():
                line = raw.strip().removeprefix("$ ")
                if re.match(r"(python3? -m )?pip install |uv build", line):
                    command = " ".join(shlex.split(line, comments=True))
                    seen.setdefault(command, DocCommand(command, str(path.relative_to(ROOT))))
    return list(seen.values())


def poison_version(package: Package) -> str:
    """A version inside our own ranges, newer than ours: an index offering it must not be asked."""
    major, minor = package.version.split(".")[:2]
    return f"{major}.{minor}.999"


if __name__ == "__main__":
    for found in doc_commands():
        print(f"{found.kind:6} {found.source}: {found.text}")
