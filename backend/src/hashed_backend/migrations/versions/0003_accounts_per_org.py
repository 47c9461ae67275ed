"""Accounts per organisation: an e-mail may have an account in several organisations; a session remembers them.

Sign-up and adding a person no longer tell whether an address has an account elsewhere (issue #15): the same
address is a separate account in each organisation, with its own password and role. A log-in that matches
several accounts (same e-mail, same password) remembers them on its session, so the person can switch between
those organisations without typing the password again.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def _defer_foreign_keys() -> None:
    """SQLite rebuilds `users` (copy, drop, rename), which its sessions' foreign key forbids: end the sessions.

    Everyone logs in again once after this upgrade on SQLite (PostgreSQL alters the table in place).
    """
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DELETE FROM sessions")


def upgrade() -> None:
    """Apply this revision."""
    _defer_foreign_keys()
    with op.batch_alter_table("users") as batch:  # SQLite rebuilds the table; PostgreSQL alters it
        batch.drop_constraint(op.f("uq_users_email"), type_="unique")
        batch.create_unique_constraint(op.f("uq_users_org_id_email"), ["org_id", "email"])
        batch.create_index(op.f("ix_users_email"), ["email"], unique=False)
    with op.batch_alter_table("sessions") as batch:
        batch.add_column(sa.Column("accounts", sa.Text(), nullable=True))


def downgrade() -> None:
    """Revert this revision (fails if an e-mail has accounts in several organisations by then)."""
    _defer_foreign_keys()
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("accounts")
    with op.batch_alter_table("users") as batch:
        batch.drop_index(op.f("ix_users_email"))
        batch.drop_constraint(op.f("uq_users_org_id_email"), type_="unique")
        batch.create_unique_constraint(op.f("uq_users_email"), ["email"])
