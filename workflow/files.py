"""Files people hand to casework (settings, keys, checkpoints, attachments, CSV), read
with a size cap: an endless or enormous file (``/dev/zero``, a wrong path) is refused
by name before it can fill the memory, and a binary file given as text is refused as
not text. Every refusal is :class:`InvalidInput` (or the ``error`` the caller names)."""

from __future__ import annotations

from pathlib import Path

from casework.workflow.errors import InvalidInput

TEXT_FILE_BYTES = 8 << 20
"""The largest settings, key, keyring or checkpoint file read (8 MiB)."""


def read_capped(
    path: str | Path,
    limit: int,
    *,
    what: str = "file",
    field: str = "file",
    error: type[InvalidInput] = InvalidInput,
    hint: str = "",
) -> bytes:
    """The bytes of ``path``, at most ``limit`` of them: a larger (or endless) file is
    refused naming it, as is one that cannot be read (``hint`` follows the limit)."""
    file = Path(path)
    try:
        with file.open("rb") as handle:
            data = handle.read(limit + 1)
    except OSError as err:
        raise error(f"{file}: cannot read the {what}: {err.strerror or err}", field=field) from None
    if len(data) > limit:
        raise error(
            f"{file} is larger than a {what} may be: the limit is {limit:,} bytes{hint}",
            field=field,
        )
    return data


def read_text(
    path: str | Path,
    kind: str,
    *,
    limit: int = TEXT_FILE_BYTES,
    what: str = "file",
    field: str = "file",
    error: type[InvalidInput] = InvalidInput,
    encoding: str = "utf-8",
) -> str:
    """The text of ``path`` (UTF-8, at most ``limit`` bytes); a binary file (a NUL byte
    or bytes that are not UTF-8) is refused as ``{path}: not a {kind} text file``."""
    data = read_capped(path, limit, what=what, field=field, error=error)
    try:
        text = data.decode(encoding)
    except UnicodeDecodeError:
        text = "\x00"
    if "\x00" in text:
        raise error(f"{path}: not a {kind} text file (binary or not UTF-8)", field=field)
    return text
