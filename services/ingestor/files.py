"""Looking at inbox entries without trusting them: what kind of entry, whether a writer still
holds it, and reading it without following a link.

Only regular files are ever opened, and always with O_NOFOLLOW and O_NONBLOCK: a symlink
swapped in after a look is refused instead of followed, and a FIFO can never block the reader.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import os
import signal
import stat
from pathlib import Path

_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

ENTRY_KINDS = {
    stat.S_IFLNK: "symbolic link",
    stat.S_IFIFO: "named pipe (FIFO)",
    stat.S_IFSOCK: "socket",
    stat.S_IFBLK: "block device",
    stat.S_IFCHR: "character device",
    stat.S_IFDIR: "directory",
}


class NotARegularFileError(OSError):
    """The entry is no longer the regular file that was looked at."""


def entry_kind(mode: int) -> str:
    """'regular file', 'symbolic link', 'named pipe (FIFO)', ... of an lstat mode."""
    if stat.S_ISREG(mode):
        return "regular file"
    return ENTRY_KINDS.get(stat.S_IFMT(mode), "special file")


def open_regular(path: Path) -> int:
    """A read-only descriptor of `path` if it is a regular file itself, never what it links to."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # O_NOFOLLOW met a symlink
            raise NotARegularFileError(errno.ELOOP, "a symbolic link", str(path)) from exc
        raise
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise NotARegularFileError(errno.EINVAL, "not a regular file", str(path))
    return fd


def sha256_regular(path: Path) -> str:
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def read_regular(path: Path) -> bytes:
    fd = open_regular(path)
    with os.fdopen(fd, "rb") as handle:
        return handle.read()


def open_for_writing(path: Path) -> bool | None:
    """Whether a process holds `path` open for writing: True or False when the kernel can
    tell, None when it cannot (the caller then relies on the stable-time rule).

    A read lease is granted only while no descriptor of the file is open for writing, by any
    process. It is released at once: this is a look, not a lock. Leases need Linux, a local
    file system, and a file of the process's own user (or CAP_LEASE); anything else is None.
    """
    if not hasattr(fcntl, "F_SETLEASE"):
        return None
    fd = open_regular(path)
    try:
        # A writer opening the file while the lease is held makes the kernel signal the holder;
        # SIGIO (the default) would kill the process, SIGURG is ignored unless handled.
        fcntl.fcntl(fd, fcntl.F_SETSIG, signal.SIGURG)
        try:
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_RDLCK)
        except OSError as exc:
            if exc.errno in (errno.EAGAIN, errno.EBUSY):
                return True
            return None  # EACCES: another user's file; EINVAL: no leases on this file system
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, fcntl.F_SETLEASE, fcntl.F_UNLCK)
        return False
    finally:
        os.close(fd)


def move_entry(source: Path, target: Path, mode: int) -> None:
    """Move a non-regular entry itself (a link stays a link, a FIFO is never opened)."""
    try:
        source.rename(target)
        return
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    # Another file system: make the same entry there, then remove the original.
    if stat.S_ISLNK(mode):
        target.symlink_to(source.readlink())
    else:
        os.mknod(target, mode, os.lstat(source).st_rdev)
    source.unlink()
