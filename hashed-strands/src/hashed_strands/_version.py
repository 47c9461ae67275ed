"""Version of hashed-strands (lockstep with the other Hashed packages)."""

__version__ = "0.1.0"
