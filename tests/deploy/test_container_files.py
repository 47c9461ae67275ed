"""deploy/Dockerfile and deploy/compose.yaml describe the layout that deploy/hashed-deploy runs and CI tests.

No container engine runs in this CI, so they cannot be built here: this reads them and compares them with the
script, command by command and setting by setting. When one changes without the other, a test here fails.
"""

from __future__ import annotations

import re
import shlex

import pytest
import yaml
from _support import ROOT  # this folder (see conftest)

DEPLOY = ROOT / "deploy"
SCRIPT = (DEPLOY / "hashed-deploy").read_text()
COMPOSE = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]
BACKENDS = sorted(name for name in SERVICES if re.fullmatch(r"backend-\d+", name))


def _dockerfile() -> list[tuple[str, str]]:
    """(instruction, arguments) of the Dockerfile, continuation lines joined, comments dropped."""
    text = re.sub(r"\\\n\s*", " ", (DEPLOY / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    return [(line.split(None, 1)[0].upper(), line.split(None, 1)[1]) for line in lines]


DOCKERFILE = _dockerfile()


def _json_command(arguments: str) -> list[str]:
    return yaml.safe_load(arguments)  # a JSON array is YAML


def _script_command(subcommand: str) -> list[str]:
    """The `hashed backend <subcommand> …` words the script runs (its variables as written)."""
    if subcommand == "serve":  # started as: bash -c 'exec "$0" backend serve …' "$HASHED" "$port"
        words = shlex.split(re.search(r"bash -c '([^']*backend serve[^']*)'", SCRIPT).group(1))
        return ["hashed", *words[words.index("backend") :]]
    assert re.search(rf"^\s*hashed_backend {subcommand}\b", SCRIPT, re.M)
    assert 'exec "$HASHED" backend "$@"' in SCRIPT  # hashed_backend ARGS runs `hashed backend ARGS`
    return ["hashed", "backend", subcommand]


def test_the_image_is_multi_stage_and_runs_as_a_user_without_privileges():
    stages = [args for instruction, args in DOCKERFILE if instruction == "FROM"]
    assert len(stages) >= 2 and any("AS build" in s for s in stages)
    users = [args for instruction, args in DOCKERFILE if instruction == "USER"]
    assert users and users[-1] not in ("root", "0")
    last_user = max(i for i, (instruction, _) in enumerate(DOCKERFILE) if instruction == "USER")
    last_cmd = max(i for i, (instruction, _) in enumerate(DOCKERFILE) if instruction == "CMD")
    assert last_user < last_cmd


def test_the_image_and_the_script_start_the_same_server():
    [cmd] = [_json_command(args) for instruction, args in DOCKERFILE if instruction == "CMD"]
    serve = _script_command("serve")
    assert cmd[:3] == serve[:3] == ["hashed", "backend", "serve"]
    # Same options; only their values differ (a container listens on all its addresses, a host on loopback).
    assert [w for w in cmd if w.startswith("--")] == [w for w in serve if w.startswith("--")] == ["--host", "--port"]
    for name in BACKENDS:
        assert SERVICES[name]["command"] == cmd


def test_the_health_check_asks_ready_like_the_script():
    [check] = [args for instruction, args in DOCKERFILE if instruction == "HEALTHCHECK"]
    assert "/ready" in check and "8400" in check
    assert 'ready "http://127.0.0.1:$port/ready"' in SCRIPT


def test_compose_migrates_once_before_the_replicas_as_the_script_does():
    assert SERVICES["migrate"]["command"] == _script_command("migrate") == ["hashed", "backend", "migrate"]
    up = SCRIPT.split("\nup() {", 1)[1].split("\n}", 1)[0]
    assert up.index("hashed_backend migrate") < up.index("start_replica")
    assert len(BACKENDS) >= 2
    for name in BACKENDS:
        assert SERVICES[name]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_both_layouts_read_the_same_settings_file_and_set_the_same_secrets():
    assert "grep -E '^HASHED_[A-Z_]+=' \"$DEPLOY/backend.env\"" in SCRIPT
    script_sets = set(re.findall(r'echo "(HASHED_[A-Z_]+)=', SCRIPT))
    assert script_sets == {"HASHED_DATABASE_URL", "HASHED_BACKEND_SECRET_KEY"}
    settings = {
        line.split("=", 1)[0]
        for line in (DEPLOY / "backend.env").read_text().splitlines()
        if "=" in line and not line.startswith("#")
    }
    assert "HASHED_BACKEND_MIGRATE_ON_START" in settings and "HASHED_BACKEND_COOKIE_SECURE" in settings
    for name in ["migrate", *BACKENDS]:
        service = SERVICES[name]
        assert service["env_file"] == ["backend.env"]
        overrides = set(service["environment"])
        assert script_sets <= overrides
        # Anything compose sets beyond the secrets overrides backend.env on purpose, and says why.
        assert overrides - script_sets <= {"HASHED_BACKEND_FORWARDED_ALLOW_IPS"}
    assert "HASHED_BACKEND_FORWARDED_ALLOW_IPS: 172.28.0.0/24" in (DEPLOY / "compose.yaml").read_text()
    assert COMPOSE["networks"]["hashed"]["ipam"]["config"][0]["subnet"] == "172.28.0.0/24"


def test_both_proxies_include_the_same_tls_server_settings():
    template = (DEPLOY / "nginx" / "host.conf.template").read_text()
    assert "include @DEPLOY@/nginx/hashed-proxy.conf;" in template
    compose_conf = (DEPLOY / "nginx" / "compose.conf").read_text()
    assert "include /etc/nginx/hashed-proxy.conf;" in compose_conf
    assert "./nginx/hashed-proxy.conf:/etc/nginx/hashed-proxy.conf:ro" in SERVICES["proxy"]["volumes"]
    upstream = re.findall(r"server (backend-\d+):8400", compose_conf)
    assert upstream == BACKENDS  # every replica behind the proxy
    assert "max_fails=1 fail_timeout=5s" in compose_conf and "max_fails=1 fail_timeout=5s" in SCRIPT


@pytest.mark.parametrize("image", ["postgres", "proxy"])
def test_service_images_are_the_versions_tested_here(image):
    # CI runs Debian 12's PostgreSQL 15 and nginx 1.22: the images name the same major versions.
    expected = {"postgres": "postgres:15", "proxy": "nginx:1.22"}[image]
    assert SERVICES[image]["image"].startswith(expected)


def test_backups_use_the_same_command():
    assert "hashed backend backup" in " ".join(SERVICES["backup"]["command"])
    assert "hashed_backend backup" in SCRIPT
