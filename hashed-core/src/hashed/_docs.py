"""Where the documentation lives online, so messages link to pages an installed wheel's user can open.

The site (mkdocs) has one page per file under `docs/`: `docs/cli.md` is `<site>/cli/`, `docs/frameworks/langchain.md`
is `<site>/frameworks/langchain/`. A page is named by its file's path under `docs/`, without `.md`, so a test can
check that every linked page exists.
"""

from __future__ import annotations

__all__ = ["DOCS_URL", "docs_url"]

DOCS_URL = "https://hashed.readthedocs.io/en/latest/"


def docs_url(page: str, anchor: str | None = None) -> str:
    """The address of the page for `docs/<page>.md`, at `anchor` (a heading's slug) when given.

    Example:
        >>> docs_url("policy")
        'https://hashed.readthedocs.io/en/latest/policy/'
        >>> docs_url("cli", "exit-codes")
        'https://hashed.readthedocs.io/en/latest/cli/#exit-codes'
    """
    if page.endswith(".md") or page.startswith("/") or not page:
        raise ValueError(f"name a docs page by its file under docs/ without .md (e.g. 'policy'), not {page!r}")
    return f"{DOCS_URL}{page}/" + (f"#{anchor}" if anchor else "")
