"""Writing an output file whole or not at all: exports, reports, tables and plots.

The content goes to a file no one can see yet, in the target's own folder; only when all of
it is written and on disk does it take the target's name (one `rename`, atomic on POSIX). A
write that fails or is interrupted (an exception, Ctrl-C) leaves the previous file as it was
and nothing beside it. On Linux the file being written has no name at all (`O_TMPFILE`), so
even a process killed outright (`kill -9`, power loss before the rename) leaves nothing
behind; elsewhere it is a hidden `.NAME.*.part` file, removed on every failure that lets
Python run.

A target that exists and is not a regular file (`/dev/stdout`, a named pipe) is written in
place: there is nothing to replace there.
"""

from __future__ import annotations

import errno
import os
import stat
import uuid
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

__all__ = ["replace_atomically"]

# Where the kernel shows a process's open files as links, which `linkat` can give a name.
_PROC_FD = Path("/proc/self/fd")


@contextmanager
def replace_atomically(
    path: str | Path, *, binary: bool = False, encoding: str = "utf-8", newline: str | None = None
) -> Iterator[IO[Any]]:
    """A file object to write the new content of `path` to; `path` gets it when the block
    ends without an exception, and keeps what it held otherwise.

    Raises OSError as `open(path, "w")` would: a folder that does not exist or cannot be
    written, a target that is a folder or read-only, a full disk.
    """
    target = Path(os.path.realpath(path))  # through a symlink: the link stays, its file changes

    def writer(file: int | Path) -> IO[Any]:
        if binary:
            return open(file, "wb")  # noqa: SIM115 (closed by the caller's `with`)
        return open(file, "w", encoding=encoding, newline=newline)  # noqa: SIM115

    try:
        status = target.stat()
    except FileNotFoundError:
        status = None
    if status is not None and stat.S_ISDIR(status.st_mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if status is not None and not stat.S_ISREG(status.st_mode):
        with writer(target) as handle:  # a device or a pipe
            yield handle
        return
    if status is not None and not os.access(target, os.W_OK):
        # A rename would replace it anyway; a file made read-only is one not to overwrite.
        raise PermissionError(errno.EACCES, os.strerror(errno.EACCES), str(path))

    fd, named = _unseen_file(target.parent, target.name)
    try:
        if status is not None:
            os.fchmod(fd, stat.S_IMODE(status.st_mode))
        handle = writer(fd)
    except BaseException:
        os.close(fd)
        _remove(named)
        raise
    try:
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
            if named is None:
                named = _give_name(handle.fileno(), target)
        os.replace(named, target)
        named = None
    finally:
        _remove(named)
    _sync_folder(target.parent)


def _unseen_file(folder: Path, name: str) -> tuple[int, Path | None]:
    """An open file in `folder` for the new content: nameless where the system allows it
    (then None), else a hidden name beside the target."""
    if hasattr(os, "O_TMPFILE") and _PROC_FD.is_dir():
        try:
            return os.open(folder, os.O_TMPFILE | os.O_WRONLY | os.O_CLOEXEC, 0o666), None
        except OSError as error:
            # Filesystems without O_TMPFILE say so in one of these ways; the rest is real.
            if error.errno not in (errno.EOPNOTSUPP, errno.EISDIR, errno.EINVAL):
                raise
    named = folder / f".{name}.{uuid.uuid4().hex[:12]}.part"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    return os.open(named, flags, 0o666), named


def _give_name(fd: int, target: Path) -> Path:
    """Link the nameless file `fd` into the target's folder, under a hidden name, so that it
    can be renamed over the target (a link cannot replace a file)."""
    named = target.parent / f".{target.name}.{uuid.uuid4().hex[:12]}.part"
    # linkat(AT_SYMLINK_FOLLOW) through /proc; Python calls linkat (not link, which would
    # link the /proc entry itself and fail) only when given a directory fd.
    proc = os.open(_PROC_FD, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.link(str(fd), named, src_dir_fd=proc, follow_symlinks=True)
    finally:
        os.close(proc)
    return named


def _remove(named: Path | None) -> None:
    if named is not None:
        with suppress(FileNotFoundError):
            named.unlink()


def _sync_folder(folder: Path) -> None:
    # The rename is durable once the folder is on disk; not every system can sync a folder.
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        with suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)
