"""The remote commands' offline parts: credentials, errors without a backend, parsers. (Against a real backend:
tests/e2e at the repository root.)"""

from __future__ import annotations

import stat

import httpx
import pytest
import typer
from typer.testing import CliRunner

from hashed.cli import _admin_client
from hashed.cli._admin_client import AdminClient
from hashed.cli._credentials import Credentials, credentials_path, load_credentials, save_credentials
from hashed.cli._fmt import duration, since
from hashed.cli._logs import Event, sse_events
from hashed.cli.app import app
from hashed.errors import BackendError as RemoteError
from hashed.errors import BackendUnavailable, ConfigError

runner = CliRunner()


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    for name in ("HASHED_ADMIN_KEY", "HASHED_BACKEND_URL", "HASHED_HOME"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.chdir(tmp_path)


def test_credentials_are_stored_private_and_read_back():
    path = save_credentials(Credentials(url="http://b:8400", admin_key='hashed_admin_"q\\', key_id="key_1"))
    assert path == credentials_path() and path.parent.name == "hashed" and path.parent.parent.name == "config"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = load_credentials()
    assert loaded is not None and loaded.admin_key == 'hashed_admin_"q\\' and loaded.key_id == "key_1"
    assert loaded.source == str(path) and loaded.created_by_login
    assert "hashed_admin" not in repr(loaded)


def test_environment_key_overrides_the_file_and_a_file_key_stays_with_its_url(monkeypatch):
    save_credentials(Credentials(url="http://stored:8400", admin_key="hashed_admin_file"))
    monkeypatch.setenv("HASHED_BACKEND_URL", "http://elsewhere:1")
    loaded = load_credentials()
    assert loaded is not None and (loaded.url, loaded.admin_key) == ("http://stored:8400", "hashed_admin_file")
    monkeypatch.setenv("HASHED_ADMIN_KEY", "hashed_admin_env")
    loaded = load_credentials()
    assert loaded is not None and (loaded.url, loaded.admin_key, loaded.source) == (
        "http://elsewhere:1",
        "hashed_admin_env",
        "environment",
    )
    monkeypatch.delenv("HASHED_BACKEND_URL")
    assert load_credentials().url == "http://stored:8400"


def test_a_widely_readable_or_broken_credentials_file_is_refused():
    path = save_credentials(Credentials(url="http://b", admin_key="k"))
    path.chmod(0o640)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_credentials()
    path.chmod(0o600)
    path.write_text("url = [unterminated\n")
    with pytest.raises(ConfigError, match="hashed login"):
        load_credentials()
    path.write_text('url = "http://b"\n')
    with pytest.raises(ConfigError, match="admin_key"):
        load_credentials()


@pytest.mark.parametrize(
    "args",
    [
        ["keys", "list"],
        ["agent", "list"],
        ["agent", "create", "bot"],
        ["policy", "pull"],
        ["logs", "search"],
        ["logs", "tail"],
        ["logs", "export", "--agent", "bot"],
    ],
)
def test_remote_commands_without_a_login_say_run_hashed_login(args):
    result = runner.invoke(app, args)
    assert result.exit_code == 3, result.output
    assert "not logged in" in result.output and "hashed login" in result.output


def test_approvals_without_ledger_or_login_and_logs_refused_without_ledger():
    result = runner.invoke(app, ["approvals", "list"])
    assert result.exit_code == 3 and "hashed login" in result.output and "HASHED_HOME" in result.output
    result = runner.invoke(app, ["logs", "--refused"])
    assert result.exit_code == 3 and "no Hashed project" in result.output


def test_backend_command_without_the_backend_package(monkeypatch):
    monkeypatch.setattr("hashed.cli._backend.entry_points", lambda **_: ())  # no package offers `backend`
    result = runner.invoke(app, ["backend", "serve"])
    assert result.exit_code == 3
    assert "not installed" in result.output and "pip install hashed-backend" in result.output


def test_logout_without_a_login():
    result = runner.invoke(app, ["logout"])
    assert result.exit_code == 0 and "not logged in" in result.output


def _answer(status: int, body: dict | None = None, headers: dict | None = None) -> AdminClient:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body, headers=headers)

    return AdminClient("http://backend", "hashed_admin_x", transport=httpx.MockTransport(handler))


def test_admin_client_errors_carry_code_and_details():
    body = {"error": {"code": "rules_removed", "message": "resend", "details": {"removed": ["a"]}}}
    with _answer(409, body) as client, pytest.raises(RemoteError) as caught:
        client.json("PUT", "/v1/policies/org", body={"yaml": ""})
    assert caught.value.code == "rules_removed" and caught.value.details == {"removed": ["a"]}
    with _answer(429, {"error": {"code": "rate_limited", "message": "slow"}}, {"Retry-After": "3"}) as client:
        with pytest.raises(BackendUnavailable) as unavailable:
            client.request("GET", "/v1/keys")
    assert unavailable.value.retry_after == 3.0


@pytest.mark.parametrize(
    ("code", "status", "exit_code", "hint"),
    [
        ("key_revoked", 401, 3, "run hashed login"),
        ("key_expired", 401, 3, "run hashed login"),
        ("forbidden", 403, 3, "admin key"),
        ("agent_not_found", 404, 1, "hashed agent list"),
        ("version_conflict", 409, 1, "hashed policy diff"),
        ("something_new", 409, 1, "https://hashed.readthedocs.io/en/latest/api/#errors"),
    ],
)
def test_every_backend_error_names_a_next_step(code, status, exit_code, hint, capsys):
    with pytest.raises(typer.Exit) as exited:
        _admin_client.fail_remote(RemoteError(f"{code}: no", status=status, code=code), "http://b")
    assert exited.value.exit_code == exit_code
    assert hint in capsys.readouterr().err


def test_sse_events_follow_the_event_stream_format():
    lines = ["retry: 2000", "", ": keep-alive", "", "id: 1", "event: record", "data: a", "data: b", "", "data:c", ""]
    assert list(sse_events(lines)) == [Event("1", "record", "a\nb"), Event("1", "message", "c")]


def test_durations_and_ages():
    assert duration("90") == 90 and duration("2h") == 7200 and duration("1.5d") == 129600
    with pytest.raises(typer.BadParameter):
        duration("soon")
    assert since("2024-05-01T00:00:00Z") == "2024-05-01T00:00:00Z" and since("1700000000000000000").isdigit()
    assert int(since("1h")) < int(since("1m"))
