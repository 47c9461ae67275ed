"""Install tests: every install command of every doc, run as written in new virtualenvs with plain pip.

The commands come from the fenced shell blocks of the README files, CONTRIBUTING.md, docs/ and the adapters'
`__init__` docstrings (their usage pages). They run in a copy of the repository, so the docs' relative paths
(`./hashed-core`, `dist/…`) mean what they mean to a reader with a clone. Nothing here is a stand-in: pip,
uv and twine are the real tools, the wheels are built by the docs' own `uv build` command.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "scripts"))  # the test modules import from there too
from doc_commands import PACKAGES, doc_commands, poison_version  # noqa: E402 - the folder added above


@dataclasses.dataclass
class Venv:
    """A new virtual environment, used as an activated one would be."""

    path: Path

    @property
    def env(self) -> dict[str, str]:
        """The environment of a shell in which this venv was activated."""
        environ = {k: v for k, v in os.environ.items() if not k.startswith(("HASHED_", "VIRTUAL_ENV", "UV_"))}
        environ["PATH"] = f"{self.path / 'bin'}{os.pathsep}{environ.get('PATH', '')}"
        environ["VIRTUAL_ENV"] = str(self.path)
        return environ

    def run(self, command: str, cwd: Path, **extra_env: str) -> subprocess.CompletedProcess[str]:
        """A shell command in this venv; fails the test with its output when it fails."""
        result = subprocess.run(
            ["bash", "-c", command], cwd=cwd, env={**self.env, **extra_env}, capture_output=True, text=True
        )
        if result.returncode != 0:
            pytest.fail(f"`{command}` exited {result.returncode}:\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
        return result

    def installed(self, cwd: Path) -> dict[str, str]:
        """Installed distributions and their versions."""
        listed = self.run("python -m pip list --format json", cwd).stdout
        return {item["name"].lower(): item["version"] for item in json.loads(listed)}


@pytest.fixture
def new_venv(tmp_path_factory):
    def make() -> Venv:
        path = tmp_path_factory.mktemp("venv")
        venv.EnvBuilder(with_pip=True).create(path)
        return Venv(path)

    return make


@pytest.fixture(scope="session")
def clone(tmp_path_factory) -> Path:
    """The repository's files (tracked and new, not ignored) in a folder of their own, as a reader's clone."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT,
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    target = tmp_path_factory.mktemp("clone")
    for name in filter(None, (n.decode() for n in listed)):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    return target


@pytest.fixture(scope="session")
def built(clone, tmp_path_factory) -> Path:
    """`dist/` of the clone, made by the docs' own commands (`pip install uv`, then `uv build …`)."""
    builder_path = tmp_path_factory.mktemp("builder")
    venv.EnvBuilder(with_pip=True).create(builder_path)
    builder = Venv(builder_path)
    commands = doc_commands()
    builds = [c for c in commands if c.kind == "build"]
    assert builds, "no doc says how to build the wheels (uv build)"
    for build in builds:  # the tools the same page installs first (`pip install uv`), then the build itself
        for command in commands:
            if command.kind == "other" and command.source == build.source:
                builder.run(command.text, clone)
        builder.run(build.text, clone)
    return clone / "dist"


@pytest.fixture(scope="session")
def poisoned_index(tmp_path_factory) -> Path:
    """A find-links folder with a newer wheel of each of our names whose import fails loudly."""
    folder = tmp_path_factory.mktemp("poison")
    for package in PACKAGES:
        version = poison_version(package)
        stem = f"{package.wheel_prefix}{version}"
        info = f"{stem}.dist-info"
        with zipfile.ZipFile(folder / f"{stem}-py3-none-any.whl", "w") as wheel:
            wheel.writestr(f"{package.module}/__init__.py", "raise ImportError('poisoned: taken from an index')\n")
            wheel.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {package.dist}\nVersion: {version}\n")
            wheel.writestr(
                f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
            )
            wheel.writestr(f"{info}/RECORD", "")
    return folder


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "doc_command" in metafunc.fixturenames:
        commands = [c for c in doc_commands() if c.kind in ("local", "index")]
        metafunc.parametrize("doc_command", commands, ids=[c.text for c in commands])
