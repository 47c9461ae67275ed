"""API keys: created and shown once, listed without secrets, rotated with an overlap, revoked."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from sqlalchemy import insert, select, update

from hashed_backend.credentials import iso, new_id, new_secret, now_ns, secret_hash
from hashed_backend.db.models import ApiKey
from hashed_backend.deps import Admin, State, Writer
from hashed_backend.errors import ApiError
from hashed_backend.schemas.keys import KeyCreated, KeyIn, KeyOut, RotateIn, RotateOut

router = APIRouter(prefix="/v1/keys", tags=["keys"])
_DAY_NS = 86400 * 1_000_000_000


def _view(row: Any, now: int) -> dict[str, Any]:
    status = "active"
    if row.revoked_ns is not None and row.revoked_ns <= now:
        status = "revoked"
    elif row.expires_ns <= now:
        status = "expired"
    return {
        "id": row.id,
        "kind": row.kind,
        "name": row.name,
        "prefix": row.prefix,
        "status": status,
        "created_at": iso(row.created_ns),
        "created_by": row.created_by,
        "expires_at": iso(row.expires_ns),
        "revoked_at": iso(row.revoked_ns),
        "rotated_from": row.rotated_from,
        "rate_per_s": row.rate_per_s,
    }


async def _create(
    state: State,
    caller: Admin,
    *,
    kind: str,
    name: str,
    days: float | None,
    rate: float | None,
    rotated_from: str | None,
) -> KeyCreated:
    secret = new_secret(f"hashed_{kind}")
    now = now_ns()
    key_id = new_id("key")
    values = {
        "id": key_id,
        "org_id": caller.org_id,
        "kind": kind,
        "name": name,
        "prefix": secret[: len(f"hashed_{kind}_") + 6],
        "key_hash": secret_hash(secret),
        "created_ns": now,
        "created_by": caller.label,
        "expires_ns": now + int((days or state.settings.key_default_days) * _DAY_NS),
        "revoked_ns": None,
        "rotated_from": rotated_from,
        "rate_per_s": rate,
    }
    async with state.db.write() as conn:
        await conn.execute(insert(ApiKey).values(**values))
    return KeyCreated(**_view(await _get(state, caller, key_id), now), key=secret)


async def _get(state: State, caller: Admin, key_id: str) -> Any:
    async with state.db.read() as conn:
        row = (await conn.execute(select(ApiKey).where(ApiKey.id == key_id, ApiKey.org_id == caller.org_id))).first()
    if row is None:
        raise ApiError(404, "key_not_found", f"no API key {key_id} in this organisation")
    return row


@router.post("", status_code=201, response_model=KeyCreated)
async def create_key(body: KeyIn, caller: Writer, state: State) -> KeyCreated:
    """A new admin or agent key; `key` is in this answer only."""
    return await _create(
        state,
        caller,
        kind=body.kind,
        name=body.name,
        days=body.expires_in_days,
        rate=body.rate_per_s,
        rotated_from=None,
    )


@router.get("", response_model=list[KeyOut])
async def list_keys(caller: Admin, state: State) -> list[KeyOut]:
    """Every key of the organisation (never the secrets), newest first."""
    now = now_ns()
    async with state.db.read() as conn:
        rows = await conn.execute(
            select(ApiKey).where(ApiKey.org_id == caller.org_id).order_by(ApiKey.created_ns.desc(), ApiKey.id)
        )
        return [KeyOut(**_view(row, now)) for row in rows]


@router.get("/{key_id}", response_model=KeyOut)
async def get_key(key_id: str, caller: Admin, state: State) -> KeyOut:
    """One key."""
    return KeyOut(**_view(await _get(state, caller, key_id), now_ns()))


@router.post("/{key_id}/rotate", response_model=RotateOut)
async def rotate_key(key_id: str, body: RotateIn, caller: Writer, state: State) -> RotateOut:
    """A new key of the same kind and name; the old one expires after `overlap_seconds` (sooner if it already would)."""
    old = await _get(state, caller, key_id)
    now = now_ns()
    if old.revoked_ns is not None or old.expires_ns <= now:
        raise ApiError(409, "key_inactive", "a revoked or expired key cannot be rotated: create a new one")
    new = await _create(
        state, caller, kind=old.kind, name=old.name, days=body.expires_in_days, rate=old.rate_per_s, rotated_from=old.id
    )
    until = min(old.expires_ns, now + int(body.overlap_seconds * 1_000_000_000))
    async with state.db.write() as conn:
        await conn.execute(update(ApiKey).where(ApiKey.id == old.id).values(expires_ns=until))
    return RotateOut(old=KeyOut(**_view(await _get(state, caller, key_id), now)), new=new)


@router.post("/{key_id}/revoke", response_model=KeyOut)
async def revoke_key(key_id: str, caller: Writer, state: State) -> KeyOut:
    """Revoke a key at once: every later request with it gets 401 `key_revoked`."""
    await _get(state, caller, key_id)
    now = now_ns()
    async with state.db.write() as conn:
        await conn.execute(
            update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_ns.is_(None)).values(revoked_ns=now)
        )
    return KeyOut(**_view(await _get(state, caller, key_id), now_ns()))
