"""Durable mode's intent log: what a guarded call must not lose, kept durable in a memory copy.

Each process appends its records, as frames, to a journal file of its own that it maps into memory. Storing
into a shared file mapping puts the bytes in the operating system's page cache at once: they survive the
process being killed (as a SQLite commit with synchronous=NORMAL does, not a power cut), and the caller pays a
memory copy instead of a SQLite commit, with no system call and no hand-off of the GIL. The background writer
then chains, signs and commits the records into the ledger, and stores in the same transaction how far it got
(`meta` row `journal:<name>`). Whatever a killed process left behind is committed by the next process that
opens the ledger: a journal is dead when no process holds its `flock`.

A journal starts with the 8 bytes `MAGIC`, then frames, each one line: a MAC in hex (`_mac.py`: only the agent
writes frames that are committed) and JSON, ending in a newline (orjson never writes a raw newline or NUL byte
inside one). The file is preallocated with zeros, and the process writes each frame with a single copy, so a frame
cut short by a crash (the process killed in the middle of the copy) has no newline, or zeros where bytes never
made it: the journal ends there, and that call had not gone on yet. A file in the folder that starts otherwise
(journals of earlier versions, whose frames carry no MAC, included) is never deleted: the next start refuses to go
on until a person moves it aside.
Files are preallocated, so a full disk shows when a journal is created (a clear `LedgerWriteError`), never as a
fault when the mapping is written.

The journal is also the writer's queue: a caller's whole append is one `mmap.write` of the frame, a single step
under the GIL, so threads need no lock and the order of the frames is the order of the calls (without the GIL, on a
free-threaded build, the ledger uses `LockedJournal` instead: `_free_threading.py`); the writer reads the frames back
in that order. A full journal is *sealed*: its writable mapping is closed, so an append racing
the switch to a new file fails and goes to the new one instead of landing behind the writer's back.
"""

from __future__ import annotations

import contextlib
import fcntl
import mmap
import os
import sys
from collections.abc import Iterator
from pathlib import Path

from hashed._random import token16
from hashed.errors import LedgerWriteError

__all__ = ["FIRST", "Journal", "dead_journals", "frames", "journal_dir", "journal_files"]

SUFFIX = ".journal"
MAGIC = b"HASHEDJ3"  # what a journal file starts with: anything else in the folder is not ours to delete
_UNAUTHENTICATED = (b"HASHEDJ1", b"HASHEDJ2")  # earlier versions' journals: frames without a MAC
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
        self._map = mmap.mmap(fd, size) if size else None  # appends go here, at its position
        self._view = mmap.mmap(fd, size, access=mmap.ACCESS_READ) if size else None  # reads, also once sealed
        if self._map is not None:
            self._map.seek(FIRST)
        self.size = size
        self.pulled = FIRST  # how far the writer has read frames from it (the writer's own bookkeeping)
        self._sealed: int | None = None  # where the frames end, once sealed
        self._last = FIRST  # where they ended when sealing began (`end` while the seal is under way)
        self._ready = 0  # pages below this offset have been made ready for writing (see `prepare_ahead`)

    @property
    def end(self) -> int:
        """Where the next frame goes (where the frames end, once sealed)."""
        if self._sealed is not None:
            return self._sealed
        memory = self._map
        if memory is not None:
            with contextlib.suppress(ValueError):  # being sealed by another thread
                return memory.tell()
        return self._last

    @property
    def sealed_at(self) -> int:
        """Once sealed, where the frames ended when sealing began: the frames after it came in while it sealed."""
        return self._last

    def holds(self, frame: bytes, before: int) -> bool:
        """Whether these very bytes are in the journal before offset `before` (a frame copied from there)."""
        view = self._view
        return view is not None and view.find(frame, FIRST, before) >= 0

    @property
    def retired(self) -> bool:
        """Sealed: no frame will be added; the writer deletes it once committed through `end`."""
        return self._sealed is not None

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
            os.pwrite(fd, MAGIC, 0)
            journal = cls(path, fd, capacity)
            journal.prepare_ahead()
            return journal
        except OSError as exc:
            os.close(fd)
            with contextlib.suppress(OSError):
                path.unlink()
            raise LedgerWriteError(
                f"cannot create the ledger journal {path}: {exc}; free disk space or fix the permissions"
            ) from exc

    def append(self, frame: bytes) -> bool:
        """Store one frame (a line of JSON ending in a newline); False when it does not fit or the journal is sealed.

        Safe from any thread without a lock: the frame is copied, and the end moved, by one call under the GIL
        (`LockedJournal` takes a lock where there is no GIL).
        Durable once it returns.
        """
        memory = self._map
        if memory is None:
            return False
        try:
            memory.write(frame)
        except ValueError:  # no room left (nothing written), or sealed meanwhile (closed)
            return False
        return True

    def seal(self) -> None:
        """Take no more frames: appends fail from now on, even those racing this call in other threads.

        `retired` turns true only once `end` is final: another thread may have appended between reading the
        position and closing the mapping (it held the mapping already), so the frames after it are counted too.
        """
        memory = self._map
        if memory is None or self._sealed is not None:
            return
        end = self._last = memory.tell()
        memory.close()  # from here on every append fails, and goes to the next journal
        if self._view is not None:
            with contextlib.suppress(ValueError):  # not a journal at all (a stranger's file being let go)
                for stop, _ in frames(self._view, end, self.size):
                    end = stop
        self._sealed = end
        self._map = None

    def prepare_ahead(self) -> None:
        """Fault in the pages the next appends will write, off the caller's path (the writer thread calls this).

        Safe while another thread appends: it changes no byte. Where the kernel cannot (macOS, Linux < 5.14),
        appends simply take their page faults as they go.
        """
        memory, ready = self._map, self._ready
        if memory is None or _POPULATE_WRITE is None or ready >= self.size:
            return
        try:
            end = memory.tell()
        except ValueError:  # sealed meanwhile
            return
        if end + _AHEAD // 2 < ready:
            return
        stop = min(self.size, max(ready, end) + _AHEAD)
        try:
            memory.madvise(_POPULATE_WRITE, ready, stop - ready)
        except (OSError, ValueError):
            self._ready = self.size  # not supported here: stop trying
            return
        self._ready = stop

    def frames(self, start: int = 0, until: int | None = None) -> Iterator[tuple[int, bytes]]:
        """The frames after `start`: `(offset just past the frame, payload)`, up to the first torn or empty one.

        `until`: stop there (the process's own end, for a journal it writes: bytes past it are not its frames).
        """
        view = self._view
        return iter(()) if view is None else frames(view, start, self.size if until is None else until)

    def discard(self) -> None:
        """Empty and delete the file, then let go of it (still holding the lock while it empties)."""
        self._unmap()  # before the file shrinks: touching a mapping past a file's end is a fatal SIGBUS
        with contextlib.suppress(OSError):
            os.ftruncate(self._fd, 0)  # a process that opened the file meanwhile finds nothing to replay
        with contextlib.suppress(OSError):
            self.path.unlink()
        self.close()

    def close(self) -> None:
        """Unmap and unlock (the file stays for the next process that opens the ledger)."""
        self._unmap()
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = -1

    def _unmap(self) -> None:
        self.seal()
        if self._view is not None:
            self._view.close()
            self._view = None


def frames(memory: mmap.mmap | bytes, start: int, size: int) -> Iterator[tuple[int, bytes]]:
    """Valid frames of a journal image from `start`: `(offset past the frame, payload)`.

    Raises:
        ValueError: the file does not start like a journal (and is not an empty one): not ours to read or delete.
    """
    head = bytes(memory[:FIRST])
    if head in _UNAUTHENTICATED:
        raise ValueError(
            "an earlier version of hashed-core wrote it, without the MACs that show the agent wrote each record; "
            "commit it with that version, or keep it as evidence"
        )
    if head != MAGIC and any(head):
        raise ValueError("the file does not start like a Hashed journal")
    at = max(start, FIRST)
    while at < size and memory[at] != 0:  # a zero byte where a frame would start: the end
        stop = memory.find(b"\n", at, size)
        if stop < 0:  # cut short
            return
        payload = bytes(memory[at:stop])
        if b"\x00" in payload:  # bytes that never made it
            return
        at = stop + 1
        yield at, payload


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
