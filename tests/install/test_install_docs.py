"""Every install command of every doc works as written, in a new virtualenv, with plain pip."""

from __future__ import annotations

import os

import pytest
from doc_commands import OURS, PACKAGES, doc_commands, install_targets, poison_version  # scripts/ (see conftest)

pytestmark = pytest.mark.slow


def test_the_docs_show_each_way_to_install():
    kinds = {c.kind for c in doc_commands()}
    assert {"build", "local", "index"} <= kinds
    for package in PACKAGES:  # an adapter added to the workspace is installable from the docs as written
        named = " ".join(c.text for c in doc_commands() if c.kind in ("local", "index"))
        assert package.folder.name in named or package.wheel_prefix in named, package.dist


def test_no_doc_installs_the_unrelated_hashed_project():
    for command in doc_commands():
        targets = [t.split("[")[0].split("=")[0] for t in install_targets(command.text.split())]
        assert "hashed" not in targets, f"{command.source}: `{command.text}` installs PyPI's unrelated `hashed`"


def test_install_command_works_as_written(doc_command, clone, built, poisoned_index, new_venv):
    env = new_venv()
    if doc_command.kind == "local":
        # Paths and wheels must satisfy our names by themselves: an index offering a newer hashed-core must
        # not even be consulted (the poisoned wheels would be picked, being newer and inside our ranges).
        find_links = f"{poisoned_index} {os.environ.get('PIP_FIND_LINKS', '')}".strip()
    else:
        # By name, as it works once published: the built wheels served as the package index serves them.
        find_links = f"{built} {os.environ.get('PIP_FIND_LINKS', '')}".strip()
    env.run(doc_command.text, clone, PIP_FIND_LINKS=find_links)

    installed = env.installed(clone)
    ours = {name: version for name, version in installed.items() if name in OURS}
    assert ours.get("hashed-core") == PACKAGES[0].version, ours  # every one of our packages brings the core
    assert set(ours.values()) == {PACKAGES[0].version}, f"not the versions of this repository: {ours}"
    assert not any(version == poison_version(PACKAGES[0]) for version in ours.values())
    env.run("python -m pip check", clone)
    assert env.run("hashed --version", clone).stdout.strip() == f"hashed {PACKAGES[0].version}"
    by_dist = {p.dist: p for p in PACKAGES}
    for name in ours:
        module = by_dist[name].module
        imported = env.run(f"python -c 'import {module}; print({module}.__version__)'", clone).stdout.strip()
        assert imported == ours[name]
    if "hashed-backend" in ours:
        assert "migrate" in env.run("hashed backend --help", clone).stdout


def test_the_booby_trap_works_on_a_backend_installed_alone(clone, built, poisoned_index, new_venv):
    # Why the docs name ./hashed-core beside ./backend: alone, pip looks hashed-core up on the index and takes
    # the newest one inside the range. This proves the trap of the test above would catch such a lookup.
    env = new_venv()
    find_links = f"{poisoned_index} {os.environ.get('PIP_FIND_LINKS', '')}".strip()
    env.run("pip install ./backend", clone, PIP_FIND_LINKS=find_links)
    assert env.installed(clone)["hashed-core"] == poison_version(PACKAGES[0])
