"""People: sign-up, log-in, users of an organisation."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from hashed_backend.schemas.common import Strict

__all__ = ["LoginIn", "MeOut", "OrgOut", "SignupIn", "UserIn", "UserOut"]

Email = Annotated[str, StringConstraints(pattern=r"^[^@\s]{1,64}@[^@\s]{1,255}$", max_length=320)]
Password = Annotated[str, Field(min_length=10, max_length=1024)]


class SignupIn(Strict):
    """A new organisation and its first person (its owner)."""

    email: Email
    password: Password
    org_name: Annotated[str, Field(min_length=1, max_length=200)]


class LoginIn(Strict):
    """E-mail and password."""

    email: Email
    password: Annotated[str, Field(min_length=1, max_length=1024)]


class UserIn(Strict):
    """Another person in the caller's organisation."""

    email: Email
    password: Password
    role: Literal["admin", "owner"] = "admin"


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
    """The logged-in person and their organisation."""

    user: UserOut
    org: OrgOut
