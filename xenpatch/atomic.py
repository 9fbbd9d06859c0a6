"""Files written whole or not at all.

Every file xenpatch writes that a reader may open at any moment (``-o``, the send record
and mbox, the watch bot's replies, the caches under ``~/.cache/xenpatch``) is written to
a temporary file beside it and renamed over it: a reader, a concurrent run or a crash
sees the old file or the new one, never a part.  The temporary file is
``.NAME.tmpPID-TID`` (the process and the thread: two threads may write one cache
file; ``generate.series`` knows the send files' ones), and it is removed when the
write fails.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path


def write(path: Path, data: bytes | str) -> None:
    """DATA (text: UTF-8) as the whole of PATH; OSError when it cannot be written, PATH
    then as it was."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}-{threading.get_native_id()}")
    try:
        if isinstance(data, str):
            tmp.write_text(data, encoding="utf-8")
        else:
            tmp.write_bytes(data)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_cache(path: Path, data: bytes | str) -> bool:
    """``write`` for a cache entry, its directory made first: whether it was written (a
    cache that cannot be written is no error)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write(path, data)
    except OSError:
        return False
    return True
