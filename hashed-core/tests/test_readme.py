"""The README's tour must work as written."""

from __future__ import annotations

import re

from hashed import Refusal
from hashed.testing import make_hashed

from .conftest import REPO


def test_readme_policy_and_calls_behave_as_the_readme_says(tmp_path):
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    policy = re.search(r"```yaml\n# \.hashed/policy\.yaml\n(.*?)```", readme, re.S).group(1)
    with make_hashed(tmp_path / ".hashed", policy=policy) as hashed:

        @hashed.guard("transfer_money")
        def transfer_money(to: str, amount: float) -> str:
            return "sent"

        assert transfer_money("acct-9", 50) == "sent"
        refused = transfer_money("acct-9", 5000)
        assert isinstance(refused, Refusal)
        assert refused == (
            "transfer_money denied by policy (rule small-transfers): amount=5000 is over the limit of 1000"
        )
        assert '"transfer_money denied by policy (rule small-transfers): amount=5000 is' in readme
