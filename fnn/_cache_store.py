"""The files of fnn's compilation cache: each entry verified before JAX sees a byte of it.

An entry is `MAGIC`, then sha256(key ‖ 0 ‖ payload), then the payload (JAX's compressed
executable). `get` opens it without following a symlink and without blocking (a FIFO), reads
only a regular file owned by this user and no larger than the cache's bound, and returns the
payload only if the digest matches: a truncated, zeroed, bit-flipped, random, swapped (another
key's), special or foreign entry is a miss, so JAX compiles the program again and `put`
replaces the entry. JAX decompresses and deserializes only what passed, so no damage to the
bytes can reach its decoder or the executable loader.

The digest catches damage, not an author: whoever can write the folder could write a valid
entry. That is why fnn uses a folder only its user can write (see fnn.cache), and entries are
created 0600 inside it.

Writes go to a temporary file renamed onto the entry (os.replace: a reader sees no entry or a
whole one; two processes writing one key both succeed). After each write the oldest entries by
last use (the mtime, which `get` refreshes) are removed until the folder's entries fit the bound.
Entries are recognised by their first bytes, never by their names.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pathlib
import secrets
import stat
import warnings
from collections.abc import Iterator

__all__ = ["MAGIC", "Store", "entries", "is_entry"]

MAGIC = b"fnn-compiled\x00\x01"  # 14 bytes: the format's name and version
_DIGEST = 32
_HEADER = len(MAGIC) + _DIGEST
_SUFFIX = ".fnn"  # what fnn names its entries; recognising one is by its MAGIC, never by this
_WARNED: dict[str, set[str]] = {}  # folder -> the kinds of warning given for it in this process
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)


def _digest(key: str, payload: bytes) -> bytes:
    return hashlib.sha256(key.encode() + b"\x00" + payload).digest()


def _own(st: os.stat_result) -> bool:
    return not hasattr(os, "geteuid") or st.st_uid == os.geteuid()


def is_entry(path: pathlib.Path) -> bool:
    """Is `path` a regular file of this user's that begins with fnn's MAGIC? (symlinks are not followed)"""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError:
        return False
    try:
        st = os.fstat(fd)
        return stat.S_ISREG(st.st_mode) and _own(st) and os.read(fd, len(MAGIC)) == MAGIC
    except OSError:
        return False
    finally:
        os.close(fd)


def entries(folder: pathlib.Path, named: bool = False) -> Iterator[tuple[pathlib.Path, int, float]]:
    """(path, bytes, last use) of each fnn entry in `folder`, temporary files of a write included.
    named=True: only files with fnn's entry name, not yet checked to be entries (a cheap scan)."""
    try:
        children = list(os.scandir(folder))
    except OSError:
        return
    for child in children:
        if named and not child.name.endswith(_SUFFIX):
            continue
        try:
            st = child.stat(follow_symlinks=False)
        except OSError:
            continue
        path = pathlib.Path(child.path)
        if stat.S_ISREG(st.st_mode) and (named or is_entry(path)):
            yield path, st.st_size, st.st_mtime


class Store:
    """JAX's CacheInterface (get/put by key) over one folder, as the module docstring says."""

    def __init__(self, folder: str | os.PathLike, max_bytes: int):
        self.folder = pathlib.Path(folder)
        self.max_bytes = max_bytes
        self._warned = _WARNED.setdefault(str(self.folder), set())  # JAX's store and fnn._executables' share it

    @property
    def _path(self) -> pathlib.Path:  # JAX's CacheInterface names its folder so (its logs read it)
        return self.folder

    def _entry(self, key: str) -> pathlib.Path:
        return self.folder / f"{key}{_SUFFIX}"

    def _warn(self, kind: str, message: str) -> None:
        """At most one warning of each kind (a bad entry, a failed write) per folder and process."""
        if kind not in self._warned:
            self._warned.add(kind)
            warnings.warn(message, RuntimeWarning, stacklevel=3)

    def _bad(self, path: pathlib.Path, what: str) -> None:
        self._warn(
            "bad",
            f"fnn's compilation cache found {what} at {path}; it was not used: the program is compiled "
            "again and the entry replaced. Nothing needs doing; `fnn.cache.clear()` empties the cache.",
        )

    def get(self, key: str) -> bytes | None:
        path = self._entry(key)
        try:
            fd = os.open(path, _OPEN_FLAGS)
        except FileNotFoundError:
            return None
        except OSError as e:  # ELOOP: a symlink (O_NOFOLLOW); EACCES: not ours
            self._bad(path, f"an entry that cannot be opened safely ({e.strerror or e})")
            return None
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return self._bad(path, "a special file (not a regular file) instead of an entry")
            if not _own(st):
                return self._bad(path, f"an entry owned by another user (uid {st.st_uid})")
            if st.st_size > self.max_bytes or st.st_size < _HEADER:
                return self._bad(path, f"an entry of impossible size ({st.st_size} bytes)")
            chunks, left = [], st.st_size
            while left > 0:
                chunk = os.read(fd, min(left, 1 << 24))
                if not chunk:
                    break
                chunks.append(chunk)
                left -= len(chunk)
            data = b"".join(chunks)
        except OSError as e:
            return self._bad(path, f"an entry that could not be read ({e.strerror or e})")
        finally:
            os.close(fd)
        if data[: len(MAGIC)] != MAGIC:
            return self._bad(path, "a file that is not an fnn cache entry")
        payload = data[_HEADER:]
        if len(data) != st.st_size or data[len(MAGIC) : _HEADER] != _digest(key, payload):
            return self._bad(path, "a damaged entry (its digest does not match its bytes and key)")
        with contextlib.suppress(OSError):
            os.utime(path)  # its last use, for eviction
        return payload

    def put(self, key: str, value: bytes) -> None:
        # Written even over an existing entry: JAX writes only after a read failed, so a bad
        # entry is replaced at the next compile instead of missing forever.
        data = MAGIC + _digest(key, value) + value
        if len(data) > self.max_bytes:
            return  # larger than the whole cache: not kept
        temp = self.folder / f".{key}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
        try:
            with os.fdopen(os.open(temp, flags, 0o600), "wb") as f:
                f.write(data)
            os.replace(temp, self._entry(key))
        except OSError as e:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            self._warn(
                "write",
                f"fnn's compilation cache could not write to {self.folder} ({type(e).__name__}: "
                f"{e.strerror or e}); programs still run but are not kept. Set FNN_CACHE_DIR to a "
                "writable folder, or FNN_CACHE=off.",
            )
            return
        self.evict()

    def evict(self) -> int:
        """Remove the least recently used entries until the rest fit max_bytes; -> bytes removed."""
        found = sorted(entries(self.folder, named=True), key=lambda e: e[2])  # stat only: no file opened
        total, freed = sum(size for _, size, _ in found), 0
        for path, size, _ in found:
            if total <= self.max_bytes:
                break
            if not is_entry(path):  # fnn's name but not its format: not fnn's to delete, nor to count
                total -= size
                continue
            with contextlib.suppress(OSError):
                path.unlink()
                total -= size
                freed += size
        return freed

    def clear(self) -> None:  # JAX's interface; fnn.cache.clear() is the one to call
        pass
