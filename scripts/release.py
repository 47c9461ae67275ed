"""Set one version on every package, in lockstep, and collect the changelog: `python scripts/release.py 0.2.0`.

What it changes (then `git diff` shows it all):

- every workspace member's `_version.py` (each package's only version source);
- every dependency between our packages: `hashed-core>=X.Y.Z,<X.(Y+1)` (before 1.0 a minor version may break);
- `CHANGELOG.md`, from the fragments in `changes/` (towncrier; `--no-changelog` skips it);
- `uv.lock`, which records the workspace's versions.

`--check` changes nothing and exits 1 when the packages' versions or ranges disagree (CI runs it).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from workspace import ROOT, Package, packages

_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)((a|b|rc)(0|[1-9]\d*))?$")


def our_range(version: str) -> str:
    """The range one of our packages requires of another at `version`.

    Example:
        >>> our_range("0.2.1")
        '>=0.2.1,<0.3'
        >>> our_range("1.4.0")
        '>=1.4.0,<2'
    """
    major, minor = (int(part) for part in version.split(".")[:2])
    upper = f"{major}.{minor + 1}" if major == 0 else f"{major + 1}"
    return f">={version},<{upper}"


def _dependency(dists: list[str]) -> re.Pattern[str]:
    names = "|".join(re.escape(d) for d in dists)
    return re.compile(rf'"({names})(\s*[<>=!~][^";]*)(;[^"]*)?"')  # a requirement, never a bare name


def set_version(package: Package, version: str, dists: list[str]) -> None:
    """Rewrite the package's `_version.py` and its requirements on our other packages."""
    text = package.version_file.read_text()
    package.version_file.write_text(re.sub(r'^__version__ = "[^"]*"$', f'__version__ = "{version}"', text, flags=re.M))
    pyproject = package.folder / "pyproject.toml"
    pattern = _dependency(dists)
    pyproject.write_text(
        pattern.sub(lambda m: f'"{m.group(1)}{our_range(version)}{m.group(3) or ""}"', pyproject.read_text())
    )


def problems(found: list[Package]) -> list[str]:
    """What is not in lockstep: versions that differ, ranges that do not match the version."""
    dists = [p.dist for p in found]
    versions = {p.dist: p.version for p in found}
    issues = []
    if len(set(versions.values())) != 1:
        issues.append(f"versions differ: {versions}")
    for package in found:
        expected = our_range(package.version)
        for match in _dependency(dists).finditer((package.folder / "pyproject.toml").read_text()):
            if match.group(2).replace(" ", "") != expected:
                issues.append(f"{package.dist} requires {match.group(1)}{match.group(2)}; expected {expected}")
        if (package.folder / "LICENSE").read_bytes() != (ROOT / "LICENSE").read_bytes():
            issues.append(f"{package.folder.name}/LICENSE differs from LICENSE (copy it)")
    return issues


def main(argv: list[str] | None = None) -> int:
    """Command line: see the module docstring."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version", nargs="?", help="X.Y.Z (or X.Y.ZrcN)")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if not in lockstep")
    parser.add_argument("--no-changelog", action="store_true", help="leave CHANGELOG.md and changes/ alone")
    parser.add_argument("--no-lock", action="store_true", help="leave uv.lock alone")
    args = parser.parse_args(argv)
    found = packages()
    if args.check:
        issues = problems(found)
        for issue in issues:
            print(f"release: {issue}", file=sys.stderr)
        if not issues:
            print(f"release: {len(found)} packages at {found[0].version}, ranges and licences in lockstep")
        return 1 if issues else 0
    if args.version is None or not _SEMVER.match(args.version):
        parser.error(f"give the new version as X.Y.Z (got {args.version!r})")
    for package in found:
        set_version(package, args.version, [p.dist for p in found])
        print(f"release: {package.dist} {args.version}")
    if not args.no_changelog:
        towncrier = ["towncrier", "build", "--yes", "--version", args.version]  # the release group's towncrier
        subprocess.run(towncrier, cwd=ROOT, check=True)  # noqa: S603 - fixed arguments, no shell
    if not args.no_lock:
        uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
        subprocess.run([uv, "lock"], cwd=ROOT, check=True)  # noqa: S603 - fixed arguments, no shell
    issues = problems(packages())
    for issue in issues:
        print(f"release: {issue}", file=sys.stderr)
    return 1 if issues else 0


if __name__ == "__main__":
    sys.exit(main())
