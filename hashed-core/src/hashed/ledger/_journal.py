"""Durable mode's intent log: what a guarded call must not lose, kept durable in a memory copy.

Each process appends its records, as frames, to a journal file of its own that it maps into memory. Storing
into a shared file mapping puts the bytes in the operating system's page cache at once: they survive the
process being killed (as a SQLite commit with synchronous=NORMAL does, not a power cut), and the caller pays a
memory copy instead of a SQLite commit, with no system call and no hand-off of the GIL. The background writer
then chains, signs and commits the records into the ledger, and stores in the same transaction how far it got
(`meta` row `journal:<name>`). Whatever a killed process left behind is committed by the next process that
opens the ledger: a journal is dead when no process holds its `flock`.

A journal starts with the 8 bytes `MAGIC`, then frames: `length (u32 LE) | crc32 (u32 LE) | payload`. A frame
cut short by a crash (the process killed in the middle of the copy) fails its CRC, and the journal ends there:
that call had not gone on yet. A file in the folder that does not start with `MAGIC` is never deleted: the
next start refuses to go on until a person moves it aside. Files are
preallocated, so a full disk shows when a journal is created (a clear `LedgerWriteError`), never as a fault when
the mapping is written.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import struct
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

from hashed._random import token16
from hashed.errors import LedgerWriteError

__all__ = ["FIRST", "Journal", "dead_journals", "frames", "journal_dir", "journal_files"]

_HEADER = struct.Struct("<II")
SUFFIX = ".journal"
MAGIC = b"HASHEDJ1"  # what a journal file starts with: anything else in the folder is not ours to delete
FIRST = len(MAGIC)  # where the first frame goes
# The first store into each page of a file mapping is a page fault (≈ 4 µs here, several times that on a cold
# CPU): the kernel finds, zeroes and maps the page. MADV_POPULATE_WRITE (Linux 5.14) takes those faults ahead of
# time without changing a byte, so the caller's appends find their pages mapped and writable.
_POPULATE_WRITE = getattr(mmap, "MADV_POPULATE_WRITE", 23 if sys.platform == "linux" else None)
_AHEAD = 1 << 20  # bytes kept ready past the end (≈ 3,000 records); the writer tops it up after each group


def journal_dir(ledger: Path) -> Path:
    """The folder of a ledger's journals: `<ledger>.journals` beside it."""
    return ledger.with_name(ledger.name + ".journals")


def journal_files(ledger: Path) -> list[Path]:
    """The journal files beside a ledger (a live process's, or a dead one's not committed yet)."""
    return _files(journal_dir(ledger))


def _files(directory: Path) -> list[Path]:
    return sorted(directory.glob(f"*{SUFFIX}"))


class Journal:
    """One journal file, mapped and locked by the process that writes it (or replays it)."""

    def __init__(self, path: Path, fd: int, size: int) -> None:
        self.path = path
        self.name = path.stem
        self._fd = fd
        self._map = mmap.mmap(fd, size) if size else None
        self.size = size
        self.end = FIRST  # where the next frame goes
        self.retired = False  # no frame will be added: discard once committed through `end`
        self._ready = 0  # pages below this offset have been made ready for writing (see `prepare_ahead`)

    @classmethod
    def create(cls, directory: Path, capacity: int) -> Journal:
        """A new, empty journal of `capacity` bytes, preallocated and locked by this process.

        Raises:
            LedgerWriteError: the directory cannot be written or the disk is full.
        """
        path = directory / f"{os.getpid()}-{token16()}{SUFFIX}"
        try:
            directory.mkdir(mode=0o700, parents=True, exist_ok=True)  # frames hold arguments, like the ledger
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        except OSError as exc:
            raise LedgerWriteError(f"cannot create the ledger journal {path}: {exc}; fix the permissions") from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            _preallocate(fd, capacity)
            journal = cls(path, fd, capacity)
            assert journal._map is not None  # noqa: S101 - capacity > 0
            journal._map[:FIRST] = MAGIC
            journal.prepare_ahead()
            return journal
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise LedgerWriteError(
                f"cannot create the ledger journal {path}: {exc}; free disk space or fix the permissions"
            ) from exc

    def append(self, payload: bytes) -> int | None:
        """Store one frame; the offset just past it, or None when it does not fit (the caller starts a new file).

        The caller serialises appends (one lock per ledger); appending is a memory copy, durable once it returns.
        """
        start, length = self.end, len(payload)
        stop = start + _HEADER.size + length
        memory = self._map
        if memory is None or stop > self.size:
            return None
        _HEADER.pack_into(memory, start, length, zlib.crc32(payload))
        memory[start + _HEADER.size : stop] = payload
        self.end = stop
        return stop

    def prepare_ahead(self) -> None:
        """Fault in the pages the next appends will write, off the caller's path (the writer thread calls this).

        Safe while another thread appends: it changes no byte. Where the kernel cannot (macOS, Linux < 5.14),
        appends simply take their page faults as they go.
        """
        memory, ready = self._map, self._ready
        if memory is None or _POPULATE_WRITE is None or ready >= self.size or self.end + _AHEAD // 2 < ready:
            return
        stop = min(self.size, max(ready, self.end) + _AHEAD)
        try:
            memory.madvise(_POPULATE_WRITE, ready, stop - ready)
        except (OSError, ValueError):
            self._ready = self.size  # not supported here: stop trying
            return
        self._ready = stop

    def frames(self, start: int = 0) -> Iterator[tuple[int, bytes]]:
        """The frames after `start`: `(offset just past the frame, payload)`, up to the first torn or empty one."""
        memory = self._map
        return iter(()) if memory is None else frames(memory, start, self.size)

    def discard(self) -> None:
        """Empty and delete the file, then let go of it (still holding the lock while it empties)."""
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)  # a process that opened the file meanwhile finds nothing to replay
        with contextlib.suppress(OSError):
            self.path.unlink()
        self.close()

    def close(self) -> None:
        """Unmap and unlock (the file stays for the next process that opens the ledger)."""
        if self._map is not None:
            self._map.close()
            self._map = None
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1


def frames(memory: mmap.mmap | bytes, start: int, size: int) -> Iterator[tuple[int, bytes]]:
    """Valid frames of a journal image from `start`: `(offset past the frame, payload)`.

    Raises:
        ValueError: the file does not start like a journal (and is not an empty one): not ours to read or delete.
    """
    head = bytes(memory[:FIRST])
    if head != MAGIC and any(head):
        raise ValueError("the file does not start like a Hashed journal")
    at = max(start, FIRST)
    while at + _HEADER.size <= size:
        length, crc = _HEADER.unpack_from(memory, at)
        stop = at + _HEADER.size + length
        if length == 0 or stop > size:
            return
        payload = bytes(memory[at + _HEADER.size : stop])
        if zlib.crc32(payload) != crc:
            return
        yield stop, payload
        at = stop


def dead_journals(directory: Path) -> Iterator[Journal]:
    """Journals no live process holds, each locked for the caller (who replays, then discards or closes it)."""
    for path in _files(directory):
        try:
            fd = os.open(path, os.O_RDWR)
        except OSError:  # gone meanwhile: another process replayed it
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # its process is alive (or another process is replaying it)
            os.close(fd)
            continue
        yield Journal(path, fd, os.fstat(fd).st_size)


def _preallocate(fd: int, size: int) -> None:
    allocate = getattr(os, "posix_fallocate", None)
    if allocate is not None:
        allocate(fd, 0, size)
    else:  # macOS: write the zeros, so the disk space is taken now rather than when the mapping is written
        block = bytes(1 << 20)
        for offset in range(0, size, len(block)):
            os.pwrite(fd, block[: size - offset], offset)
