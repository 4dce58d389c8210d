"""File names as the file system gives them, and as text, reports and archives can hold them.

Linux allows any bytes but `/` and NUL in a name, up to 255 bytes. Python hands a name that is
not UTF-8 over with its bad bytes as lone surrogates (`surrogateescape`), which JSON encoders,
the ledger and Parquet refuse; and the archive and quarantine add a prefix or a suffix that can
push a legal name over the limit.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any

from shared.quarantine import printable

NAME_MAX = 255  # bytes per path component: ext4, xfs, btrfs, tmpfs, NTFS and SMB alike


def is_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def name_record(name: str) -> dict[str, Any]:
    """What a report keeps of an original name: readable, and faithful even when not UTF-8
    (then `file` shows the bad bytes as `\\xNN` and `file_name_hex` has them all)."""
    if is_utf8(name):
        return {"file": name}
    return {
        "file": printable(name),
        "file_name_is_utf8": False,
        "file_name_hex": os.fsencode(name).hex(),
    }


def bounded_name(name: str, reserve: int) -> str:
    """`name`, shortened when it and `reserve` more bytes would not fit in NAME_MAX.

    The suffix stays (the format), and a short hash of the whole name goes before it, so two
    long names that share their beginning stay apart. A UTF-8 name stays UTF-8.
    """
    raw = os.fsencode(name)
    limit = NAME_MAX - reserve
    if len(raw) <= limit:
        return name
    stem, dot, extension = raw.rpartition(b".")
    suffix = dot + extension if stem and len(extension) <= 16 else b""
    mark = b"~" + hashlib.sha256(raw).hexdigest()[:8].encode()
    head = raw[: max(0, limit - len(suffix) - len(mark))]
    if is_utf8(name):
        head = head.decode("utf-8", "ignore").encode()  # no character cut in two
    return os.fsdecode(head + mark + suffix)
