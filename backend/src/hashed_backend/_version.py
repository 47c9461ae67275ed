"""Version of hashed-backend."""

__version__ = "0.1.0"
