"""Files casework writes for people: created private (0600) and whole or not at all.

Content goes to a temporary file beside the target, which replaces the target only
when everything was written; an error leaves no file behind. An existing file is
kept unless the caller allows replacing it.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from casework.workflow.errors import InvalidInput, WriteFailed


@contextlib.contextmanager
def private_file(
    path: str | Path, *, replace: bool = False, binary: bool = False, field: str = "out"
) -> Iterator[IO[str]]:
    """A text (or with ``binary``, bytes) file that appears at ``path`` once complete."""
    target = Path(path)
    if target.is_dir():
        raise InvalidInput(f"{target} is a folder, not a file", field=field)
    if target.exists() and not replace:
        raise InvalidInput(f"{target} exists; use --force to replace it", field=field)
    if not target.parent.is_dir():
        raise InvalidInput(f"no folder {target.parent} to write {target.name} in", field=field)
    temporary = target.with_name(f".{target.name}.{os.getpid()}.part")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    except OSError as err:
        raise InvalidInput(
            f"cannot write in {target.parent}: {err.strerror or err}", field=field
        ) from None
    try:
        mode = "wb" if binary else "w"
        encoding = None if binary else "utf-8"
        with os.fdopen(fd, mode, encoding=encoding, newline=None if binary else "") as file:
            yield file
        os.replace(temporary, target)
    except OSError as err:  # the disk filled up, the folder went away
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise WriteFailed(f"cannot write {target}: {err.strerror or err}") from None
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            temporary.unlink()
        raise
