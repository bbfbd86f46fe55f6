"""Atomic writes: a reader (or a crash) sees the old file or the whole new one, never half.

A file that is replaced keeps its permission bits; a new one gets ordinary ones.
Writing errors (read-only file system, disk full, a folder that is a file) become a
:class:`SeqpipeError` naming the path, and :func:`check_writable` finds them before a
command spends minutes computing what it cannot save.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path

from seqpipe.errors import SeqpipeError


def _default_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def _mode_for(path: Path) -> int:
    """The mode a replaced file had, else ordinary permissions (mkstemp's are owner-only)."""
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return _default_mode()


def cannot_write(path: str | os.PathLike, exc: OSError) -> SeqpipeError:
    """One line naming ``path`` and why it cannot be written."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return SeqpipeError(f"{path}: cannot write: {reason}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, fsync: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it over ``path`` if the block succeeds.

    An OSError while writing (the block's own included) is a SeqpipeError naming ``path``.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        os.close(fd)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, _mode_for(path))
        if fsync:
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise cannot_write(path, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def atomic_write(path: str | os.PathLike, write) -> Path:
    """Call ``write(tmp_path)`` (a str) and rename the result over ``path``."""
    with atomic_path(path) as tmp:
        write(str(tmp))
    return Path(path)


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[io.TextIOBase]:
    """A UTF-8 text file to write line by line, which appears at ``path`` only once complete."""
    with atomic_path(path) as tmp, open(tmp, "w", encoding="utf-8") as f:
        yield f


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_open(path) as f:
        f.write(text)
    return Path(path)


def check_writable(folder: str | os.PathLike) -> None:
    """Raise SeqpipeError unless files can be created in ``folder`` (made later if missing).

    Nothing is left behind: the nearest existing folder gets a probe file, removed at once.
    """
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if existing.exists() and not existing.is_dir():
        raise SeqpipeError(f"{folder}: cannot write there: {existing} is not a directory")
    try:
        fd, name = tempfile.mkstemp(dir=existing, prefix=".seqpipe-probe-")
        os.close(fd)
        os.unlink(name)
    except OSError as exc:
        raise cannot_write(folder, exc) from None
