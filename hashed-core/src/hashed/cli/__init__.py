"""The `hashed` command line (typer + rich). Exit codes: 0 ok, 1 a check failed, 2 usage, 3 setup error."""
