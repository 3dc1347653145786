"""Files that hold a secret: mode 0600 from the first byte, never world-readable for a moment.

`create` makes a file only when there is none (O_EXCL, so two processes starting at once never
both write one); `write` replaces a file's content through a 0600 temporary file in the same
folder. A chmod after an ordinary write would leave a window in which others can read it.

>>> import stat, tempfile
>>> from pathlib import Path
>>> target = Path(tempfile.mkdtemp()) / "deep" / "token"
>>> create(target, "abc\\n"), create(target, "other\\n"), read(target)
(True, False, 'abc')
>>> oct(stat.S_IMODE(target.stat().st_mode))
'0o600'
>>> write(target, "new\\n"); read(target), oct(stat.S_IMODE(target.stat().st_mode))
('new', '0o600')
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

MODE = 0o600


def create(path: str | Path, text: str) -> bool:
    """Write `text` into a new 0600 file; False (nothing written) when the file exists."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, MODE)
    except FileExistsError:
        return False
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return True


def write(path: str | Path, text: str) -> None:
    """Replace the file's content with `text`; the file is 0600 afterwards, and at every moment."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")  # 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(temporary, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def read(path: str | Path) -> str | None:
    """The file's content without surrounding whitespace, or None when there is no file."""
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return None
