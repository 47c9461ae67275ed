"""Signed notes against golang.org/x/mod/sumdb/note's own test vectors, and cosignatures against the C2SP text."""

from __future__ import annotations

import base64

import nacl.signing
import pytest

from hashed.errors import NoteError
from hashed.identity import Identity
from hashed.protocol import (
    COSIGNATURE_V1,
    NoteSignature,
    NoteVerifier,
    format_note,
    key_id,
    open_note,
    parse_signature_lines,
    parse_verifier_key,
    sign_note_text,
)

# From golang.org/x/mod/sumdb/note's note_test.go (BSD licence): two keys, one text, two signatures.
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
TEXT = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n"


def _peter() -> Identity:
    seed = base64.b64decode(PETER_SKEY.split("+", 4)[4])[1:]
    return Identity.from_seed(seed)


def test_signing_reproduces_the_reference_note_byte_for_byte():
    signature = sign_note_text(TEXT, "PeterNeumann", _peter())
    assert format_note(TEXT, [signature]) == TEXT + "\n" + PETER_SIG
    verifier = parse_verifier_key(PETER_VKEY)
    assert verifier.vkey == PETER_VKEY
    assert NoteVerifier("PeterNeumann", bytes.fromhex(_peter().public_key)).vkey == PETER_VKEY


def test_open_keeps_unknown_signatures_aside_and_needs_one_known():
    peter, enoch = parse_verifier_key(PETER_VKEY), parse_verifier_key(ENOCH_VKEY)
    note = open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [peter])
    assert note.text == TEXT
    assert [s.name for s in note.signatures] == ["PeterNeumann"]
    assert [s.name for s in note.unverified] == ["EnochRoot"]
    both = open_note((TEXT + "\n" + PETER_SIG + ENOCH_SIG).encode(), [peter, enoch])
    assert [s.name for s in both.signatures] == ["PeterNeumann", "EnochRoot"]
    with pytest.raises(NoteError, match="no signature from a trusted key"):
        open_note(TEXT + "\n" + PETER_SIG + ENOCH_SIG, [])
    repeated = open_note(TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG, [peter])
    assert len(repeated.signatures) == 1 and len(repeated.unverified) == 1


def test_a_bad_signature_from_a_known_key_rejects_the_note():
    tampered = TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(NoteError, match="invalid signature for key PeterNeumann"):
        open_note(tampered, [parse_verifier_key(PETER_VKEY)])
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(TEXT.replace("cryptography", "cryptographY") + "\n" + PETER_SIG, [parse_verifier_key(PETER_VKEY)])


@pytest.mark.parametrize(
    "message",
    [
        TEXT,
        TEXT + "\n",
        TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + TEXT + "\n" + PETER_SIG,
        "\ud800" + TEXT + "\n" + PETER_SIG,
        TEXT
        + "\n"
        + "— Bad Name x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=",
        TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
        TEXT + "\n" + PETER_SIG * 101,
    ],
)
def test_malformed_notes_are_refused(message):
    with pytest.raises(NoteError):
        open_note(message, [parse_verifier_key(PETER_VKEY)])
    with pytest.raises(NoteError):
        open_note(b"\xff" + TEXT.encode() + b"\n" + PETER_SIG.encode(), [parse_verifier_key(PETER_VKEY)])


def test_every_mangled_verifier_key_is_refused():
    parse_verifier_key(PETER_VKEY)
    for i in range(len(PETER_VKEY)):
        mangled = PETER_VKEY[:i] + chr(ord(PETER_VKEY[i]) + 1) + PETER_VKEY[i + 1 :]
        with pytest.raises(NoteError):
            parse_verifier_key(mangled)
    for cut in range(1, len(PETER_VKEY)):
        for piece in (PETER_VKEY[:cut], PETER_VKEY[cut:]):
            with pytest.raises(NoteError):
                parse_verifier_key(piece)


def test_a_cosignature_is_the_c2sp_message_with_a_big_endian_time():
    witness = Identity.from_seed(bytes(range(32, 64)))
    checkpoint = "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    signature = sign_note_text(
        checkpoint, "witness.example/w1", witness, signature_type=COSIGNATURE_V1, timestamp=1679315147
    )
    public = bytes.fromhex(witness.public_key)
    assert signature.key_id == key_id("witness.example/w1", 0x04, public)
    assert signature.signature[:8] == (1679315147).to_bytes(8, "big") and signature.timestamp == 1679315147
    # Written out from the specification's text, independently of the code under test:
    message = b"cosignature/v1\ntime 1679315147\n" + checkpoint.encode()
    nacl.signing.VerifyKey(public).verify(message, signature.signature[8:])
    witness_key = NoteVerifier("witness.example/w1", public, COSIGNATURE_V1)
    name, hex_id, material = witness_key.vkey.split("+", 2)
    assert (name, hex_id) == ("witness.example/w1", f"{signature.key_id:08x}")
    assert base64.b64decode(material) == b"\x04" + public
    assert parse_verifier_key(witness_key.vkey) == witness_key
    assert open_note(checkpoint + "\n" + signature.line, [witness_key]).signatures == (signature,)
    later = NoteSignature(signature.name, signature.key_id, (1679315148).to_bytes(8, "big") + signature.signature[8:])
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(checkpoint + "\n" + later.line, [witness_key])


def test_the_specifications_example_cosignature_lines_parse():
    # c2sp.org/tlog-witness, example response body: three cosignatures (timestamp, then an Ed25519 signature).
    body = (
        "— witness.example/w1 CMp+6LWBU0anHGH5aNDTJkH/gj79sG+T6+iP2ThYN5krrDJbR1HDnucjL39QsZTSvVjyQLrdk3DXDqI5"
        "G2HgLatVs0pWh6Up69HVOw==\n"
        "— witness.example/w1 I7rEps0pvK2UqkS2gSpVUDhrhVtQV9lgF6pRrWAvjJHjyWpW7VcE3SiOlVlbQNt64vWhO+DlkL0+UfzuOBMh"
        "9ChdMkP1vi/lCAsmlw==\n"
        "— witness.example/w2 AWui8Sk55XjYLOijihBjhqEH6nS1ndDymE0a+6idX7pLcnoB+dhnz0854aLZgrrKbYKA7nC3HNJhm/kWl7oJ"
        "lqU3rXXvpysAdyP3wQ==\n"
    )
    lines = parse_signature_lines(body)
    assert [line.name for line in lines] == ["witness.example/w1", "witness.example/w1", "witness.example/w2"]
    assert all(len(line.signature) == 72 for line in lines)
    assert "".join(line.line for line in lines) == body


def test_names_and_texts_that_cannot_be_signed():
    with pytest.raises(NoteError, match="not a key name"):
        sign_note_text(TEXT, "two words", _peter())
    with pytest.raises(NoteError, match="not a key name"):
        sign_note_text(TEXT, "a+b", _peter())
    with pytest.raises(NoteError, match="ends in a newline"):
        sign_note_text("abc", "PeterNeumann", _peter())
    with pytest.raises(NoteError, match="control characters"):
        sign_note_text("a\tb\n", "PeterNeumann", _peter())


def test_a_signature_spelt_with_base64_padding_bits_set_is_refused():
    """One note, one spelling: the same signature bytes written with non-zero padding bits do not open."""
    from hashed.protocol import NoteVerifier, open_note, sign_note_text

    signer = Identity.from_seed(bytes(range(32)))
    text = "example.com/log\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
    line = sign_note_text(text, "example.com/log", signer).line  # 68 bytes: 92 characters, the last one "="
    verifier = NoteVerifier("example.com/log", bytes.fromhex(signer.public_key))
    assert open_note(text + "\n" + line, [verifier]).text == text
    head, encoded = line[:-1].rsplit(" ", 1)
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    padded = encoded[:-2] + alphabet[alphabet.index(encoded[-2]) ^ 1] + "="  # a padding bit set: same bytes
    assert base64.b64decode(padded) == base64.b64decode(encoded)
    with pytest.raises(NoteError, match="canonical base64"):
        open_note(text + "\n" + f"{head} {padded}\n", [verifier])
