"""The built files: one wheel and one sdist per package, each with the licence, at the one version, twine-clean."""

from __future__ import annotations

import email
import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest
from doc_commands import PACKAGES  # scripts/ (see conftest)
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from release import our_range
from workspace import ROOT, read_version

pytestmark = pytest.mark.slow
LICENSE = (ROOT / "LICENSE").read_bytes()


def test_one_wheel_and_one_sdist_per_workspace_package(built):
    names = sorted(path.name for path in built.iterdir() if path.suffix in (".whl", ".gz"))
    expected = sorted(
        name
        for p in PACKAGES
        for name in (f"{p.wheel_prefix}{p.version}-py3-none-any.whl", f"{p.wheel_prefix}{p.version}.tar.gz")
    )
    assert names == expected


@pytest.mark.parametrize("package", PACKAGES, ids=[p.dist for p in PACKAGES])
def test_wheel_carries_the_licence_and_its_version(built, package):
    with zipfile.ZipFile(built / f"{package.wheel_prefix}{package.version}-py3-none-any.whl") as wheel:
        info = f"{package.wheel_prefix}{package.version}.dist-info"
        assert wheel.read(f"{info}/licenses/LICENSE") == LICENSE
        metadata = email.message_from_bytes(wheel.read(f"{info}/METADATA"))
    assert metadata["Name"] == package.dist and metadata["Version"] == package.version
    assert metadata["License-Expression"] == "Apache-2.0" and metadata["License-File"] == "LICENSE"
    assert any(url.startswith("Documentation, https://") for url in metadata.get_all("Project-URL"))
    ours = [Requirement(r) for r in metadata.get_all("Requires-Dist") or [] if r.startswith("hashed-")]
    assert all(r.specifier == SpecifierSet(our_range(package.version)) for r in ours), ours


@pytest.mark.parametrize("package", PACKAGES, ids=[p.dist for p in PACKAGES])
def test_sdist_carries_the_licence(built, package):
    with tarfile.open(built / f"{package.wheel_prefix}{package.version}.tar.gz") as sdist:
        top = f"{package.wheel_prefix}{package.version}"
        assert sdist.extractfile(f"{top}/LICENSE").read() == LICENSE
        assert sdist.extractfile(f"{top}/{package.version_file.relative_to(package.folder)}")


def test_twine_check_passes_on_every_file(built):
    files = sorted(str(path) for path in built.iterdir() if path.suffix in (".whl", ".gz"))
    result = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *files], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count("PASSED") == len(files)


def test_versions_ranges_and_licences_are_in_lockstep():
    result = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "release.py"), "--check"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr


def test_release_script_moves_every_package_and_the_changelog_together(clone, tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(clone, copy, ignore=shutil.ignore_patterns("dist"))
    for command in (["git", "init", "-q"], ["git", "add", "-A"], ["git", "commit", "-qm", "before"]):
        subprocess.run(command, cwd=copy, check=True, capture_output=True, env=_git_env())
    (copy / "changes" / "999.bugfix.md").write_text("Retention keeps the record that joins the archive.\n")
    tools = f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"  # towncrier of this environment
    result = subprocess.run(
        [sys.executable, "scripts/release.py", "0.2.0", "--no-lock"],
        cwd=copy,
        capture_output=True,
        text=True,
        env={**_git_env(), "PATH": tools},
    )
    assert result.returncode == 0, result.stdout + result.stderr
    for package in PACKAGES:
        assert read_version(copy / package.version_file.relative_to(ROOT)) == "0.2.0"
        pyproject = (copy / package.folder.name / "pyproject.toml").read_text()
        assert "0.1.0" not in pyproject.split("dependencies", 1)[1].split("]", 1)[0]
    changelog = (copy / "CHANGELOG.md").read_text()
    assert "## 0.2.0" in changelog and "Retention keeps the record that joins the archive." in changelog
    assert not (copy / "changes" / "999.bugfix.md").exists()
    check = subprocess.run([sys.executable, "scripts/release.py", "--check"], cwd=copy, capture_output=True, text=True)
    assert check.returncode == 0 and "at 0.2.0" in check.stdout, check.stderr


def _git_env():
    return {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
    }
