"""Policy YAML is read with the YAML 1.2 core schema, not PyYAML's YAML 1.1.

Under YAML 1.1, `NO` (Norway), `yes`, `on` and `off` are booleans, `010` is eight and `12:30` is 750: a deny
rule `country: {in: [NO, KP]}` would hold `[False, "KP"]` and let Norway through. YAML 1.2 (2009) keeps only
`true`/`false` as booleans and reads numbers as written; PyYAML's parser is kept (it gives the line numbers
error messages need) and only its scalar resolution changes.
"""

from __future__ import annotations

import re

import yaml

__all__ = ["PolicyLoader"]

_FLOAT = r"^(?:[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)(?:[eE][-+]?[0-9]+)?|[-+]?\.(?:inf|Inf|INF)|\.(?:nan|NaN|NAN))$"
# (tag, pattern, the characters a scalar of that tag can start with; "" is the empty scalar)
_RESOLVERS = [
    ("tag:yaml.org,2002:bool", r"^(?:true|True|TRUE|false|False|FALSE)$", list("tTfF")),
    ("tag:yaml.org,2002:int", r"^(?:[-+]?[0-9]+|0o[0-7]+|0x[0-9a-fA-F]+)$", list("-+0123456789")),
    ("tag:yaml.org,2002:float", _FLOAT, list("-+.0123456789")),
    ("tag:yaml.org,2002:null", r"^(?:~|null|Null|NULL|)$", [*"~nN", ""]),
    ("tag:yaml.org,2002:merge", r"^(?:<<)$", ["<"]),
]


class PolicyLoader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 core-schema scalars (see the module docstring)."""

    yaml_implicit_resolvers: dict[str | None, list[tuple[str, re.Pattern[str]]]] = {}  # not SafeLoader's 1.1 table

    def construct_yaml_int(self, node: yaml.ScalarNode) -> int:
        """Decimal unless written `0o…` or `0x…` (YAML 1.1 read `010` as octal)."""
        value = str(self.construct_scalar(node))
        if value.startswith(("0o", "0x")):
            return int(value, 0)
        return int(value, 10)


for _tag, _pattern, _first in _RESOLVERS:
    PolicyLoader.add_implicit_resolver(_tag, re.compile(_pattern), _first)
PolicyLoader.add_constructor("tag:yaml.org,2002:int", PolicyLoader.construct_yaml_int)
