"""Writing output safely: new directories, atomic files, locks, leftovers of killed processes;
and reading input files without hanging or filling memory (:func:`read_regular_file`).

Every file and directory the tool writes goes through this module, with these rules:

- **New directories appear whole or not at all.** A run (or analysis) directory ``NAME`` is
  filled under the temporary name ``.NAME.partial-PID`` next to it and renamed into place when
  complete; a sweep directory is set up the same way, then filled point by point.
- **Files are replaced atomically.** A file ``F`` is written to ``.F.tmp-PID`` in the same
  directory (created exclusively, never through a symlink) and renamed over ``F``; the rename
  replaces a symlink planted at ``F`` instead of writing through it.
- **Locks.** Before anything is computed, a writer of ``DIR/NAME`` holds ``DIR/.NAME.lock``
  (``fcntl.flock``; the file holds the owner's pid), so a second process aiming at the same
  output is refused at once; a sweep directory is locked through its own ``.lock`` file while
  points run, so two ``--resume``s of one directory cannot both run.
- **Leftovers.** The ``PID`` in ``.NAME.partial-PID`` and ``.F.tmp-PID`` names the owner: when
  that process is gone (killed, or the disk filled up), the leftover is removed at the next start
  in the same directory, or by ``ecology clean DIR``. Lock files nobody holds are removed too.
- **Checked first.** Output locations are checked for type, name length and writability before
  any computation; permissions follow the umask (directories ``0777 & ~umask``, files
  ``0666 & ~umask``).
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import stat
import time
from pathlib import Path

from ecology.errors import Busy, OutputError, UnreadableInput

PARTIAL = re.compile(r"^\.(?P<name>.+)\.partial-(?P<pid>\d+)$")


TEMPORARY = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)$")


LOCK = re.compile(r"^\.(?P<name>.+)\.lock$")


SUFFIX_ROOM = len(".") + len(".partial-") + 10  # what the temporary name adds to NAME (pid up to 10 digits)


NAME_ROOM = 64  # room kept for the names of files written inside a new directory


_held_locks: dict[str, int] = {}  # path of a lock file -> the descriptor holding it (this process)


def describe_os_error(err: OSError) -> str:
    """An ``OSError`` in one line: the path it concerns (when it names one) and the system's
    message, e.g. ``runs/x: No space left on device``."""
    where = err.filename if err.filename is not None else ""
    return f"{where}: {err.strerror or err}" if where else str(err.strerror or err)


def naming(err: OSError, path: Path, tmp: Path | None = None, final: Path | None = None) -> OSError:
    """``err`` naming the file the user will see: a path inside the temporary ``tmp`` becomes the
    same path inside ``final`` (``.NAME.partial-PID/x.png`` -> ``NAME/x.png``, a temporary file
    ``.F.tmp-PID`` -> ``F``), and an error that names no file (a full disk found by ``write``,
    ``close`` or ``fsync``) names ``path``."""
    where = str(path) if err.filename is None else str(err.filename)
    if tmp is not None and final is not None:
        try:
            where = str(final / Path(where).relative_to(tmp))
        except ValueError:
            pass
    match = TEMPORARY.match(Path(where).name)
    if match:
        where = str(Path(where).with_name(match["name"]))
    return OSError(err.errno, err.strerror or str(err), where)


def check_new_directory(target: Path) -> Path:
    """``target`` must not exist (not even as a dangling symlink); the nearest existing ancestor
    must be a writable directory; every name must fit the file system's limits."""
    if os.path.lexists(target):
        what = "a dangling symlink" if target.is_symlink() and not target.exists() else "already exists"
        raise OutputError(f"{target}: {what}; outputs never overwrite anything, choose a new output directory")
    ancestor = target.parent
    while not os.path.lexists(ancestor) and ancestor != ancestor.parent:
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"{target}: cannot be created, {ancestor} is not a directory")
    _check_room(target, ancestor, target.relative_to(ancestor).parts, NAME_ROOM, "created")
    return target


def _check_room(target: Path, directory: Path, names, path_room: int, verb: str) -> None:
    """Before ``target`` is made in the existing ``directory``: each of its new ``names`` leaves
    room for the temporary suffix (:data:`SUFFIX_ROOM`), its path for ``path_room`` more bytes,
    and ``directory`` is writable (``verb``: "created", "written")."""
    name_max = _pathconf(directory, "PC_NAME_MAX", 255)
    for part in names:
        if len(os.fsencode(part)) + SUFFIX_ROOM > name_max:
            raise OutputError(f"{target}: the name {part[:40]!r}... is too long "
                              f"(at most {name_max - SUFFIX_ROOM} bytes here)")
    path_max = _pathconf(directory, "PC_PATH_MAX", 4096)
    if len(os.fsencode(str(target))) + path_room > path_max:
        raise OutputError(f"{target}: the path is too long (at most {path_max - path_room} bytes here)")
    if not os.access(directory, os.W_OK | os.X_OK):
        why = "read-only file system" if _read_only(directory) else "no permission to write"
        raise OutputError(f"{target}: cannot be {verb} in {directory} ({why})")


def _pathconf(path: Path, name: str, default: int) -> int:
    try:
        return os.pathconf(path, name)
    except (OSError, ValueError):
        return default


def _read_only(path: Path) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


class Claim:
    """An exclusive ``flock`` on a lock file, taken without waiting; the file holds our pid.

    ``remove_file``: unlink the lock file on release (used for ``.NAME.lock`` next to a new
    directory). Taking such a lock re-checks after locking that the path still names the file
    we locked, so a lock file removed by its previous owner cannot be shared by two processes.
    """

    def __init__(self, path: Path, busy_message: str, remove_file: bool):
        self.path, self.remove_file, self.fd = path, remove_file, None
        while True:
            try:
                fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666)
            except OSError as err:
                raise OutputError(f"cannot create the lock file {describe_os_error(err)}") from None
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = _read_pid(fd)
                os.close(fd)
                raise Busy(busy_message + (f" (pid {owner})" if owner else "")) from None
            try:
                same = os.fstat(fd).st_ino == os.stat(path, follow_symlinks=False).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        try:
            os.ftruncate(fd, 0)
            os.write(fd, f"{os.getpid()}\n".encode())
        except OSError as err:
            os.close(fd)
            raise OutputError(f"cannot write the lock file {path}: {err.strerror}") from None
        self.fd = fd
        _held_locks[str(path)] = fd

    def release(self) -> None:
        if self.fd is None:
            return
        if self.remove_file:
            try:
                os.unlink(self.path)
            except OSError:
                pass
        _held_locks.pop(str(self.path), None)
        os.close(self.fd)
        self.fd = None

    def __enter__(self) -> Claim:
        return self

    def __exit__(self, *exc) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text.isdigit() else None
    except (OSError, ValueError):
        return None


def claim_new_directory(target: Path) -> Claim:
    """Check ``target`` and lock ``.NAME.lock`` next to it before computing anything.

    Creates the missing parent directories (this is the writability probe); removes leftovers
    of dead processes in the parent; refuses if another process is writing ``target``."""
    target = Path(target)
    check_new_directory(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{target}: cannot create its parent directory ({describe_os_error(err)})") from None
    remove_leftovers(target.parent)
    claim = Claim(target.parent / f".{target.name}.lock",
                  f"{target}: another ecology process is writing this output directory", remove_file=True)
    if os.path.lexists(target):  # it finished while we were checking
        claim.release()
        check_new_directory(target)
    return claim


def claim_new_file(path: Path, replace: bool = False) -> Claim:
    """Check the output file ``path`` and lock ``.NAME.lock`` beside it before computing anything.

    Its directory must exist and be writable, its name must leave room for the temporary
    ``.NAME.tmp-PID`` of :func:`write_file_atomically`, and nothing may be at ``path``; with
    ``replace``, a regular file (or a symlink, which the write replaces, never follows) may be
    there, never a directory or another special file. Removes leftovers of dead processes in the
    directory; refuses if another process is writing ``path``."""
    path = Path(path)
    directory = path.parent
    if not directory.is_dir():
        what = "does not exist" if not os.path.lexists(directory) else "is not a directory"
        raise OutputError(f"{path}: its directory {directory} {what}; create it first or choose another path")
    if not path.name or path.name in (".", ".."):
        raise OutputError(f"{path}: not a file name")
    _check_room(path, directory, (path.name,), SUFFIX_ROOM, "written")

    def check_target() -> None:
        if not os.path.lexists(path):
            return
        if not replace:
            raise OutputError(f"{path}: already exists; outputs never overwrite anything: choose a new path, or "
                              "pass --replace to replace it")
        if not (path.is_symlink() or path.is_file()):
            raise OutputError(f"{path}: is a directory or another special file, not a file; choose another path")

    check_target()
    remove_leftovers(directory)
    claim = Claim(directory / f".{path.name}.lock", f"{path}: another ecology process is writing this file",
                  remove_file=True)
    try:
        check_target()  # it may have appeared while we were checking
    except OutputError:
        claim.release()
        raise
    return claim


def lock_sweep(directory: Path) -> Claim:
    """The lock of a sweep directory, held while its points run."""
    return Claim(Path(directory) / ".lock", f"{directory}: a sweep is already running in this directory",
                 remove_file=False)


_claims: dict[str, Claim] = {}  # lock path -> claim of a new directory taken by this process


def claim(target: Path) -> Path:
    """:func:`claim_new_directory`, held until :func:`release` (or the end of the process)."""
    taken = claim_new_directory(target)
    _claims[str(taken.path)] = taken
    return Path(target)


def fresh_directory(out: str | Path | None, name: str, root: str | Path = "runs") -> Path:
    """The directory a run will be written to, checked (it must not exist; type, name length,
    writability of its location) and claimed for this process before anything is computed, so
    a second process aiming at it is refused at once: ``out`` when given, else
    ``ROOT/NAME-YYYYMMDD-HHMMSS`` with ``-2``, ``-3``, ... appended while that name is taken."""
    if out is not None:
        return claim(Path(out))
    base = Path(root) / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"
    target, n = base, 1
    while True:
        if not os.path.lexists(target):
            try:
                return claim(target)
            except Busy:  # another run chose the same name this second
                pass
        n += 1
        target = base.with_name(f"{base.name}-{n}")


def release(target: Path | None = None) -> None:
    """Release the claim of ``target`` (all claims when None)."""
    keys = list(_claims) if target is None else [str(Path(target).parent / f".{Path(target).name}.lock")]
    for key in keys:
        taken = _claims.pop(key, None)
        if taken:
            taken.release()


def close_inherited_locks() -> None:
    """In a forked worker: close the lock descriptors inherited from the parent, so that only
    the parent holds its locks (a worker never writes outputs)."""
    for fd in _held_locks.values():
        try:
            os.close(fd)
        except OSError:
            pass
    _held_locks.clear()


def new_directory(path: Path) -> None:
    """``mkdir`` with the umask's permissions (``0777 & ~umask``)."""
    os.mkdir(path, 0o777)


def write_atomically(target: Path, fill) -> Path:
    """Call ``fill(tmp_dir)`` and rename the temporary directory to ``target`` once it is done.

    The temporary directory ``.NAME.partial-PID`` is removed if anything fails (an exception,
    an interrupt, a full disk); an ``OSError`` becomes one line naming the file."""
    target = Path(target)
    lock_path = str(target.parent / f".{target.name}.lock")
    own_claim = None if lock_path in _claims else claim_new_directory(target)
    tmp = target.parent / f".{target.name}.partial-{os.getpid()}"
    try:
        if os.path.lexists(tmp):  # left by an earlier process with our pid
            _remove(tmp)
        new_directory(tmp)
        fill(tmp)
        if os.path.lexists(target):
            raise OutputError(f"{target}: appeared while writing; nothing was written")
        os.rename(tmp, target)
    except OSError as err:
        named = naming(err, newest_file(tmp) or target, tmp, target)
        _remove(tmp)
        where = named.strerror if named.filename == str(target) else describe_os_error(named)
        raise OutputError(f"writing {target} failed, nothing was written: {where}") from None
    except BaseException:
        _remove(tmp)
        raise
    finally:
        if own_claim:
            own_claim.release()
        else:
            release(target)
    return target


def newest_file(directory: Path) -> Path | None:
    """The file last modified under ``directory``: the one being written when an error that names
    no file (a full disk found by ``write`` or ``close``) stopped a writer that fills the
    directory one file at a time. Timestamps are coarse (a clock tick), so ties go to the larger
    inode number, the later created on the usual file systems."""
    newest, when = None, (-1, -1)
    for here, _, files in os.walk(directory):
        for name in files:
            try:
                info = os.stat(os.path.join(here, name), follow_symlinks=False)
            except OSError:
                continue
            if (info.st_mtime_ns, info.st_ino) > when:
                newest, when = Path(here) / name, (info.st_mtime_ns, info.st_ino)
    return newest


def write_file_atomically(path: Path, data: bytes | str) -> None:
    """Write ``path`` whole or not at all: exclusive temporary file (never through a symlink),
    flushed to disk, then renamed over ``path`` (replacing a symlink, never following it). An
    ``OSError`` (a full disk, a read-only file system, a quota) names ``path``, never the
    temporary file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    payload = data.encode() if isinstance(data, str) else data
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    try:
        try:
            fd = os.open(tmp, flags, 0o666)
        except FileExistsError:  # left behind by an earlier process that had our pid
            os.unlink(tmp)
            fd = os.open(tmp, flags, 0o666)
    except OSError as err:
        raise naming(err, path) from None
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(err, OSError):
            raise naming(err, path) from None
        raise


def replace_files_from(directory: Path, render) -> list[Path]:
    """Render files into a fresh temporary directory inside ``directory`` (``render(tmp)``
    returns the paths it wrote) and move each over its namesake in ``directory`` with
    ``os.replace``, so a symlink planted in ``directory`` is replaced, never followed. An
    ``OSError`` while rendering (a full disk) replaces nothing and names the file of
    ``directory`` that was being written."""
    directory = Path(directory)
    tmp = directory / f".render.partial-{os.getpid()}"
    if os.path.lexists(tmp):
        _remove(tmp)
    try:
        new_directory(tmp)
    except OSError as err:
        raise naming(err, directory, tmp, directory) from None
    try:
        try:
            written = render(tmp)
        except OSError as err:
            raise naming(err, newest_file(tmp) or directory, tmp, directory) from None
        moved = []
        for path in written:
            destination = directory / Path(path).name
            if destination.is_dir() and not destination.is_symlink():
                raise OutputError(f"{destination}: is a directory, cannot write a file there")
            os.replace(path, destination)
            moved.append(destination)
        return moved
    finally:
        _remove(tmp)


def _remove(path: Path) -> None:
    if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
    else:
        try:
            os.unlink(path)
        except OSError:
            pass


def process_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OverflowError:
        return False
    return True


def _lock_is_free(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False
    finally:
        os.close(fd)


def leftovers(directory: Path) -> tuple[list[Path], list[Path]]:
    """Temporary entries in ``directory`` (not recursive): (stale, still owned by a live process)."""
    stale, live = [], []
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return stale, live
    for entry in entries:
        match = PARTIAL.match(entry.name) or TEMPORARY.match(entry.name)
        if match:
            (live if process_alive(int(match["pid"])) else stale).append(Path(entry.path))
        elif LOCK.match(entry.name) and entry.is_file(follow_symlinks=False):
            (stale if _lock_is_free(Path(entry.path)) else live).append(Path(entry.path))
    return stale, live


def remove_leftovers(directory: Path) -> list[Path]:
    """Remove the leftovers of dead processes in ``directory``; returns what was removed."""
    stale, _ = leftovers(directory)
    for path in stale:
        _remove(path)
    return stale


def clean_tree(root: Path) -> tuple[list[Path], list[Path]]:
    """``ecology clean``: leftovers of dead processes anywhere under ``root`` (symlinks are not
    followed); returns (removed, left because their owner still runs)."""
    removed, live = [], []
    for here, dirs, _ in os.walk(root, followlinks=False):
        stale, busy = leftovers(Path(here))
        for path in stale:
            _remove(path)
        removed += stale
        live += busy
        gone = {p.name for p in stale + busy}
        dirs[:] = [d for d in dirs if d not in gone]
    return removed, live


def read_regular_file(path: str | Path, max_bytes: int, what: str) -> bytes:
    """The bytes of ``path``, which must be a regular file of at most ``max_bytes`` (a FIFO would
    block, a device never end, a folder has no bytes). The file is opened without blocking and
    checked on the opened descriptor, so what is read is what was checked; ``what`` ("a scenario
    file") phrases the fix. Raises :class:`~ecology.errors.UnreadableInput` with the reason."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except FileNotFoundError:
        raise UnreadableInput("file not found") from None
    except IsADirectoryError:
        raise UnreadableInput(f"is a directory; give {what}") from None
    except OSError as err:
        raise UnreadableInput(f"cannot open: {err.strerror or err}") from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise UnreadableInput(f"is a directory; give {what}")
        if not stat.S_ISREG(info.st_mode):
            raise UnreadableInput(f"not a regular file (a FIFO, socket or device); give {what}")
        if info.st_size > max_bytes:
            raise UnreadableInput(f"is {info.st_size:,} bytes; {what} is at most {max_bytes:,} bytes")
        chunks, size = [], 0
        while chunk := os.read(fd, 2**20):
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise UnreadableInput(f"grew beyond {max_bytes:,} bytes while read; {what} is at most that")
        return b"".join(chunks)
    except OSError as err:
        raise UnreadableInput(f"cannot read: {err.strerror or err}") from None
    finally:
        os.close(fd)
