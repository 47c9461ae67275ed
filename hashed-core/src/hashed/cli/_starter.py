"""What `hashed init` writes: a commented starter policy, the project's config, and what git must ignore."""

from __future__ import annotations

from hashed._docs import docs_url

__all__ = ["CONFIG", "GITIGNORE", "GITIGNORE_LINES", "STARTER_POLICY"]

STARTER_POLICY = (
    f"# Hashed policy: which tool calls this agent may make. Reference: {docs_url('policy')}\n"
    + """\
# Check it with `hashed policy validate`, try calls with `hashed policy test --call 'send_email {"to": "a@b.c"}'`.
version: 1
default: deny          # a call no rule allows is refused
mode: enforce          # `shadow` records decisions but never blocks: use it to roll out a new policy

redact: [password, api_key, token]   # argument names masked before they are stored

rules:
  # Reading is always fine.
  - id: read-only
    tools: ["get_*", "search_*", "read_*"]
    effect: allow

  # Money moves in small amounts; big ones need a person; at most 10 transfers an hour, 5,000 a day.
  # min: 0 keeps a negative amount (a refund in disguise) out; a sum window counts one as nothing anyway.
  - id: small-transfers
    tools: [transfer_money]
    effect: allow
    limits:
      amount: {min: 0, max: 1000, window: {per: 1d, max_sum: 5000}}
    rate: {per: 1h, max_calls: 10}
    approval: {when: {amount: {gt: 500}}, timeout: 15m, on_timeout: deny}

  # Mail goes to our own domain only, 20 an hour.
  - id: internal-mail
    tools: [send_email]
    effect: allow
    when:
      to: {domain_in: [example.com]}
    rate: {per: 1h, max_calls: 20}

  # Deny always wins over allow.
  - id: never-delete
    tools: ["delete_*", "drop_*"]
    effect: deny
    reason: Agents never delete data.
"""
)

CONFIG = (
    f"# Hashed settings for this project. Every setting: {docs_url('configuration')}\n"
    + """\
# Every key can also be set as HASHED_<KEY> in the environment.
agent = {agent}
durability = "durable"     # nothing lost on a crash; "immediate": in SQLite at once; "background": may lose the last ms
strict = false             # true: raise PolicyDenied instead of returning a refusal
"""
)

GITIGNORE_LINES = [".hashed/agent.key*", ".hashed/key.passphrase", ".hashed/api.key", ".hashed/ledger.db*"]

GITIGNORE = (
    "# written by hashed init: secrets and the ledger stay out of git\n"
    "agent.key*\nkey.passphrase\napi.key\nledger.db*\npolicy.remote.*\n"
)
