"""Version of hashed-core."""

__version__ = "0.1.0"
