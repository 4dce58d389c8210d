"""Write demo files so that a watcher of the folder never reads one half-written."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def replacing(path: Path) -> Iterator[Path]:
    """Yield a sibling temporary path to write; on success it replaces `path` in one rename.

    The name starts with a dot and ends in `.tmp`, both of which the ingestor's watcher ignores,
    and it sits in the same folder so the rename never crosses filesystems.
    """
    temporary = path.with_name(f".{path.name}.tmp")
    try:
        yield temporary
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with replacing(path) as temporary:
        temporary.write_bytes(data)
    return path
