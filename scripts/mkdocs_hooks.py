"""mkdocs hooks: the site's Frameworks and API reference sections come from the workspace members.

An adapter added to the root pyproject's `[tool.uv.workspace] members` gets its guide (`docs/frameworks/<fw>.md`,
required: the build fails without it) and its API reference page, generated from its docstrings by mkdocstrings,
with no edit to mkdocs.yml.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from mkdocs.exceptions import PluginError
from mkdocs.plugins import event_priority
from mkdocs.structure.files import File, Files

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workspace import Package, packages

# What each package's reference page documents: the public modules (implementation modules are private).
_REFERENCE = {
    "hashed-core": ["hashed", "hashed.errors", "hashed.types", "hashed.adapters", "hashed.testing"],
    "hashed-backend": ["hashed_backend.settings", "hashed_backend.testing"],
}


def _title(guide: Path) -> str:
    first = guide.read_text().lstrip().splitlines()[0]
    return first.lstrip("# ").strip() if first.startswith("#") else guide.stem


# `Hashed` is one class written as mixins (hashed/_core/, #17): its reference lists the methods it inherits.
_OPTIONS = {"hashed": "\n    options:\n      inherited_members: true"}


def _page(package: Package) -> str:
    modules = _REFERENCE.get(package.dist, [package.module])
    blocks = "\n\n".join(f"::: {module}{_OPTIONS.get(module, '')}" for module in modules)
    return f"# {package.dist}\n\nGenerated from the docstrings of `{package.module}` {package.version}.\n\n{blocks}\n"


@event_priority(100)  # before mkdocstrings reads its handler options
def on_config(config: Any) -> Any:
    """Point mkdocstrings at every member's src/ and fill the two generated sections of the navigation."""
    found = packages()
    docs = Path(config["docs_dir"])
    handler = config["plugins"]["mkdocstrings"].config.handlers.setdefault("python", {})
    handler["paths"] = [str(p.folder / "src") for p in found]
    frameworks = []
    for package in found:
        if package.framework is None:
            continue
        guide = docs / "frameworks" / f"{package.framework}.md"
        if not guide.exists():
            raise PluginError(f"{package.dist} has no guide: write docs/frameworks/{package.framework}.md")
        frameworks.append({_title(guide): f"frameworks/{package.framework}.md"})
    generated = {
        "Frameworks": frameworks,
        "API reference": [{p.dist: f"reference/{p.dist}.md"} for p in found],
    }
    for item in config["nav"]:
        for title in set(item) & set(generated):
            item[title] = generated[title]
    return config


def on_files(files: Files, config: Any) -> Files:
    """One API reference page per workspace package."""
    for package in packages():
        files.append(File.generated(config, f"reference/{package.dist}.md", content=_page(package)))
    return files
