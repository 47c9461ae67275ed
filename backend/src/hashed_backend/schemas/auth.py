"""People: sign-up, log-in, users of an organisation."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from hashed_backend.schemas.common import Strict

__all__ = [
    "LoginIn",
    "MeOut",
    "OrgOut",
    "PasswordIn",
    "Role",
    "RoleIn",
    "SessionOut",
    "SignupIn",
    "SwitchIn",
    "UserIn",
    "UserOut",
]

# No "@", white space or control characters around one "@". Spelled out so that the pattern means the same in
# Python (the server) and ECMAScript (the OpenAPI document's readers): their `\s` differ on \x1c-\x1f, \x85, \ufeff.
_EMAIL_PART = r"[^@\s\x00-\x1f\x7f\x85\ufeff]"
Email = Annotated[str, StringConstraints(pattern=rf"^{_EMAIL_PART}{{1,64}}@{_EMAIL_PART}{{1,255}}$", max_length=320)]
Password = Annotated[str, Field(min_length=10, max_length=1024)]
Role = Literal["owner", "admin", "viewer"]


class SignupIn(Strict):
    """A new organisation and its first person (its owner)."""

    email: Email
    password: Password
    org_name: Annotated[str, Field(min_length=1, max_length=200)]


class LoginIn(Strict):
    """E-mail and password; `org` (an organisation's id or name) picks one when the e-mail has several accounts."""

    email: Email
    password: Annotated[str, Field(min_length=1, max_length=1024)]
    org: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class SwitchIn(Strict):
    """The organisation to switch the session to (one its log-in matched)."""

    org_id: Annotated[str, Field(min_length=1, max_length=40)]


class UserIn(Strict):
    """Another person in the caller's organisation."""

    email: Email
    password: Password
    role: Role = "admin"


class UserOut(BaseModel):
    """A person (never their password hash)."""

    id: str
    email: str
    role: str
    created_at: str | None


class OrgOut(BaseModel):
    """An organisation."""

    id: str
    name: str


class MeOut(BaseModel):
    """The logged-in person, their organisation, and every organisation this session may switch to."""

    user: UserOut
    org: OrgOut
    orgs: list[OrgOut] = []


class RoleIn(Strict):
    """A person's new role.

    `owner`: everything, people included; `admin`: everything but owners; `viewer`: reads only (no policy
    writes, approvals, keys or people).
    """

    role: Role


class PasswordIn(Strict):
    """The caller's current password and the new one."""

    current_password: Annotated[str, Field(min_length=1, max_length=1024)]
    new_password: Password


class SessionOut(BaseModel):
    """One of the caller's sessions (never its token)."""

    id: str
    created_at: str | None
    expires_at: str | None
    current: bool = Field(description="The session this request came with.")
