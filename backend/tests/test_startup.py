"""Start-up errors print one clear line on stderr and exit non-zero (issue #15), not a traceback in a JSON line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from hashed_backend.testing import free_port


def serve(tmp_path, **env):
    environ = {k: v for k, v in os.environ.items() if not k.startswith("HASHED_")}
    environ.update({"HASHED_BACKEND_PORT": str(free_port()), "HASHED_BACKEND_DATA_DIR": str(tmp_path / "data"), **env})
    return subprocess.run(
        [sys.executable, "-m", "hashed_backend", "serve"], env=environ, capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("env", "words"),
    [
        ({"HASHED_DATABASE_URL": "mysql://root@127.0.0.1/hashed"}, "unsupported database 'mysql'"),
        ({"HASHED_DATABASE_URL": "not a url"}, "not a database URL"),
        ({"HASHED_DATABASE_URL": f"postgresql://postgres:s3cret@127.0.0.1:{free_port()}/x"}, "Connection refused"),
        ({"HASHED_BACKEND_PORT": "eighty"}, "setting port"),
    ],
)
def test_startup_error_is_one_line_and_a_nonzero_exit(tmp_path, env, words):
    result = serve(tmp_path, **env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("hashed backend: ") and words in lines[0]
    assert "Traceback" not in result.stderr + result.stdout and "s3cret" not in lines[0]


def test_startup_with_an_unreachable_configured_postgresql_names_it(tmp_path, pg_database):
    unreachable = pg_database.replace("127.0.0.1:5432", f"127.0.0.1:{free_port()}")
    result = serve(tmp_path, HASHED_DATABASE_URL=unreachable)
    assert result.returncode == 2 and result.stderr.count("\n") == 1
    assert "cannot use the database at postgresql://" in result.stderr
