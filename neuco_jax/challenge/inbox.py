"""Untrusted submission files: finding them safely, copying them while hashing, unpacking archives.

Layout of an inbox, `<challenge_dir>/submissions/<phase>/`:

    <team>/<file>       .csv, .parquet/.pq, .npz, .npy (with <stem>.ids.txt beside it),
                        .zarr (a folder), .zarr.zip (a zipped zarr group) or .zip (one store inside)

Team and file names must be plain names (letters, digits, '_', '.', '-'; no
leading dot); names starting with '.' are uploads in progress and are not
looked at. Symbolic links, anything that is not a regular file (or a .zarr
folder of regular files), and files over the size cap are rejected unread.

A submission is identified by its content: `copy_hashed` copies it into the
organiser's archive while computing its sha256 in the same pass, so what is
scored is exactly what was hashed, even if the team replaces the file
meanwhile. Zip archives are unpacked by `unpack` with every member checked
(no absolute or '..' paths, no links, a cap on the unpacked bytes counted
while writing, not taken from the headers).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import stat
import zipfile
from pathlib import Path, PurePosixPath

from neuco_jax.challenge.spec import SAFE_NAME
from neuco_jax.errors import InputError
from neuco_jax.files import remove

# Longest first: ".zarr.zip" must win over ".zip".
EXTENSIONS = (".zarr.zip", ".parquet", ".csv", ".pq", ".npz", ".npy", ".zarr", ".zip")
SIDECAR = ".ids.txt"
SAFE_FILE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
MAX_ZIP_MEMBERS = 100_000
_CHUNK = 1 << 20


@dataclasses.dataclass(frozen=True)
class Entry:
    """One thing found in a phase's inbox.

    team, name: as shown in records (ascii() of names that are not plain);
    signature: a digest of the name, size and modification time (ns) of every file
      it consists of, so that an unchanged file is recognised without reading it
      (also in a copy or a restored backup of the challenge folder);
    problem: why it is rejected without being read, or None.
    """

    team: str
    name: str
    path: Path
    signature: str
    mtime: float
    size: int
    problem: str | None = None


def extension(name: str) -> str | None:
    """The submission extension of a file name, or None."""
    lower = name.lower()
    return next((ext for ext in EXTENSIONS if lower.endswith(ext) and len(lower) > len(ext)), None)


def shown(name: str) -> str:
    """A name as records show it: plain names as they are, anything else as Python's ascii() writes it."""
    return name if SAFE_FILE.fullmatch(name) else ascii(name)


def _signature(parts) -> str:
    return hashlib.sha256(repr(sorted(parts)).encode()).hexdigest()


def _files_of(path: Path, st: os.stat_result):
    """(relative path, lstat) of every file a submission consists of; raises InputError on a link or oddity."""
    if stat.S_ISREG(st.st_mode):
        yield "", st
        return
    for folder, dirs, files in os.walk(path, followlinks=False):
        dirs.sort()
        for name in sorted(dirs + files):
            full = Path(folder) / name
            s = full.lstat()
            if stat.S_ISLNK(s.st_mode):
                raise InputError(f"holds a symbolic link ({full.relative_to(path)}); submit plain files")
            if not (stat.S_ISREG(s.st_mode) or stat.S_ISDIR(s.st_mode)):
                raise InputError(f"holds {full.relative_to(path)}, which is not a regular file")
            if stat.S_ISREG(s.st_mode):
                yield str(full.relative_to(path)), s


def _entry(team: str, path: Path, max_bytes: int) -> Entry:
    name = path.name
    try:
        st = path.lstat()
    except OSError as e:
        return Entry(team, shown(name), path, "", 0.0, 0, f"cannot be read ({e.strerror})")
    base = dict(team=team, name=shown(name), path=path, mtime=st.st_mtime, size=st.st_size)
    own = _signature([(name, st.st_size, st.st_mtime_ns)])
    if not SAFE_FILE.fullmatch(name):
        return Entry(**base, signature=own, problem="its file name is not plain (use letters, digits, '_', '.', '-')")
    if stat.S_ISLNK(st.st_mode):
        return Entry(**base, signature=own, problem="is a symbolic link; submit the file itself")
    ext = extension(name)
    if ext is None:
        return Entry(**base, signature=own, problem=f"unknown file type; submit one of {', '.join(EXTENSIONS)}")
    if (ext == ".zarr") != stat.S_ISDIR(st.st_mode) or not (stat.S_ISDIR(st.st_mode) or stat.S_ISREG(st.st_mode)):
        what = "a folder" if ext == ".zarr" else "a regular file"
        return Entry(**base, signature=own, problem=f"must be {what}")
    try:
        parts = [(rel, s.st_size, s.st_mtime_ns) for rel, s in _files_of(path, st)]
        if ext == ".npy":
            sidecar = path.with_name(name[:-len(ext)] + SIDECAR)
            s = sidecar.lstat() if sidecar.exists() or sidecar.is_symlink() else None
            if s is None or not stat.S_ISREG(s.st_mode):
                raise InputError(f"needs its ids in {sidecar.name} beside it, a regular file")
            parts.append((SIDECAR, s.st_size, s.st_mtime_ns))
    except InputError as e:
        return Entry(**base, signature=own, problem=str(e))
    except OSError as e:
        return Entry(**base, signature=own, problem=f"cannot be read ({e.strerror})")
    size = sum(p[1] for p in parts)
    mtime = max((p[2] for p in parts), default=st.st_mtime_ns) / 1e9
    entry = Entry(team=team, name=name, path=path, signature=_signature(parts), mtime=mtime, size=size)
    if size > max_bytes:
        return dataclasses.replace(entry, problem=f"is {size} bytes, over the challenge's limit of {max_bytes}")
    return entry


def scan(inbox: Path, max_bytes: int) -> list[Entry]:
    """Everything in `<inbox>/<team>/`, sorted by team and name; entries that break a rule carry a problem."""
    if not inbox.is_dir():
        return []
    found = []
    for item in sorted(os.scandir(inbox), key=lambda e: e.name):
        if item.name.startswith("."):
            continue
        path = Path(item.path)
        if item.is_symlink() or not item.is_dir(follow_symlinks=False):
            problem = "is a symbolic link" if item.is_symlink() else "is not inside a team folder"
            st = path.lstat()
            found.append(Entry("", shown(item.name), path, _signature([(item.name, st.st_size, st.st_mtime_ns)]),
                               st.st_mtime, st.st_size, problem))
            continue
        team = item.name
        if not SAFE_NAME.fullmatch(team):
            st = path.lstat()
            found.append(Entry(shown(team), "", path, _signature([(team, st.st_mtime_ns)]), st.st_mtime,
                               0, "the team folder's name is not plain (letters, digits, '_', '.', '-', 64 at most)"))
            continue
        for child in sorted(os.scandir(path), key=lambda e: e.name):
            if child.name.startswith(".") or child.name.endswith(SIDECAR):
                continue  # uploads in progress; .npy sidecars go with their matrix
            found.append(_entry(team, Path(child.path), max_bytes))
    return found


def _copy_file(src: Path, dst: Path, digest, budget: list[int]) -> None:
    """Copy one regular file (never through a link) into a new file, hashing its bytes and spending `budget`."""
    fd = os.open(src, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    with os.fdopen(fd, "rb") as f, open(dst, "xb") as out:
        if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
            raise InputError(f"{src.name} is not a regular file")
        while chunk := f.read(_CHUNK):
            budget[0] -= len(chunk)
            if budget[0] < 0:
                raise InputError("grew over the challenge's size limit while being copied")
            digest.update(chunk)
            out.write(chunk)


def copy_hashed(entry: Entry, staging: Path, max_bytes: int) -> str:
    """Copy a submission to `staging` (plus `<stem>.ids.txt` for .npy) and return its sha256 (hex).

    A single file's hash is the sha256 of its bytes (what sha256sum prints); a
    .npy's covers its ids file too, a .zarr folder's every file with its path.
    """
    digest, budget = hashlib.sha256(), [max_bytes]
    ext = extension(entry.path.name)
    try:
        if ext == ".zarr":
            staging.mkdir()
            for rel, _ in _files_of(entry.path, entry.path.lstat()):
                digest.update(f"{rel}\0".encode())
                (staging / rel).parent.mkdir(parents=True, exist_ok=True)
                _copy_file(entry.path / rel, staging / rel, digest, budget)
        else:
            _copy_file(entry.path, staging, digest, budget)
            if ext == ".npy":
                digest.update(b"\0ids\0")
                sidecar = entry.path.with_name(entry.path.name[:-len(ext)] + SIDECAR)
                _copy_file(sidecar, staging.with_name(staging.name[:-len(ext)] + SIDECAR), digest, budget)
    except OSError as e:
        raise InputError(f"cannot be read ({e.strerror or e})") from None
    return digest.hexdigest()


def _member_parts(name: str) -> tuple[str, ...]:
    """The path parts of a zip member, or an InputError when it would leave the folder it is unpacked into."""
    if "\\" in name or "\0" in name or name.startswith("/") or re.match(r"[A-Za-z]:", name):
        raise InputError(f"the archive member {name!r} has an absolute or Windows path")
    parts = tuple(p for p in PurePosixPath(name).parts if p not in ("", "."))
    if ".." in parts:
        raise InputError(f"the archive member {name!r} points outside the archive ('..')")
    return parts


def unpack(archive: Path, dest: Path, max_bytes: int) -> None:
    """Unpack a zip archive into the new folder `dest`, refusing anything unsafe (see the module docstring).

    Raises InputError naming the problem (a corrupt archive included: a bad
    CRC, a truncated file, an encrypted member).
    """
    dest.mkdir()
    left = max_bytes
    try:
        with zipfile.ZipFile(archive) as z:
            members = z.infolist()
            if len(members) > MAX_ZIP_MEMBERS:
                raise InputError(f"the archive holds {len(members)} members, over {MAX_ZIP_MEMBERS}")
            for info in members:
                parts = _member_parts(info.filename)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise InputError(f"the archive member {info.filename!r} is a symbolic link")
                if not parts:
                    continue
                target = dest.joinpath(*parts)
                if info.is_dir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with z.open(info) as src, open(target, "xb") as out:
                    while chunk := src.read(_CHUNK):
                        left -= len(chunk)
                        if left < 0:
                            raise InputError(f"unpacks to more than the challenge's limit of {max_bytes} bytes")
                        out.write(chunk)
    except InputError:
        raise
    except FileExistsError as e:
        raise InputError(f"the archive holds {Path(e.filename).name!r} twice") from None
    except (zipfile.BadZipFile, zipfile.LargeZipFile, RuntimeError, ValueError, OSError, EOFError,
            NotImplementedError) as e:
        raise InputError(f"is not a readable zip archive ({str(e).splitlines()[0] if str(e) else type(e).__name__})") \
            from None


def _stores_in(folder: Path) -> list[Path]:
    """The embedding stores directly inside a folder: files with a store extension, .zarr folders."""
    stores = []
    for child in sorted(folder.iterdir()):
        ext = extension(child.name)
        if child.is_dir():
            if ext == ".zarr" or (child / "zarr.json").is_file():
                stores.append(child)
        elif ext in (".csv", ".parquet", ".pq", ".npz", ".npy"):
            stores.append(child)
    return stores


def readable_store(path: Path, work: Path, max_bytes: int) -> Path:
    """The store to read for a submission: itself, or what its archive holds, unpacked under `work` (new).

    A .zarr.zip holds a zarr group, at its root or in one folder; a .zip holds
    exactly one store (a file, a .npy with its ids file, or a zarr group).
    """
    ext = extension(path.name)
    if ext not in (".zip", ".zarr.zip"):
        return path
    work.mkdir(parents=True, exist_ok=True)
    unpacked = work / "unpacked"
    unpack(path, unpacked, max_bytes)
    if (unpacked / "zarr.json").is_file():
        stores = [unpacked]
    else:
        stores = _stores_in(unpacked)
        dirs = [d for d in unpacked.iterdir() if d.is_dir()]
        if not stores and len(dirs) == 1:  # everything inside one folder
            stores = [dirs[0]] if (dirs[0] / "zarr.json").is_file() else _stores_in(dirs[0])
    if ext == ".zarr.zip":
        stores = [s for s in stores if s.is_dir()]
    if len(stores) != 1:
        what = "a zarr group" if ext == ".zarr.zip" else "exactly one embedding store"
        raise InputError(f"the archive holds {len(stores)} embedding stores; it must hold {what}")
    store = stores[0]
    if store.is_dir() and extension(store.name) != ".zarr":  # the readers pick the format by extension
        store = store.rename(work / "store.zarr")
    return store


def discard(path: Path) -> None:
    """Remove a staged copy and, for a .npy, its ids file."""
    remove(path)
    if path.name.endswith(".npy"):
        remove(path.with_name(path.name[:-4] + SIDECAR))
