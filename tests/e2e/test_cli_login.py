"""`hashed login | logout` against a real backend: where credentials go, what they may do, and what errors say."""

from __future__ import annotations

import json
import stat
import uuid

import httpx
import pytest

pytestmark = pytest.mark.e2e


def test_login_with_a_key_stores_it_privately_outside_the_project(cli, org):
    result = cli("login", "--url", org.url, "--key", org.admin_key)
    assert f"logged in to {org.url} as admin key 'ops'" in result.output
    path = cli.config / "hashed" / "credentials.toml"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert org.admin_key in path.read_text()
    assert not any(org.admin_key in p.read_text(errors="ignore") for p in cli.cwd.rglob("*") if p.is_file())
    listed = json.loads(cli("keys", "list", "--json").output)
    assert {k["name"] for k in listed} == {"ops", "fleet"}


def test_login_with_email_creates_an_admin_key_and_logout_revokes_it(cli, org):
    result = cli("login", "--url", org.url, "--email", org.email, "--password-stdin", input=org.password + "\n")
    assert f"logged in to {org.url} as {org.email}" in result.output
    assert "created admin key 'hashed-cli" in result.output and "password is not stored" in result.output
    stored = (cli.config / "hashed" / "credentials.toml").read_text()
    assert org.password not in stored and "key_id" in stored
    created = [k for k in org.admin.get("/v1/keys").json() if k["name"].startswith("hashed-cli")]
    assert [k["status"] for k in created] == ["active"]
    cli("agent", "list")  # the new key works

    result = cli("logout")
    assert "revoked admin key 'hashed-cli" in result.output and "removed" in result.output
    assert not (cli.config / "hashed" / "credentials.toml").exists()
    assert org.admin.get(f"/v1/keys/{created[0]['id']}").json()["status"] == "revoked"
    result = cli("keys", "list", code=3)
    assert "not logged in" in result.output and "hashed login" in result.output


def test_logging_in_again_retires_the_key_the_previous_login_made(cli, org):
    for _ in range(2):
        cli("login", "--url", org.url, "--email", org.email, "--password-stdin", input=org.password + "\n")
    made = [k for k in org.admin.get("/v1/keys").json() if k["name"].startswith("hashed-cli")]
    assert sorted(k["status"] for k in made) == ["active", "revoked"]
    cli("login", "--url", org.url, "--key", org.admin_key)
    made = [k for k in org.admin.get("/v1/keys").json() if k["name"].startswith("hashed-cli")]
    assert [k["status"] for k in made] == ["revoked", "revoked"]
    cli("logout")  # a login with a key of one's own: the key is not revoked
    assert org.admin.get("/v1/keys").status_code == 200


def test_login_with_a_wrong_password_or_key_says_what_to_do(cli, org):
    result = cli("login", "--url", org.url, "--email", org.email, "--password-stdin", input="wrong password\n", code=1)
    assert "login_failed" in result.output and "e-mail and password" in result.output
    result = cli("login", "--url", org.url, "--key", "hashed_admin_" + "x" * 43, code=3)
    assert "key_invalid" in result.output and "run hashed login" in result.output
    result = cli("login", "--url", org.url, "--key", org.agent_key, code=2)
    assert "agent key" in result.output
    assert not (cli.config / "hashed" / "credentials.toml").exists()


def test_a_revoked_key_is_refused_with_run_hashed_login(logged_in, org, monkeypatch):
    cli = logged_in
    spare = json.loads(cli("keys", "create", "--kind", "admin", "--name", "spare", "--json").output)
    monkeypatch.setenv("HASHED_BACKEND_URL", org.url)
    monkeypatch.setenv("HASHED_ADMIN_KEY", spare["key"])
    cli("keys", "list")
    monkeypatch.delenv("HASHED_ADMIN_KEY")  # back to the stored login to revoke the spare key
    cli("keys", "revoke", spare["id"])
    monkeypatch.setenv("HASHED_ADMIN_KEY", spare["key"])
    result = cli("keys", "list", code=3)
    assert "key_revoked" in result.output and "run hashed login" in result.output


def test_environment_overrides_the_stored_login(cli, org, closed_url, monkeypatch):
    cli("login", "--url", org.url, "--key", org.admin_key)
    monkeypatch.setenv("HASHED_ADMIN_KEY", "hashed_admin_" + "y" * 43)
    result = cli("agent", "list", code=3)
    assert "key_invalid" in result.output
    # The stored key is never sent to a URL it was not stored with.
    monkeypatch.delenv("HASHED_ADMIN_KEY")
    monkeypatch.setenv("HASHED_BACKEND_URL", closed_url)
    cli("agent", "list")


def test_an_unreachable_backend_says_how_to_start_it(cli, closed_url, monkeypatch):
    monkeypatch.setenv("HASHED_BACKEND_URL", closed_url)
    monkeypatch.setenv("HASHED_ADMIN_KEY", "hashed_admin_" + "z" * 43)
    result = cli("agent", "list", code=3)
    assert "cannot reach the backend" in result.output and "hashed backend serve" in result.output


def test_a_credentials_file_readable_by_others_is_refused(cli, org):
    cli("login", "--url", org.url, "--key", org.admin_key)
    path = cli.config / "hashed" / "credentials.toml"
    path.chmod(0o644)
    result = cli("keys", "list", code=3)
    assert "chmod 600" in result.output
    assert httpx.get(f"{org.url}/health").status_code == 200


def test_signup_states_the_minimum_first_and_asks_for_the_password_twice(cli, backend):
    email = f"new-{uuid.uuid4().hex[:10]}@example.com"
    answers = "too short\n" + "a long enough pw\n" + "a typo in it\n" + "a long enough pw\n" * 2
    args = ("login", "--url", backend.url, "--signup", "--email", email, "--org", "Signup Org")
    result = cli(*args, input=answers)
    prompts = result.output
    assert prompts.index("choose a password (at least 10 characters): ") < prompts.index("that has 9 characters")
    assert prompts.count("type it again: ") == 2 and "the two differ" in prompts
    assert f"logged in to {backend.url} as {email} (Signup Org)" in result.output
    cli("agent", "list")  # the account exists, with the password typed twice
    with httpx.Client(base_url=backend.url) as session:
        assert session.post("/v1/auth/login", json={"email": email, "password": "a long enough pw"}).status_code == 200


def test_signup_with_a_short_password_on_stdin_is_refused_before_the_backend_sees_it(cli, backend):
    email = f"new-{uuid.uuid4().hex[:10]}@example.com"
    args = ("login", "--url", backend.url, "--signup", "--email", email, "--password-stdin")
    result = cli(*args, input="short\n", code=2)
    assert "error: the password needs at least 10 characters" in result.output
    with httpx.Client(base_url=backend.url) as session:
        assert session.post("/v1/auth/login", json={"email": email, "password": "short"}).status_code == 401


def test_the_cli_states_the_backends_minimum_password_length():
    from hashed.cli._login import MIN_PASSWORD
    from hashed_backend.schemas.auth import Password

    [field] = Password.__metadata__
    assert [m.min_length for m in field.metadata if hasattr(m, "min_length")] == [MIN_PASSWORD]


def test_one_email_in_two_organisations_logs_in_to_the_one_named(cli, backend):
    email, password = f"two-{uuid.uuid4().hex[:10]}@example.com", "the same long password"
    for org in ("First Org", "Second Org"):  # a second sign-up with the same e-mail: a second account
        cli(
            "login",
            "--url",
            backend.url,
            "--signup",
            "--email",
            email,
            "--org",
            org,
            "--password-stdin",
            input=password + "\n",
        )
    result = cli("login", "--url", backend.url, "--email", email, "--password-stdin", input=password + "\n")
    assert f"as {email} (First Org)" in result.output
    assert "also reach: Second Org (log in with --org NAME" in result.output
    args = ("login", "--url", backend.url, "--email", email, "--org", "Second Org", "--password-stdin")
    result = cli(*args, "--json", input=password + "\n")
    assert "revoked the key of your previous login" in result.output  # the first organisation's, on stderr
    who = json.loads(result.output[result.output.index("{") :])
    assert who["org"] == "Second Org" and who["other_orgs"] == []  # naming one checks that one only
    created = json.loads(cli("keys", "list", "--json").output)  # the stored key is the second organisation's
    assert [k["name"] for k in created if k["status"] == "active"] == [who["key_name"]]
