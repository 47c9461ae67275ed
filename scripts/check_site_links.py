"""Every link to the documentation site from outside it exists in the built site: `check_site_links.py site/`.

mkdocs --strict checks the links between pages; this checks the others, which point at the published address
(`https://hashed.readthedocs.io/en/latest/<page>/#<anchor>`): the root Markdown files (SECURITY.md is also a
page), each package's README and pyproject URLs, and the Python sources (CLI messages and docstrings).

Example:
    >>> [m.group(1) for m in _LINK.finditer("see https://hashed.readthedocs.io/en/latest/cli/#hashed-verify.")]
    ['cli/#hashed-verify']
"""

from __future__ import annotations

import re
import sys
from html.parser import HTMLParser
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workspace import ROOT, packages

BASE = "https://hashed.readthedocs.io/en/latest/"
_LINK = re.compile(re.escape(BASE) + r"([A-Za-z0-9_./-]*(?:#[A-Za-z0-9_-]+)?)")


class _Ids(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ids.update(value for name, value in attrs if name == "id" and value)


def _sources() -> list[Path]:
    files = [ROOT / name for name in ("README.md", "SECURITY.md", "CONTRIBUTING.md", "CHANGELOG.md")]
    for package in packages():
        files += [package.folder / "README.md", package.folder / "pyproject.toml"]
        files += sorted((package.folder / "src").rglob("*.py"))
    return [f for f in files if f.exists()]


def broken(site: Path) -> list[str]:
    """`file: url (why)` for each link that the built site does not have."""
    problems = []
    for source in _sources():
        for match in _LINK.finditer(source.read_text(errors="replace")):
            page, _, anchor = match.group(1).partition("#")
            html = site / page / "index.html" if not page.endswith(".html") else site / page
            where = f"{source.relative_to(ROOT)}: {BASE}{match.group(1)}"
            if not html.exists():
                problems.append(f"{where} (no page {page or '/'})")
            elif anchor:
                parser = _Ids()
                parser.feed(html.read_text())
                if anchor not in parser.ids:
                    problems.append(f"{where} (no anchor #{anchor} on {page})")
    return problems


def main() -> int:
    """Command line: the built site's folder is the only argument."""
    site = Path(sys.argv[1] if len(sys.argv) > 1 else "site")
    if not (site / "index.html").exists():
        print(f"check_site_links: {site} is not a built site (run: mkdocs build)", file=sys.stderr)
        return 2
    problems = broken(site)
    for problem in problems:
        print(f"check_site_links: {problem}", file=sys.stderr)
    print(f"check_site_links: {len(problems)} broken links to the site")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
