"""Reading a policy document: YAML (or JSON) in, a validated `Policy` out, or an error naming file, line and field."""

from __future__ import annotations

import difflib
import hashlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from hashed.errors import PolicyFileError
from hashed.policy._schema import ApprovalSpec, Condition, Limit, Policy, Rate, Rule, Window
from hashed.policy._yaml import PolicyLoader
from hashed.protocol._canonical import canonical_bytes

__all__ = ["PolicyIssue", "load_policy", "parse_policy", "policy_hash"]


class PolicyIssue(BaseModel):
    """One problem in a policy document (the CLI prints all of them)."""

    line: int | None
    field: str
    message: str


def policy_hash(policy: Policy) -> str:
    """SHA-256 (hex) of the policy's canonical JSON: comments and layout do not change it."""
    return hashlib.sha256(canonical_bytes(policy.model_dump(mode="json", by_alias=True))).hexdigest()


def load_policy(path: Path) -> Policy:
    """Read and validate the policy file at `path`.

    Raises:
        PolicyFileError: the file is missing, is not YAML, or does not validate.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyFileError("no such file (run: hashed init, or set HASHED_POLICY)", path=str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyFileError(f"cannot read it: {exc}", path=str(path)) from None
    return parse_policy(text, path=str(path))


def parse_policy(text: str, *, path: str = "<text>") -> Policy:
    """Validate a policy document given as YAML or JSON text.

    Example:
        >>> parse_policy("rules: [{id: r1, tools: [send_email], effect: allow}]").rules[0].id
        'r1'
        >>> parse_policy("rules: [{id: r1, tool: send_email, effect: allow}]")
        Traceback (most recent call last):
        hashed.errors.PolicyFileError: <text>:1: rules[0].tool: unknown field (did you mean 'tools'?)
    """
    issues = policy_issues(text, path=path)
    if isinstance(issues, Policy):
        return issues
    first = issues[0]
    more = f" (and {len(issues) - 1} more; run hashed policy validate to see all)" if len(issues) > 1 else ""
    raise PolicyFileError(
        first.message + more,
        path=path,
        line=first.line,
        field=first.field,
        issues=[(issue.line, issue.field, issue.message) for issue in issues],
    )


def policy_issues(text: str, *, path: str = "<text>") -> Policy | list[PolicyIssue]:
    """The validated policy, or every problem found in it (with lines)."""
    try:
        root = yaml.compose(text, Loader=PolicyLoader)
        data = yaml.load(text, Loader=PolicyLoader)  # noqa: S506 - a safe loader: YAML 1.2 scalars, no objects
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        problem = getattr(exc, "problem", None) or str(exc)
        return [PolicyIssue(line=line, field="", message=f"not valid YAML: {problem}")]
    if data is None:
        data = {}
    if not isinstance(data, dict):
        return [PolicyIssue(line=1, field="", message="a policy is a mapping with version, default, mode and rules")]
    issues = _duplicates(root)
    if issues:
        return issues
    try:
        return Policy.model_validate(data)
    except ValidationError as exc:
        issues = []
        for error in exc.errors():
            issue = _issue(root, error)
            if issue not in issues:
                issues.append(issue)
        # A misspelt key also makes the right one "missing": report only the misspelling.
        suggested = {
            issue.field.rsplit(".", 1)[0] + "." + issue.message.split("'")[1]
            for issue in issues
            if issue.message.startswith("unknown field (did you mean")
        }
        return [i for i in issues if not (i.message == "required field is missing" and i.field in suggested)]


def _issue(root: yaml.Node | None, error: Any) -> PolicyIssue:
    loc = [part for part in error["loc"] if isinstance(part, (int, str))]
    node, path = _locate(root, loc)
    field = _dotted(path)
    message = error["msg"]
    if error["type"] == "extra_forbidden":
        message = "unknown field" + _suggest(loc, error)
    elif error["type"] == "missing":
        message = "required field is missing"
    elif message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    if error["type"] == "string_type" and isinstance(error.get("input"), bool):
        message += " (YAML reads true and false as booleans: put the value in quotes)"
    if error["type"] == "missing" and path != loc:
        field = _dotted(loc)
    line = node.start_mark.line + 1 if node is not None else None
    return PolicyIssue(line=line, field=field, message=message)


def _suggest(loc: Sequence[Any], error: Any) -> str:
    name = str(loc[-1])
    known: set[str] = set()
    for model in (Policy, Rule, Limit, Window, Rate, ApprovalSpec, Condition):
        for field_name, info in model.model_fields.items():
            known.add(info.alias or field_name)
    close = difflib.get_close_matches(name, sorted(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _locate(node: yaml.Node | None, loc: Sequence[Any]) -> tuple[yaml.Node | None, list[Any]]:
    """The deepest YAML node along `loc`, and the part of `loc` that reached it."""
    path: list[Any] = []
    for part in loc:
        child = None
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if key.value == str(part):
                    child = key if part == loc[-1] else value
                    break
        elif isinstance(node, yaml.SequenceNode) and isinstance(part, int) and part < len(node.value):
            child = node.value[part]
        if child is None:
            break
        node = child
        path.append(part)
    return node, path


def _dotted(loc: Sequence[Any]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _duplicates(node: yaml.Node | None, path: tuple[Any, ...] = ()) -> list[PolicyIssue]:
    """Duplicate keys (YAML silently keeps the last one) and duplicate rule ids."""
    issues: list[PolicyIssue] = []
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key, value in node.value:
            if key.value in seen:
                issues.append(
                    PolicyIssue(
                        line=key.start_mark.line + 1,
                        field=_dotted([*path, key.value]),
                        message="this key appears twice in the same mapping",
                    )
                )
            seen.add(key.value)
            issues.extend(_duplicates(value, (*path, key.value)))
    elif isinstance(node, yaml.SequenceNode):
        ids: set[str] = set()
        for index, item in enumerate(node.value):
            issues.extend(_duplicates(item, (*path, index)))
            if path == ("rules",) and isinstance(item, yaml.MappingNode):
                for key, value in item.value:
                    if key.value == "id" and isinstance(value, yaml.ScalarNode):
                        if value.value in ids:
                            issues.append(
                                PolicyIssue(
                                    line=value.start_mark.line + 1,
                                    field=f"rules[{index}].id",
                                    message=f"rule id {value.value!r} is used twice; every rule needs its own id",
                                )
                            )
                        ids.add(value.value)
    return issues
