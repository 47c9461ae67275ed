"""docs/cli.md and docs/configuration.md against the code (issue #16): every command, flag, exit code, setting and
variable is documented, and every page a message links to exists, so the docs cannot drift from the code."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest
import typer.main

from hashed import environment_variables
from hashed.cli._output import EXIT_CODES
from hashed.cli.app import app
from hashed.config import HashedSettings

from ..conftest import REPO

DOCS = REPO / "docs"
CLI_DOC = (DOCS / "cli.md").read_text(encoding="utf-8")
CONFIG_DOC = (DOCS / "configuration.md").read_text(encoding="utf-8")
RUN_CANNOT_START = 78  # `hashed run`: the program did not start (hashed._autoload)


def commands(command=None, path=("hashed",)) -> Iterator[tuple[str, object]]:
    """Every command and group of the `hashed` tree, with its path (`hashed policy test`)."""
    command = command or typer.main.get_command(app)
    yield " ".join(path), command
    for name, sub in getattr(command, "commands", {}).items():
        yield from commands(sub, (*path, name))


def synopses(doc: str, path: str, subcommands: set[str]) -> list[str]:
    """The usage lines of `path` in a doc's code blocks: `    hashed policy test [FILE] …`, not its subcommands'."""
    words = path.split()
    found = []
    for line in doc.splitlines():
        if not line.startswith("    hashed"):
            continue
        tokens = line.split()
        if tokens[: len(words)] == words and (len(tokens) == len(words) or tokens[len(words)] not in subcommands):
            found.append(line)
    return found


def mentions(text: str, flag: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text) is not None


@pytest.mark.parametrize("path", [path for path, _ in commands()])
def test_every_command_and_flag_has_a_usage_line_in_cli_md(path):
    command = dict(commands())[path]
    subcommands = set(getattr(command, "commands", {}))
    options = [p for p in command.params if p.param_type_name == "option" and p.name != "help"]
    arguments = [p for p in command.params if p.param_type_name == "argument"]
    if subcommands and not options:
        assert any(line.split()[: len(path.split())] == path.split() for line in CLI_DOC.splitlines()), path
        return
    lines = synopses(CLI_DOC, path, subcommands)
    assert lines, f"docs/cli.md has no usage line for `{path}`"
    usage = "\n".join(lines)
    missing = [flag for option in options for flag in option.opts if not mentions(usage, flag)]
    assert missing == [], f"`{path}`: {missing} not in its usage line(s):\n{usage}"
    for argument in arguments:
        name = (argument.metavar or argument.name.upper()).strip("[]")
        assert mentions(usage, name), f"`{path}`: argument {name} not in:\n{usage}"


def test_the_exit_code_table_is_the_codes_the_commands_use():
    section = CLI_DOC.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", section, re.M)}
    assert documented == set(EXIT_CODES) | {RUN_CANNOT_START}
    assert all(meaning.split(":")[0] in _row(section, code) for code, meaning in EXIT_CODES.items())


def _row(section: str, code: int) -> str:
    return next(line for line in section.splitlines() if line.startswith(f"| {code} |"))


def test_every_setting_is_in_the_configuration_table_with_its_variable_and_default():
    for name, field in HashedSettings.model_fields.items():
        row = next((line for line in CONFIG_DOC.splitlines() if line.startswith(f"| `{name}` |")), None)
        assert row is not None, f"docs/configuration.md has no row for `{name}`"
        assert f"`HASHED_{name.upper()}`" in row, row
        default = field.default
        if isinstance(default, bool):
            assert f"| `{str(default).lower()}` |" in row, row
        elif isinstance(default, (int, float)):
            assert f"| `{default:g}` |" in row, row
        elif isinstance(default, str):
            assert f"| `{default}` |" in row, row


def test_every_environment_variable_is_in_configuration_md():
    missing = [name for name in environment_variables.__all__ if f"`{name}`" not in CONFIG_DOC]
    assert missing == []


def test_the_config_init_writes_uses_only_documented_settings(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    from hashed.cli._starter import CONFIG

    keys = re.findall(r"^(\w+) =", CONFIG.format(agent='"a"'), re.M)
    assert keys and all(f"| `{key}` |" in CONFIG_DOC for key in keys)


def _slugs(page: str) -> set[str]:
    """The anchors mkdocs makes of a page's headings (Python-Markdown's toc slugify)."""
    text = (DOCS / f"{page}.md").read_text(encoding="utf-8")
    headings = re.findall(r"^#+ (.+)$", text, re.M)
    return {re.sub(r"[-\s]+", "-", re.sub(r"[^\w\s-]", "", h).strip().lower()) for h in headings}


def test_every_docs_page_a_message_links_to_exists():
    sources = (REPO / "hashed-core" / "src" / "hashed").rglob("*.py")
    links = {
        m
        for path in sources
        for m in re.findall(r"docs_url\(['\"]([\w/-]+)['\"](?:, ['\"]([\w-]+)['\"])?\)", path.read_text())
    }
    assert ("policy", "") in links and ("api", "errors") in links  # the starter policy, the error hint
    for page, anchor in links:
        assert (DOCS / f"{page}.md").is_file(), page
        assert not anchor or anchor in _slugs(page), (page, anchor)
    assert "docs/" not in (REPO / "hashed-core" / "src" / "hashed" / "cli" / "_starter.py").read_text()
