"""An intents version's files on disk: the names a version may hold, reading a folder, writing one.

A version's file names come back from the database, so a row that holds `../../x.yaml`, `/etc/x.yaml`
or `knowledge/../../x.md` must never decide where a file is written. A name is checked when a version
is stored and again before any file is written (`check_names`): it is `NAME.yaml` or `NAME.yml` at the
top of the folder, or `knowledge/NAME.yaml|.yml|.md`, exactly what `folder_files` reads; no `.` or `..`
part, no empty part, no absolute path, no backslash, no control character. Writing and deleting go
through the folder's directory descriptors with `O_NOFOLLOW`, so a symbolic link inside the folder (a
`knowledge` link to elsewhere, a `bank.yaml` link to a file outside) is refused, never followed; the
folder itself is the one the caller named.
"""

from __future__ import annotations

import errno
import os
import unicodedata
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path, PurePosixPath

from bot.errors import IntentFileError, InvalidInputError

KNOWLEDGE = "knowledge"
TOP_SUFFIXES = frozenset({".yaml", ".yml"})
KNOWLEDGE_SUFFIXES = frozenset({".yaml", ".yml", ".md"})  # what bot.content.knowledge reads
_WRITE = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW  # a link in the file's place is an error
_SUBFOLDER = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
_ALLOWED = "NAME.yaml or NAME.yml in the folder, or knowledge/NAME.yaml, .yml or .md"


def check_names(names: Iterable[str]) -> None:
    """InvalidInputError naming the first file name a version may not hold (see the module docstring)."""
    for name in names:
        problem = _name_problem(name)
        if problem is not None:
            raise InvalidInputError(
                "files", f"stored file name {name!r} is refused: {problem}; a version holds only {_ALLOWED}"
            )


def _name_problem(name: object) -> str | None:
    if not isinstance(name, str) or not name:
        return "it is empty or not text"
    if any(unicodedata.category(c) in ("Cc", "Cf") for c in name) or "\\" in name:
        return "it holds a control character or a backslash"
    parts = name.split("/")
    if name.startswith("/") or any(part in ("", ".", "..") for part in parts):
        return "it is absolute or has an empty, '.' or '..' part"
    suffix = PurePosixPath(parts[-1]).suffix.lower()
    if len(parts) == 1 and suffix in TOP_SUFFIXES:
        return None
    if len(parts) == 2 and parts[0] == KNOWLEDGE and suffix in KNOWLEDGE_SUFFIXES:
        return None
    return "it is not a file the folder's loader reads"


def folder_files(folder: Path) -> dict[str, str]:
    """Every file the engine reads from `folder`, by path inside it ('bank.yaml', 'knowledge/faq.yaml')."""
    folder = Path(folder)
    paths = [*sorted(p for p in folder.glob("*.y*ml") if p.suffix in TOP_SUFFIXES)]
    knowledge = folder / KNOWLEDGE
    if knowledge.is_dir():
        paths.extend(sorted(p for p in knowledge.iterdir() if p.suffix in KNOWLEDGE_SUFFIXES and p.is_file()))
    files: dict[str, str] = {}
    for path in paths:
        try:
            files[path.relative_to(folder).as_posix()] = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise IntentFileError(path, None, f"cannot read file: {exc}") from None
    return files


def refuse_links(folder: Path, names: Iterable[str]) -> None:
    """IntentFileError if a file to be written or deleted, or its knowledge/ folder, is a symbolic link
    (checked before anything changes, so a refused checkout changes nothing)."""
    folder = Path(folder)
    for name in names:
        parts = name.split("/")
        for depth in range(1, len(parts) + 1):
            path = folder.joinpath(*parts[:depth])
            if path.is_symlink():
                raise IntentFileError(
                    path,
                    None,
                    "is a symbolic link; versions are written only as files inside the folder, never "
                    "through links (replace it with a plain file or folder)",
                )


def write_files(files: dict[str, str], folder: Path) -> None:
    """Write `files` under `folder` (creating it and knowledge/), never following a link inside it."""
    check_names(files)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        with _parent_of(folder, name, create=True) as (parent, leaf):
            fd = _nofollow(lambda: os.open(leaf, _WRITE, 0o644, dir_fd=parent), folder / name)
            with os.fdopen(fd, "wb") as handle:
                handle.write(text.encode("utf-8"))


def remove_files(names: Iterable[str], folder: Path) -> None:
    """Delete `names` under `folder` (a link is never followed: the name itself must be a file)."""
    for name in names:
        with _parent_of(Path(folder), name, create=False) as (parent, leaf):
            os.unlink(leaf, dir_fd=parent)


@contextmanager
def _parent_of(folder: Path, name: str, *, create: bool) -> Iterator[tuple[int, str]]:
    """The directory descriptor holding `name` inside `folder` (knowledge/ opened without following a
    link, created if asked), and the name's last part."""
    *folders, leaf = name.split("/")
    fds = [os.open(folder, os.O_RDONLY | os.O_DIRECTORY)]
    try:
        for part in folders:
            if create:
                with suppress(FileExistsError):
                    os.mkdir(part, 0o755, dir_fd=fds[-1])
            fds.append(_nofollow(lambda: os.open(part, _SUBFOLDER, dir_fd=fds[-1]), folder / part))  # noqa: B023
        yield fds[-1], leaf
    finally:
        for fd in reversed(fds):
            os.close(fd)


def _nofollow(opening: Callable[[], int], path: Path) -> int:
    """Run `opening` (an os.open call); a link where a file or folder should be is an IntentFileError."""
    try:
        return opening()
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise IntentFileError(
                path, None, "is a symbolic link; versions are never written through links"
            ) from None
        raise
