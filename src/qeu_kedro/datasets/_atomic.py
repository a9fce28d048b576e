"""Write a model folder so that an interrupted save leaves the previous one usable.

The new folder is written beside the target as ``.<name>.tmp-<pid>-<random>`` and renamed
into place; the folder it replaces is kept as ``.<name>.previous`` (one version back), so a
run that turned out bad can be undone by hand. A save killed before the rename leaves its
temporary folder behind: the next save (or :func:`clean_stale_temporaries`) removes those
whose process is gone.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

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
    """Remove ``.<name>.tmp-<pid>-*`` folders beside ``target`` whose writing process is gone."""
    target = Path(target)
    removed = []
    if not target.parent.is_dir():
        return removed
    for tmp in target.parent.glob(f".{target.name}.tmp-*"):
        pid_text = tmp.name[len(f".{target.name}.tmp-") :].split("-", 1)[0]
        if pid_text.isdigit() and _alive(int(pid_text)) and int(pid_text) != os.getpid():
            continue  # another save of this model is under way
        shutil.rmtree(tmp, ignore_errors=True)
        removed.append(tmp)
    if removed:
        logger.warning(
            "Removed %d temporary folder(s) of interrupted saves of %s: %s",
            len(removed),
            target,
            [p.name for p in removed],
        )
    return removed


def save_folder_atomically(target: Path, write: Callable[[Path], None], keep_previous: bool = True) -> None:
    """Call ``write(tmp)`` on a fresh folder beside ``target``, then swap it in.

    Until the final rename the old ``target`` is untouched; if ``write`` fails, the
    temporary folder is removed and ``target`` is as it was. With ``keep_previous`` the
    replaced folder stays as ``.<name>.previous`` (the one before it is removed).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(target)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-{os.getpid()}-", dir=target.parent))
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = previous_version(target) if keep_previous else target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    if not keep_previous:
        shutil.rmtree(old, ignore_errors=True)
