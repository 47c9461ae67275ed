from __future__ import annotations

import hashed_autogen


def test_all_exports_exist_and_are_sorted():
    assert hashed_autogen.__all__ == sorted(hashed_autogen.__all__)
    for name in hashed_autogen.__all__:
        assert getattr(hashed_autogen, name) is not None, name


def test_unknown_attribute_raises_attribute_error():
    assert not hasattr(hashed_autogen, "HashedNothing")
