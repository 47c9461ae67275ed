"""The public API of hashed_backend: everything in __all__ exists, sorted."""

from __future__ import annotations

import hashed_backend


def test_all_is_sorted_and_exported():
    assert hashed_backend.__all__ == sorted(hashed_backend.__all__)
    for name in hashed_backend.__all__:
        assert getattr(hashed_backend, name) is not None
