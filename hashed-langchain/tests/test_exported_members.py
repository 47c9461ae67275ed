from __future__ import annotations

import hashed_langchain


def test_all_exports_exist_and_are_sorted():
    assert hashed_langchain.__all__ == sorted(hashed_langchain.__all__)
    for name in hashed_langchain.__all__:
        assert getattr(hashed_langchain, name) is not None, name


def test_unknown_attribute_raises_attribute_error():
    assert not hasattr(hashed_langchain, "HashedNothing")
