"""Every policy example in docs/policy.md validates."""

from __future__ import annotations

import re

import pytest

from hashed.policy import parse_policy

from ..conftest import REPO

BLOCKS = re.findall(r"```yaml\n(.*?)```", (REPO / "docs" / "policy.md").read_text(encoding="utf-8"), re.S)


def test_the_reference_has_examples():
    assert BLOCKS


@pytest.mark.parametrize("block", BLOCKS)
def test_each_example_validates(block):
    policy = parse_policy(block)
    assert policy.rules
