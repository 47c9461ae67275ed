from __future__ import annotations

import hashed_crewai


def test_all_exports_exist_and_are_sorted():
    assert hashed_crewai.__all__ == sorted(hashed_crewai.__all__)
    for name in hashed_crewai.__all__:
        assert getattr(hashed_crewai, name) is not None, name


def test_unknown_attribute_raises_attribute_error():
    assert not hasattr(hashed_crewai, "HashedNothing")
