"""Operating a backend: verify the audit store, back it up and restore it, archive old records (retention).

Each is a `hashed backend` command (`ops.commands`) and works on SQLite and PostgreSQL alike; none needs the server
running, and all are safe to run beside running replicas except `restore`, which replaces the database.
"""
