"""Log ingest, query, quarantine."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from hashed_backend.schemas.common import Head, Strict

__all__ = ["BatchIn", "BatchOut", "LogEntry", "LogPage", "QuarantineEntry", "QuarantinePage", "RecordResult"]


class BatchIn(Strict):
    """Records in export form (body fields plus `hash` and `sig`), oldest first, all of the calling agent."""

    unchecked_text = frozenset({"records"})  # a record's text is the agent's signed word: ingest judges it

    records: list[dict[str, Any]] = Field(
        description="At most `max_batch_records` (default 1,000; 413 `batch_too_large` beyond)."
    )


class RecordResult(BaseModel):
    """What happened to one record of a batch, in the batch's order."""

    seq: int | None
    status: Literal["stored", "duplicate", "refused"]
    code: str | None = Field(default=None, description="Why it was refused (docs/api.md lists the codes).")
    reason: str | None = None


class BatchOut(BaseModel):
    """Per-record results and the agent's verified head after the batch."""

    results: list[RecordResult]
    head: Head


class LogEntry(BaseModel):
    """A stored record and where it sits."""

    id: int = Field(description="Ingest order; cursors and the live feed follow it.")
    agent_id: str
    agent: str
    seq: int
    kind: str
    ts: int | None = Field(description="The record's own timestamp, nanoseconds since the epoch.")
    time: str | None
    tool: str | None
    effect: str | None
    hash: str
    record: dict[str, Any] = Field(description="The record exactly as ingested (export form).")


class LogPage(BaseModel):
    """One page, newest first; pass `next_cursor` as `cursor` for the next one."""

    items: list[LogEntry]
    next_cursor: str | None


class QuarantineEntry(BaseModel):
    """A refused record, as received."""

    id: int
    agent_id: str | None
    public_key: str
    seq: int | None
    code: str
    reason: str
    received_at: str | None
    record: Any


class QuarantinePage(BaseModel):
    """One page of quarantined records, newest first."""

    items: list[QuarantineEntry]
    next_cursor: str | None
