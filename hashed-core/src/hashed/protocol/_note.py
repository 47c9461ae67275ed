r"""C2SP signed notes (c2sp.org/signed-note), as golang.org/x/mod/sumdb/note reads and writes them.

    note      = text (ending in "\n") || "\n" || one or more signature lines
    line      = "— " || key name || " " || base64(key ID (4 bytes, big-endian) || signature) || "\n"
    key ID    = SHA-256(key name || "\n" || signature type || public key)[:4]
    vkey      = key name || "+" || key ID (8 hex digits) || "+" || base64(signature type || public key)

Two signature types: 0x01, Ed25519 over the note text (a log signing its checkpoint), and 0x04,
timestamped Ed25519 witness cosignatures (c2sp.org/tlog-cosignature): the signature is an 8-byte big-endian
UNIX time followed by the Ed25519 signature of "cosignature/v1\ntime <t>\n" || note text.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import hashlib
from collections.abc import Iterable

import nacl.exceptions
import nacl.signing

from hashed.errors import NoteError
from hashed.protocol._requests import SigningIdentity

__all__ = [
    "COSIGNATURE_V1",
    "ED25519",
    "Note",
    "NoteSignature",
    "NoteVerifier",
    "cosignature_message",
    "format_note",
    "key_id",
    "open_note",
    "parse_signature_lines",
    "parse_signer_key",
    "parse_verifier_key",
    "sign_note_text",
    "signer_key",
    "valid_key_name",
]

ED25519 = 0x01
COSIGNATURE_V1 = 0x04
MAX_SIGNATURES = 100  # the spec asks for at least 16; Go's reference stops at 100
_DASH = "— "
_TYPES = {ED25519: "Ed25519", COSIGNATURE_V1: "cosignature/v1"}


def valid_key_name(name: str) -> bool:
    """A key name: non-empty UTF-8 without spaces, control characters or "+"."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate
        return False
    return bool(name) and "+" not in name and not any(ch.isspace() or ch < " " for ch in name)


def key_id(name: str, signature_type: int, public_key: bytes) -> int:
    """The 32-bit key ID: the first four bytes of SHA-256(name || 0x0A || type || public key), big-endian."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([signature_type]) + public_key).digest()
    return int.from_bytes(digest[:4], "big")


def cosignature_message(text: str, timestamp: int) -> bytes:
    """What a witness signs for a checkpoint `text` at `timestamp` (c2sp.org/tlog-cosignature)."""
    return f"cosignature/v1\ntime {timestamp}\n".encode() + text.encode("utf-8")


@dataclasses.dataclass(frozen=True)
class NoteSignature:
    """One signature line: who (name, key ID) and the signature bytes after the key ID."""

    name: str
    key_id: int
    signature: bytes

    @property
    def line(self) -> str:
        """The line as it appears in a note, newline included."""
        blob = self.key_id.to_bytes(4, "big") + self.signature
        return f"{_DASH}{self.name} {base64.b64encode(blob).decode()}\n"

    @property
    def timestamp(self) -> int | None:
        """The time a cosignature carries (seconds since 1970), or None for another kind of signature."""
        return int.from_bytes(self.signature[:8], "big") if len(self.signature) == 72 else None


@dataclasses.dataclass(frozen=True)
class NoteVerifier:
    """A trusted public key under a name, for one signature type.

    Example:
        >>> verifier = parse_verifier_key("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
        >>> (verifier.name, hex(verifier.key_id), verifier.signature_type)
        ('PeterNeumann', '0xc74f20a3', 1)
    """

    name: str
    public_key: bytes
    signature_type: int = ED25519

    def __post_init__(self) -> None:
        if not valid_key_name(self.name):
            raise NoteError(f"{self.name!r} is not a key name (no spaces, no '+', not empty)")
        if len(self.public_key) != 32 or self.signature_type not in _TYPES:
            raise NoteError("a verifier needs a 32-byte Ed25519 public key and signature type 0x01 or 0x04")

    @property
    def key_id(self) -> int:
        """This key's 32-bit ID."""
        return key_id(self.name, self.signature_type, self.public_key)

    @property
    def vkey(self) -> str:
        """The verifier key string (`name+id+base64(type||key)`) to hand to whoever must trust this key."""
        encoded = base64.b64encode(bytes([self.signature_type]) + self.public_key).decode()
        return f"{self.name}+{self.key_id:08x}+{encoded}"

    def as_cosigner(self) -> NoteVerifier:
        """The same key checking witness cosignatures (type 0x04), as tlog-cosignature asks."""
        return dataclasses.replace(self, signature_type=COSIGNATURE_V1)

    def verify(self, text: str, signature: bytes) -> bool:
        """Whether `signature` (without its key ID) is this key's signature of the note `text`."""
        message = text.encode("utf-8")
        if self.signature_type == COSIGNATURE_V1:
            if len(signature) != 72:
                return False
            message = cosignature_message(text, int.from_bytes(signature[:8], "big"))
            signature = signature[8:]
        try:
            nacl.signing.VerifyKey(self.public_key).verify(message, signature)
        except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError, TypeError):
            return False
        return True


def _b64decode(value: str, what: str) -> bytes:
    """Strict base64: canonical only (zero padding bits), so a signed note has exactly one spelling."""
    try:
        decoded = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise NoteError(f"{what} is not base64") from None
    if base64.b64encode(decoded).decode() != value:
        raise NoteError(f"{what} is not in canonical base64")
    return decoded


def parse_verifier_key(vkey: str) -> NoteVerifier:
    """Read a verifier key `name+hexid+base64(type||key)`; the key ID must match the name and key.

    Raises:
        NoteError: the string is not a verifier key of a supported type (the message says which part).
    """
    name, _, rest = vkey.strip().partition("+")
    hex_id, _, encoded = rest.partition("+")
    if not valid_key_name(name):
        raise NoteError(f"verifier key {vkey!r}: {name!r} is not a key name")
    if len(hex_id) != 8 or any(ch not in "0123456789abcdefABCDEF" for ch in hex_id):
        raise NoteError(f"verifier key {vkey!r}: the key ID must be 8 hex digits")
    material = _b64decode(encoded, f"verifier key {vkey!r}")
    if len(material) != 33 or material[0] not in _TYPES:
        raise NoteError(f"verifier key {vkey!r}: not an Ed25519 key of type 0x01 or 0x04")
    verifier = NoteVerifier(name, material[1:], material[0])
    if verifier.key_id != int(hex_id, 16):
        raise NoteError(f"verifier key {vkey!r}: the key ID does not match the name and key")
    return verifier


def signer_key(name: str, seed: bytes) -> str:
    """A private signer key in sumdb/note's form, `PRIVATE+KEY+name+hexid+base64(0x01||seed)`: keep it secret."""
    public = nacl.signing.SigningKey(seed).verify_key.encode()
    verifier = NoteVerifier(name, public)
    return f"PRIVATE+KEY+{name}+{verifier.key_id:08x}+{base64.b64encode(bytes([ED25519]) + seed).decode()}"


def parse_signer_key(skey: str) -> tuple[str, bytes]:
    """The key name and the 32-byte Ed25519 seed of a signer key (see `signer_key`).

    Raises:
        NoteError: not a signer key, or its key ID does not match (the message never shows the key).
    """
    parts = skey.strip().split("+", 4)
    if len(parts) != 5 or parts[:2] != ["PRIVATE", "KEY"]:
        raise NoteError("not a signer key (expected PRIVATE+KEY+<name>+<id>+<key>)")
    name, hex_id, encoded = parts[2:]
    material = _b64decode(encoded, "the signer key")
    if len(material) != 33 or material[0] != ED25519 or not valid_key_name(name):
        raise NoteError("not an Ed25519 signer key")
    if signer_key(name, material[1:]).split("+")[3] != hex_id.lower():
        raise NoteError("the signer key's ID does not match its name and key")
    return name, material[1:]


def sign_note_text(
    text: str, name: str, identity: SigningIdentity, *, signature_type: int = ED25519, timestamp: int = 0
) -> NoteSignature:
    """`identity`'s signature of a note text: Ed25519 (0x01), or a witness cosignature (0x04) at `timestamp`."""
    _check_text(text)
    public_key = bytes.fromhex(identity.public_key)
    verifier = NoteVerifier(name, public_key, signature_type)  # validates the name and the type
    if signature_type == COSIGNATURE_V1:
        if not 0 <= timestamp < 2**63:
            raise NoteError(f"cosignature time {timestamp} is out of range")
        signature = timestamp.to_bytes(8, "big") + identity.sign(cosignature_message(text, timestamp))
    else:
        signature = identity.sign(text.encode("utf-8"))
    return NoteSignature(name, verifier.key_id, signature)


def format_note(text: str, signatures: Iterable[NoteSignature]) -> str:
    """A signed note: the text, a blank line, the signature lines."""
    _check_text(text)
    lines = "".join(signature.line for signature in signatures)
    if not lines:
        raise NoteError("a signed note needs at least one signature")
    return f"{text}\n{lines}"


def _check_text(text: str) -> None:
    if not text.endswith("\n"):
        raise NoteError("a note text ends in a newline")
    if any(ch < " " and ch != "\n" for ch in text):
        raise NoteError("a note text has no control characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise NoteError("a note text is UTF-8 (it has a lone surrogate)") from None


def parse_signature_lines(block: str) -> list[NoteSignature]:
    """Signature lines (`— name base64…`, each ending in a newline), in order, as a witness answers them."""
    if not block.endswith("\n"):
        raise NoteError("signature lines end in a newline")
    signatures = []
    for line in block[:-1].split("\n"):
        if not line.startswith(_DASH):
            raise NoteError(f"not a signature line: {line[:40]!r}")
        name, _, encoded = line[len(_DASH) :].partition(" ")
        blob = _b64decode(encoded, f"the signature of {name!r}")
        if not valid_key_name(name) or len(blob) < 5:
            raise NoteError(f"malformed signature line for {name[:40]!r}")
        signatures.append(NoteSignature(name, int.from_bytes(blob[:4], "big"), blob[4:]))
    if len(signatures) > MAX_SIGNATURES:
        raise NoteError(f"more than {MAX_SIGNATURES} signatures")
    return signatures


@dataclasses.dataclass(frozen=True)
class Note:
    """An opened note: its text, the signatures that verified, and those from keys nobody asked about."""

    text: str
    signatures: tuple[NoteSignature, ...]
    unverified: tuple[NoteSignature, ...]


def open_note(note: str | bytes, verifiers: Iterable[NoteVerifier]) -> Note:
    """Check a signed note against trusted keys, as sumdb/note's Open does.

    Signatures from unknown keys are kept aside (`Note.unverified`); a known key's signature that fails
    makes the whole note fail; at least one known key must have signed.

    Raises:
        NoteError: the note is malformed, a known key's signature fails, or no known key signed it.
    """
    if isinstance(note, bytes):
        try:
            note = note.decode("utf-8")
        except UnicodeDecodeError:
            raise NoteError("a signed note is UTF-8") from None
    split = note.rfind("\n\n")
    if split < 0 or not note.endswith("\n"):
        raise NoteError("malformed note: no blank line before the signatures")
    text = note[: split + 1]
    _check_text(text)
    known: dict[tuple[str, int], list[NoteVerifier]] = {}
    for verifier in verifiers:
        known.setdefault((verifier.name, verifier.key_id), []).append(verifier)
    verified: list[NoteSignature] = []
    unverified: list[NoteSignature] = []
    for signature in parse_signature_lines(note[split + 2 :]):
        candidates = known.get((signature.name, signature.key_id))
        if not candidates:
            if signature not in unverified:
                unverified.append(signature)
            continue
        if any(seen.name == signature.name and seen.key_id == signature.key_id for seen in verified):
            continue
        if len({candidate.public_key for candidate in candidates}) > 1:
            raise NoteError(f"ambiguous key {signature.name}+{signature.key_id:08x}")
        if not candidates[0].verify(text, signature.signature):
            raise NoteError(f"invalid signature for key {signature.name}+{signature.key_id:08x}")
        verified.append(signature)
    if not verified:
        raise NoteError("no signature from a trusted key (pass the signer's verifier key)")
    return Note(text, tuple(verified), tuple(unverified))
