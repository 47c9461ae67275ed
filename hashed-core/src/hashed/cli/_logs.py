"""`hashed logs tail | search | export | refused`: the records the backend stored, and those it refused.

`tail -f` follows the backend's live feed (server-sent events, `GET /v1/logs/stream`) and resumes after a
lost connection from the last record it printed. `refused` (also `hashed logs --refused`) reads the local
ledger: the records this agent shipped that the backend refused, with its reason.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import time
from collections.abc import Iterable, Iterator
from typing import Any, NamedTuple

import httpx
import typer
from rich.markup import escape
from rich.table import Column, Table

from hashed.cli._admin_client import AdminClient, remote
from hashed.cli._fmt import local_time, since, state
from hashed.cli._logs_export import export
from hashed.cli._output import EXIT_CHECK_FAILED, console, err, fail, print_json
from hashed.cli._project import project
from hashed.errors import BackendUnavailable
from hashed.ledger._db import SQLiteError
from hashed.ledger._queries import Refusal, refusals

__all__ = ["app", "sse_events"]

app = typer.Typer(
    help="Search, follow and export the backend's records; list the ones it refused.",
    no_args_is_help=True,
    invoke_without_command=True,
)

_AGENT = typer.Option(None, "--agent", "-a", help="Agent id or name.")
_TOOL = typer.Option(None, "--tool", "-t", help="Tool name.")
_EFFECT = typer.Option(None, "--decision", "--effect", "-d", help="allow, deny or pending.")
_KIND = typer.Option(None, "--kind", "-k", help="decision, outcome, approval or key_rotation.")
_JSON = typer.Option(False, "--json", help="Print JSON (tail: one record per line).")


class Event(NamedTuple):
    """One server-sent event."""

    id: str | None
    event: str
    data: str


def sse_events(lines: Iterable[str]) -> Iterator[Event]:
    """Server-sent events from the lines of a `text/event-stream` (the WHATWG parsing rules, minus `retry`).

    Example:
        >>> list(sse_events(["retry: 2000", "", ": ping", "id: 7", "event: record", 'data: {"a": 1}', ""]))
        [Event(id='7', event='record', data='{"a": 1}')]
    """
    event_id: str | None = None
    name, data = "message", list[str]()
    for line in lines:
        if not line:
            if data:
                yield Event(event_id, name, "\n".join(data))
            name, data = "message", []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            data.append(value)
        elif field == "event":
            name = value
        elif field == "id":
            event_id = value


def _summary(record: dict[str, Any]) -> tuple[str, str, str]:
    """(result, rule or who, reason or detail) of a record, by kind."""
    kind = record.get("kind")
    if kind == "decision":
        result = ("shadow " if record.get("shadow") else "") + (record.get("effect") or "")
        return result, record.get("rule") or "", record.get("reason") or ""
    if kind == "outcome":
        took = f"{(record.get('duration_ns') or 0) / 1e6:.1f} ms"
        return record.get("status") or "", "", record.get("error") or took
    if kind == "approval":
        return record.get("verdict") or "", record.get("by") or "", record.get("comment") or ""
    if kind == "key_rotation":
        return "rotated", "", f"new key {str(record.get('new_key'))[:16]}…"
    return "", "", ""


def _line(entry: dict[str, Any]) -> str:
    result, who, detail = _summary(entry["record"])
    parts = [
        f"[dim]{local_time(entry.get('time'))}[/]",
        f"[bold]{escape(entry['agent'])}[/]",
        f"#{entry['seq']}",
        entry["kind"],
        escape(entry.get("tool") or ""),
        state(result.removeprefix("shadow ")) if not result.startswith("shadow") else f"[dim]{result}[/]",
        escape(who),
        escape(detail),
    ]
    return "  ".join(part for part in parts if part)


def _print(entry: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(entry, separators=(",", ":")))
    else:
        console.print(_line(entry), soft_wrap=True)


def _filters(agent: str | None, tool: str | None, effect: str | None, kind: str | None) -> dict[str, Any]:
    return {"agent": agent, "tool": tool, "effect": effect, "kind": kind}


@app.callback()
def logs(
    ctx: typer.Context,
    refused_: bool = typer.Option(False, "--refused", help="Same as: hashed logs refused."),
    as_json: bool = typer.Option(False, "--json", help="With --refused: print JSON."),
) -> None:
    """Records at the backend (tail, search, export), and records it refused (refused)."""
    if refused_ and ctx.invoked_subcommand is None:
        refused(as_json=as_json)
    elif ctx.invoked_subcommand is None:
        console.print(ctx.get_help())


@app.command()
def tail(
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep printing records as the backend stores them."),
    lines: int = typer.Option(10, "--lines", "-n", min=0, max=500, help="How many recent records to print first."),
    agent: str | None = _AGENT,
    tool: str | None = _TOOL,
    effect: str | None = _EFFECT,
    kind: str | None = _KIND,
    limit: int | None = typer.Option(None, "--limit", min=1, help="With -f: stop after this many new records."),
    as_json: bool = _JSON,
) -> None:
    """Print the newest records; with -f, follow the live feed (Ctrl-C stops)."""
    filters = _filters(agent, tool, effect, kind)
    with remote() as backend:
        page = backend.json("GET", "/v1/logs", params={**filters, "limit": max(lines, 1)})
        for entry in reversed(page["items"][:lines]):
            _print(entry, as_json)
        if not follow:
            if not page["items"] and not as_json:
                err.print("no records match")
            return
        after = str(page["items"][0]["id"]) if page["items"] else "0"
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C is how one stops following: not an error
            _follow(backend, filters, after, limit, as_json)


def _follow(backend: AdminClient, filters: dict[str, Any], after: str, limit: int | None, as_json: bool) -> None:
    shown, failures, connected = 0, 0, False
    while limit is None or shown < limit:
        params = {**filters, "limit": None if limit is None else limit - shown}
        try:
            with backend.stream(
                "/v1/logs/stream",
                params=params,
                headers={"Last-Event-ID": after, "Accept": "text/event-stream"},
                timeout=httpx.Timeout(10.0, read=60.0),  # the feed sends a keep-alive every 15 s
            ) as response:
                if not connected:
                    err.print(f"[dim]following new records at {backend.url} (Ctrl-C stops)[/]")
                    connected = True
                elif failures:
                    err.print(f"[dim]reconnected; resuming after record {after}[/]")
                failures = 0
                for event in sse_events(response.iter_lines()):
                    if event.event != "record":
                        continue
                    entry = json.loads(event.data)
                    after = str(entry["id"])
                    _print(entry, as_json)
                    shown += 1
        except BackendUnavailable as exc:
            if exc.status != 0:
                raise
            failures += 1
            wait = min(10.0, 0.5 * 2 ** (failures - 1))  # 0.5, 1, 2, 4, 8, 10, 10 … seconds
            err.print(f"[yellow]![/] lost the live feed ({exc}); reconnecting in {wait:g} s")
            time.sleep(wait)


@app.command()
def search(
    agent: str | None = _AGENT,
    tool: str | None = _TOOL,
    effect: str | None = _EFFECT,
    kind: str | None = _KIND,
    since_: str | None = typer.Option(None, "--since", help="From: ISO 8601, nanoseconds, or an age (15m, 2h, 7d)."),
    until: str | None = typer.Option(None, "--until", help="Before: ISO 8601, nanoseconds, or an age."),
    q: str | None = typer.Option(None, "--q", "-q", help="Text anywhere in the record."),
    limit: int = typer.Option(50, "--limit", min=1, max=500, help="Records per page."),
    cursor: str | None = typer.Option(None, "--cursor", help="The next_cursor of the previous page."),
    as_json: bool = typer.Option(False, "--json", help="Print the page as JSON ({items, next_cursor})."),
) -> None:
    """Find stored records, newest first, one page at a time."""
    params = {
        **_filters(agent, tool, effect, kind),
        "since": since(since_, "--since"),
        "until": since(until, "--until"),
        "q": q,
        "limit": limit,
        "cursor": cursor,
    }
    with remote() as backend:
        page = backend.json("GET", "/v1/logs", params=params)
    if as_json:
        print_json(page)
        return
    if not page["items"]:
        console.print("no records match")
        return
    console.print(_search_table(page["items"]))
    if page["next_cursor"]:
        err.print(f"[dim]→ more: add --cursor {page['next_cursor']}[/]")


def _search_table(items: list[dict[str, Any]]) -> Table:
    """Records as a table; the detail column (reason, error) only where the terminal is wide enough."""
    wide = console.width >= 120
    table = Table(
        Column("time", no_wrap=True),
        Column("agent", no_wrap=True, overflow="ellipsis", max_width=24),
        Column("seq", justify="right"),
        Column("kind", no_wrap=True),
        Column("tool", no_wrap=True, overflow="ellipsis", max_width=28),
        Column("result", no_wrap=True),
        Column("rule/by", overflow="ellipsis", max_width=24),
        *([Column("detail", ratio=1)] if wide else []),
    )
    for entry in items:
        result, who, detail = _summary(entry["record"])
        row = [
            local_time(entry.get("time")) if wide else local_time(entry.get("time"))[11:],
            escape(entry["agent"]),
            str(entry["seq"]),
            entry["kind"],
            escape(entry.get("tool") or ""),
            state(result),
            escape(who),
        ]
        table.add_row(*row, *([escape(detail)] if wide else []))
    return table


@app.command()
def refused(as_json: bool = typer.Option(False, "--json", help="Print JSON.")) -> None:
    """List the records of this agent's ledger that the backend refused, and why (local, no login needed)."""
    path = project().ledger_path
    rows: list[Refusal] = []
    if path.exists():
        try:
            rows = refusals(path)
        except SQLiteError as exc:
            fail(
                f"cannot read {path}: {exc}",
                code=EXIT_CHECK_FAILED,
                hint=f"is it a Hashed ledger? hashed verify {path}",
            )
    items = [
        {
            "seq": seq,
            "code": code,
            "reason": reason,
            "at_ns": at_ns,
            "at": datetime.datetime.fromtimestamp(at_ns / 1e9, datetime.timezone.utc).isoformat(),
        }
        for seq, code, reason, at_ns in rows
    ]
    if as_json:
        print_json(items)
        return
    if not items:
        console.print(f"the backend refused no record of {path}")
        return
    table = Table(Column("seq", justify="right"), "code", "reason", "refused at", title=f"refused records of {path}")
    for item, (seq, code, reason, _) in zip(items, rows, strict=True):
        table.add_row(str(seq), code, escape(reason), local_time(str(item["at"])))
    console.print(table)
    err.print("[dim]→ the backend keeps refused records in quarantine; a record after a refusal still ships[/]")


app.command()(export)  # after the others: `hashed logs --help` lists tail and search first
