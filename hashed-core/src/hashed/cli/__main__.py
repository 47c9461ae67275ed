"""`python -m hashed.cli`."""

from hashed.cli.app import main

main()
