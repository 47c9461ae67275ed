"""Version of hashed-crewai (lockstep with the other Hashed packages)."""

__version__ = "0.1.0"
