"""Files and folders that appear whole: written under a hidden name beside their destination, then renamed.

Whatever is written here gets the modes of any other new file: 0644 files and
0755 folders under the usual umask 022 (so colleagues on a shared machine can
read results), private ones under umask 077. Python's `tempfile.mkstemp` and
`mkdtemp` make owner-only files and folders whatever the umask; `shared_mode`
undoes that for anything staged with them.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import uuid
from pathlib import Path


def umask() -> int:
    """The process's file-mode creation mask."""
    try:  # Linux shows it without changing it; os.umask would briefly set it process-wide
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def shared_mode(folder: bool = False) -> int:
    """The mode a new file (0666) or folder (0777) gets under the current umask."""
    return (0o777 if folder else 0o666) & ~umask()


@contextlib.contextmanager
def atomic_path(path: Path):
    """Yield a temporary path beside `path`; it replaces `path` only if the block completes.

    Write a file or a folder at the yielded path. On success it is renamed to
    `path` (an existing folder is swapped out and removed); on any exception,
    KeyboardInterrupt included, it is removed and `path` is left as it was.
    """
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        if path.is_dir() or (tmp.is_dir() and path.exists()):  # rename cannot replace a directory
            old = tmp.with_suffix(".old")
            os.replace(path, old)
            try:
                os.replace(tmp, path)
            except OSError:
                os.replace(old, path)
                raise
            remove(old)
        else:
            os.replace(tmp, path)
    finally:
        remove(tmp)  # nothing left after a success


def remove(path: Path) -> None:
    """Delete a file or a folder tree, if it exists."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)
