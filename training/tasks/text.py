"""``text:<path>``: byte-level language modelling over a user's own .txt / .jsonl files.

``path`` is one file or a directory searched recursively for ``*.txt`` and ``*.jsonl``. Each
.txt file is one document; each JSONL line is an object whose ``"text"`` string is one document
(named ``file:line``). Text is UTF-8 and is modelled as bytes.

Input is checked up front and refused with a ConfigError naming the file: unreadable files,
empty files (or JSONL without any text), binary content (NUL bytes or invalid UTF-8), malformed
JSONL lines. A silently skipped file would let two nodes train on different data.
"""

from __future__ import annotations

import json
from pathlib import Path

from protocol.errors import ConfigError
from training.tasks.corpus import (
    DEFAULT_VALIDATION_FRACTION,
    CorpusTask,
    Document,
    split_for_task,
)

TEXT_SUFFIXES = (".txt", ".jsonl")


def find_text_files(path: Path) -> list[Path]:
    """The .txt / .jsonl files ``path`` names, sorted by relative path."""
    if not path.exists() and not path.is_symlink():
        raise ConfigError(f"{path}: no such file or directory")
    if path.is_dir():
        files = sorted(
            (p for p in path.rglob("*") if p.suffix in TEXT_SUFFIXES and not p.is_dir()),
            key=lambda p: p.relative_to(path).as_posix(),
        )
        if not files:
            raise ConfigError(f"{path}: no .txt or .jsonl files in this directory")
        return files
    if path.suffix not in TEXT_SUFFIXES:
        raise ConfigError(f"{path}: expected a .txt or .jsonl file or a directory")
    return [path]


def read_checked(path: Path) -> str:
    """The file's text; ConfigError if it is unreadable, empty or binary."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    if not data.strip():
        raise ConfigError(f"{path}: file is empty")
    if b"\0" in data:
        raise ConfigError(f"{path}: binary content (NUL byte at offset {data.index(0)})")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path}: not UTF-8 text (invalid byte at offset {exc.start})") from exc


def jsonl_documents(path: Path, name: str, text: str) -> list[Document]:
    """One document per JSONL line (blank lines skipped)."""
    docs = []
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"{path}:{number}: invalid JSON ({exc.msg})") from exc
        if not isinstance(record, dict) or not isinstance(record.get("text"), str):
            raise ConfigError(f'{path}:{number}: expected an object with a "text" string')
        if "\0" in record["text"]:
            raise ConfigError(f"{path}:{number}: binary content (NUL character)")
        if record["text"]:
            docs.append(Document(f"{name}:{number}", record["text"].encode("utf-8")))
    if not docs:
        raise ConfigError(f"{path}: no non-empty \"text\" records")
    return docs


def load_documents(path: Path) -> list[Document]:
    """Every document under ``path``, in sorted file order then line order."""
    root = path if path.is_dir() else path.parent
    docs: list[Document] = []
    for file in find_text_files(path):
        name = file.relative_to(root).as_posix()
        text = read_checked(file)
        if file.suffix == ".jsonl":
            docs.extend(jsonl_documents(file, name, text))
        else:
            docs.append(Document(name, text.encode("utf-8")))
    return docs


def make_text_task(
    path: str | Path,
    *,
    context: int = 64,
    seed: int = 0,
    max_bytes: int | None = None,
    validation_fraction: float = DEFAULT_VALIDATION_FRACTION,
) -> CorpusTask:
    """The ``text:<path>`` task; the fingerprint depends on relative names and contents only."""
    docs = load_documents(Path(path))
    if max_bytes is not None:
        docs = _truncate(docs, max_bytes)
    train, val = split_for_task(docs, seed, validation_fraction, context)
    identity = f"text|seed={seed}|fraction={validation_fraction}|max_bytes={max_bytes}"
    return CorpusTask(f"text:{path}", train, val, context=context, identity=identity)


def _truncate(docs: list[Document], max_bytes: int) -> list[Document]:
    kept: list[Document] = []
    total = 0
    for doc in docs:
        if total + len(doc.data) > max_bytes:
            break
        kept.append(doc)
        total += len(doc.data)
    if not kept:
        raise ConfigError(f"max_bytes={max_bytes} is smaller than the first document")
    return kept
