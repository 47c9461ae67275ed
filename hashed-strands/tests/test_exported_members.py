from __future__ import annotations

import hashed_strands


def test_all_exports_exist_and_are_sorted():
    assert hashed_strands.__all__ == sorted(hashed_strands.__all__)
    for name in hashed_strands.__all__:
        assert getattr(hashed_strands, name) is not None, name


def test_unknown_attribute_raises_attribute_error():
    assert not hasattr(hashed_strands, "HashedNothing")
