"""Write a model folder so that an interrupted save leaves the previous one usable."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def save_folder_atomically(target: Path, write: Callable[[Path], None]) -> None:
    """Call ``write(tmp)`` on a fresh folder beside ``target``, then swap it in.

    Until the final rename the old ``target`` is untouched; if ``write`` fails, the
    temporary folder is removed and ``target`` is as it was.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    try:
        write(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = target.with_name(f".{target.name}.old")
    if old.exists():
        shutil.rmtree(old)
    if target.exists():
        target.rename(old)
    tmp.rename(target)
    shutil.rmtree(old, ignore_errors=True)
