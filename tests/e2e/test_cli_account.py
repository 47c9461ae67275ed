"""`hashed account …` against a real backend: a person changes their password and ends their own sessions."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import httpx
import pytest

pytestmark = pytest.mark.e2e
NEW_PASSWORD = "a new password, long enough"


@contextlib.contextmanager
def browser(org, password: str | None = None) -> Iterator[httpx.Client]:
    """A log-in session elsewhere (the dashboard in a browser, another machine), as the owner."""
    with httpx.Client(base_url=org.url, timeout=30) as session:
        answer = session.post("/v1/auth/login", json={"email": org.email, "password": password or org.password})
        assert answer.status_code == 200, answer.text
        yield session


def logs_in(org, password: str) -> bool:
    with httpx.Client(base_url=org.url, timeout=30) as session:
        return session.post("/v1/auth/login", json={"email": org.email, "password": password}).status_code == 200


def test_password_change_takes_effect_and_ends_the_other_sessions(cli, org):
    cli("login", "--url", org.url, "--email", org.email, "--password-stdin", input=org.password + "\n")
    with browser(org) as elsewhere:
        assert elsewhere.get("/v1/auth/me").status_code == 200
        result = cli("account", "password", "--password-stdin", input=f"{org.password}\n{NEW_PASSWORD}\n")
        assert f"changed the password of {org.email}" in result.output
        assert elsewhere.get("/v1/auth/me").status_code == 401  # that browser is logged out
    assert not logs_in(org, org.password)
    assert logs_in(org, NEW_PASSWORD)
    cli("agent", "list")  # the admin key `hashed login` stored is not a session: it still works, as it says


def test_password_change_is_refused_with_the_wrong_current_password_or_a_short_new_one(cli, org):
    result = cli(
        "account", "password", "--url", org.url, "--email", org.email, "--password-stdin",
        input=f"not my password\n{NEW_PASSWORD}\n", code=1,
    )  # fmt: skip
    assert "login_failed" in result.output and "check the e-mail and password" in result.output
    result = cli(
        "account", "password", "--url", org.url, "--email", org.email, "--password-stdin",
        input=f"{org.password}\nshort\n", code=2,
    )  # fmt: skip
    assert "at least 10 characters" in result.output
    assert logs_in(org, org.password)  # neither changed anything


def test_password_change_prompts_for_the_new_password_twice(cli, org):
    answers = f"{org.password}\n{NEW_PASSWORD}\nsomething else entirely\n{NEW_PASSWORD}\n{NEW_PASSWORD}\n"
    result = cli("account", "password", "--url", org.url, "--email", org.email, input=answers)
    assert "the two differ" in result.output and "changed the password" in result.output
    assert logs_in(org, NEW_PASSWORD)


def own_session(client: httpx.Client) -> str:
    return next(s["id"] for s in client.get("/v1/auth/sessions").json() if s["current"])


def test_sessions_lists_the_others_and_end_session_logs_them_out(cli, org):
    cli("login", "--url", org.url, "--key", org.admin_key)
    login = ("--url", org.url, "--email", org.email, "--password-stdin")
    with browser(org) as laptop, browser(org) as phone:
        listed = json.loads(cli("account", "sessions", *login, "--json", input=org.password + "\n").output)
        ids = [s["id"] for s in listed]
        assert ids[:2] == [own_session(phone), own_session(laptop)]  # newest first; the sign-up's is older
        assert not any(s["current"] for s in listed)  # the command's own session is not among them
        result = cli("account", "end-session", own_session(phone), *login, input=org.password + "\n")
        assert "ended 1 session" in result.output
        assert phone.get("/v1/auth/me").status_code == 401
        assert laptop.get("/v1/auth/me").status_code == 200
        remaining = json.loads(cli("account", "sessions", *login, "--json", input=org.password + "\n").output)
        assert [s["id"] for s in remaining] == ids[1:]  # and the commands' own sessions ended with them

        result = cli("account", "end-session", "--all", *login, input=org.password + "\n")
        assert f"ended {len(remaining)} sessions" in result.output
        assert laptop.get("/v1/auth/me").status_code == 401
    assert "no other live sessions" in cli("account", "sessions", *login, input=org.password + "\n").output


def test_end_session_says_what_to_do_with_an_unknown_id_or_none(cli, org):
    login = ("--url", org.url, "--email", org.email, "--password-stdin")
    result = cli("account", "end-session", "ses_nosuchsession", *login, input=org.password + "\n", code=1)
    assert "session_not_found" in result.output and "hashed account sessions" in result.output
    result = cli("account", "end-session", *login, input=org.password + "\n", code=2)
    assert "or pass --all" in result.output


def test_account_commands_need_an_email_when_the_login_has_none(logged_in, org):
    result = logged_in("account", "sessions", "--password-stdin", input=org.password + "\n", code=2)
    assert "no e-mail given" in result.output and "--email" in result.output
