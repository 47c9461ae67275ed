"""Alembic migrations shipped with the package; applied on start and by `hashed backend migrate`."""
