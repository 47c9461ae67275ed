"""A transparency-log witness (C2SP tlog-witness) and the client that asks witnesses to cosign.

`hashed witness serve` runs `WitnessServer`; a log or an auditor calls `request_cosignatures` and trusts a
checkpoint only once enough witnesses cosigned it (`hashed.protocol.verify_cosigned` checks that offline).
"""

from __future__ import annotations

from hashed.witness._client import (
    CosignatureReport,
    NotEnoughCosignatures,
    Witness,
    WitnessOutcome,
    request_cosignatures,
)
from hashed.witness._server import WitnessServer
from hashed.witness._store import WitnessStore

__all__ = [
    "CosignatureReport",
    "NotEnoughCosignatures",
    "Witness",
    "WitnessOutcome",
    "WitnessServer",
    "WitnessStore",
    "request_cosignatures",
]
