"""Alembic environment: runs on the connection `hashed_backend.db.migrate` hands over (never on its own)."""

from __future__ import annotations

from alembic import context

from hashed_backend.db.models import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - alembic's own CLI is not the way in
    raise RuntimeError("run migrations with `hashed backend migrate` (hashed_backend.db.migrate)")

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
