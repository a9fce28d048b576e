"""Write a model folder, or a file, so that an interrupted save leaves the previous one usable.

The new folder is written beside the target as ``.<name>.tmp-<pid>-<random>`` and renamed
into place; the folder it replaces is kept as ``.<name>.previous`` (one version back), so a
run that turned out bad can be undone by hand. A save killed before the rename leaves its
temporary folder behind: the next save (or :func:`clean_stale_temporaries`) removes those
whose process is gone.

:class:`AtomicFileSave` does the same for kedro-datasets' single-file datasets (no previous
version kept): the file is whole, old or new, whatever happens to the save.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.io.core import get_filepath_str

logger = logging.getLogger(__name__)


def previous_version(target: Path) -> Path:
    """Where the folder replaced by the last save is kept."""
    return Path(target).with_name(f".{Path(target).name}.previous")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temporaries(target: Path) -> list[Path]:
    """Remove ``.<name>.tmp-<pid>-*`` folders (or files) beside ``target`` whose writing process is gone."""
    target = Path(target)
    removed = []
    folders = False
    if not target.parent.is_dir():
        return removed
    for tmp in target.parent.glob(f".{target.name}.tmp-*"):
        pid_text = tmp.name[len(f".{target.name}.tmp-") :].split("-", 1)[0]
        if pid_text.isdigit() and _alive(int(pid_text)) and int(pid_text) != os.getpid():
            continue  # another save of this model is under way
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
            folders = True
        else:
            tmp.unlink(missing_ok=True)
        removed.append(tmp)
    if removed:
        logger.warning(
            "Removed %d temporary %s of interrupted saves of %s: %s",
            len(removed),
            "folder(s)" if folders else "file(s)",
            target,
            [p.name for p in removed],
        )
    return removed


def _umask() -> int:
    """The process's umask, read without changing it (Linux: /proc); else set and restored at once."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def save_folder_atomically(target: Path, write: Callable[[Path], None], keep_previous: bool = True) -> None:
    """Call ``write(tmp)`` on a fresh folder beside ``target``, then swap it in.

    Until the final rename the old ``target`` is untouched; if ``write`` fails, the
    temporary folder is removed and ``target`` is as it was. With ``keep_previous`` the
    replaced folder stays as ``.<name>.previous`` (the one before it is removed).
    """
    target = Path(target)
    if target.is_symlink():
        target = target.resolve()  # replace the folder the link points to (a bigger disk), not the link
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    # mkdtemp's 0o700 would keep the saved model from the group and other users: the mode a plain mkdir gives
    # (umask), with the parent's setgid bit (a group-shared folder keeps its group)
    tmp.chmod((0o777 & ~_umask()) | (target.parent.stat().st_mode & stat.S_ISGID))
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = previous_version(target) if keep_previous else target.with_name(f".{target.name}.old")
    if old.is_symlink() or old.is_file():
        old.unlink()
    elif old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    if not keep_previous:
        shutil.rmtree(old, ignore_errors=True)


class AtomicFileSave:
    """Mixin (listed before the kedro-datasets class) whose ``save`` runs the parent's own writer on
    ``.<name>.tmp-<pid>-<random>`` beside the file, then renames it over the file.

    kedro-datasets' file datasets open their file and write into it: a save that fails part-way
    (disk full, killed) leaves a truncated file that still loads. Here the file is replaced only
    once the writer has finished; a failed save removes its temporary file and leaves the previous
    file as it was (a save killed outright leaves its temporary file to the next save of the file,
    which removes it). A versioned dataset writes its new version the same way. Paths on other
    file systems (``s3://`` ...), and saves that are no single file (``_saves_one_file``), are the
    parent's as before.
    """

    _atomic_save_path: PurePosixPath | None = None

    def _get_save_path(self) -> PurePosixPath:
        if self._atomic_save_path is not None:
            return self._atomic_save_path
        return super()._get_save_path()  # type: ignore[misc]

    def _saves_one_file(self, data: Any) -> bool:
        return True

    def save(self, data: Any) -> None:
        # Kedro wraps this method (logging, versions); the parent's writer is called without its wrapper.
        write = inspect.unwrap(super().save)  # type: ignore[misc]
        protocol = self._protocol  # type: ignore[attr-defined]
        if protocol != "file" or not self._saves_one_file(data):
            write(self, data)
            return
        target = Path(get_filepath_str(super()._get_save_path(), protocol))  # type: ignore[misc]
        if target.is_symlink():
            target = target.resolve()  # replace the file the link points to, not the link
        if target.is_dir():
            write(self, data)  # the parent's own error (or its way of saving into a folder)
            return
        new_folder = not target.parent.exists()
        target.parent.mkdir(parents=True, exist_ok=True)
        clean_stale_temporaries(target)
        tmp = target.with_name(f".{target.name}.tmp-{os.getpid()}-{secrets.token_hex(4)}")
        self._atomic_save_path = PurePosixPath(tmp.as_posix())
        try:
            write(self, data)
            if target.exists():
                shutil.copymode(target, tmp)
            os.replace(tmp, target)
        except BaseException:
            tmp.unlink(missing_ok=True)
            if new_folder:  # e.g. the folder of a new version: none is left empty
                with contextlib.suppress(OSError):
                    target.parent.rmdir()
            raise
        finally:
            self._atomic_save_path = None
        self._invalidate_cache()  # type: ignore[attr-defined]
