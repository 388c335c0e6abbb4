"""``pycode``: byte-level language modelling on the Python standard library's own sources.

Real text that is on every machine with Python, so a network needs no download. Which files:

* every ``*.py`` under ``sysconfig.get_paths()["stdlib"]``, relative paths sorted bytewise;
* skipped: ``site-packages`` and ``dist-packages`` (installed third-party code differs per
  machine), test directories (``test``, ``tests``, ``idle_test``: huge, and full of deliberately
  odd encodings), ``encodings`` and ``pydoc_data`` (generated code tables and documentation
  strings, not code), ``__pycache__``; files that are not valid UTF-8 or contain NUL bytes;
* at most ``max_bytes`` bytes, taking whole files in sorted path order.

Subsets (``pycode:<subset>``), disjoint by top-level package, for pretrain-then-fine-tune:

* ``pretrain``: everything except the fine-tuning packages;
* ``finetune``: the networking / concurrency packages in ``FINETUNE_PACKAGES`` (a domain shift:
  sockets, protocols, event loops, mail);
* ``all`` (the default for plain ``pycode``): both;
* ``docs``: not code at all: the English reference documentation the interpreter ships for
  ``help()`` (the topic strings of ``pydoc_data/topics.py``, one document per topic, sorted by
  name). No subset above holds it, so a base pretrained on ``pretrain`` has never seen prose:
  the benchmark's task with a real base-to-AdamW gap.

Within a subset, files go to validation by a keyed hash of their relative path and the data
seed: about 10% of them, 20% for the small ``finetune`` subset so that its validation set holds
more than a handful of files (``VALIDATION_FRACTIONS``); see ``training.tasks.corpus``.
"""

from __future__ import annotations

import ast
import functools
import sysconfig
from pathlib import Path, PurePosixPath

from protocol.errors import ConfigError
from training.tasks.corpus import (
    DEFAULT_VALIDATION_FRACTION,
    CorpusTask,
    Document,
    split_for_task,
)

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
SKIPPED_DIRS = frozenset(
    {"site-packages", "dist-packages", "test", "tests", "idle_test", "__pycache__"}
)
SKIPPED_PACKAGES = frozenset({"encodings", "pydoc_data"})
FINETUNE_PACKAGES = frozenset(
    {"asyncio", "concurrent", "email", "http", "json", "urllib", "wsgiref", "xmlrpc"}
)
SUBSETS = ("all", "pretrain", "finetune", "docs")
VALIDATION_FRACTIONS = {"all": DEFAULT_VALIDATION_FRACTION, "pretrain": 0.1, "finetune": 0.2,
                        "docs": 0.1}
DOCS_FILE = PurePosixPath("pydoc_data/topics.py")


def stdlib_root() -> Path:
    """The standard library directory of the running interpreter."""
    return Path(sysconfig.get_paths()["stdlib"])


def in_subset(relpath: str, subset: str) -> bool:
    """Whether the stdlib file ``relpath`` (POSIX, relative) belongs to ``subset``."""
    parts = PurePosixPath(relpath).parts
    package = parts[0] if len(parts) > 1 else ""
    if subset == "all":
        return True
    if subset == "finetune":
        return package in FINETUNE_PACKAGES
    if subset == "pretrain":
        return package not in FINETUNE_PACKAGES
    raise ConfigError(f"unknown pycode subset {subset!r}; choose one of {', '.join(SUBSETS)}")


def candidate_files(root: Path) -> list[str]:
    """Relative POSIX paths of the stdlib sources a task may use, sorted."""
    found = []
    for path in root.rglob("*.py"):
        rel = path.relative_to(root)
        if SKIPPED_DIRS.intersection(rel.parts[:-1]):
            continue
        if len(rel.parts) > 1 and rel.parts[0] in SKIPPED_PACKAGES:
            continue
        if path.is_file():
            found.append(rel.as_posix())
    return sorted(found)


def is_clean_text(data: bytes) -> bool:
    """UTF-8 without NUL bytes (the same rule the text loader enforces)."""
    if b"\0" in data:
        return False
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


@functools.lru_cache(maxsize=8)
def load_sources(root: str, subset: str, max_bytes: int) -> tuple[Document, ...]:
    """The subset's files as documents, whole files in sorted order, up to ``max_bytes``.

    Cached: every miner of an in-process swarm shares one copy.
    """
    docs: list[Document] = []
    total = 0
    for rel in candidate_files(Path(root)):
        if not in_subset(rel, subset):
            continue
        data = (Path(root) / rel).read_bytes()
        if not data or not is_clean_text(data):
            continue
        if total + len(data) > max_bytes:
            break
        docs.append(Document(rel, data))
        total += len(data)
    if not docs:
        raise ConfigError(f"no usable Python sources for pycode:{subset} under {root}")
    return tuple(docs)


@functools.lru_cache(maxsize=2)
def load_doc_topics(root: str, max_bytes: int) -> tuple[Document, ...]:
    """The ``docs`` subset: each help topic's text as a document, sorted by topic name."""
    path = Path(root) / DOCS_FILE
    try:
        tree = ast.parse(path.read_bytes(), filename=str(path))
        topics = next(
            ast.literal_eval(node.value) for node in tree.body
            if isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "topics" for t in node.targets)
        )
    except (OSError, SyntaxError, ValueError, StopIteration) as exc:
        raise ConfigError(f"pycode:docs needs {path} with its topics table ({exc})") from exc
    docs: list[Document] = []
    total = 0
    for name in sorted(topics):
        data = str(topics[name]).encode("utf-8")
        if not data or not is_clean_text(data):
            continue
        if total + len(data) > max_bytes:
            break
        docs.append(Document(f"{DOCS_FILE}#{name}", data))
        total += len(data)
    if not docs:
        raise ConfigError(f"no usable topics in {path}")
    return tuple(docs)


def make_pycode_task(
    subset: str = "all",
    *,
    context: int = 64,
    seed: int = 0,
    max_bytes: int | None = None,
    root: Path | None = None,
    validation_fraction: float | None = None,
) -> CorpusTask:
    """The ``pycode:<subset>`` task over this interpreter's stdlib (or ``root``)."""
    if subset not in SUBSETS:
        raise ConfigError(f"unknown pycode subset {subset!r}; choose one of {', '.join(SUBSETS)}")
    limit = DEFAULT_MAX_BYTES if max_bytes is None else max_bytes
    if limit <= 0:
        raise ConfigError(f"max_bytes must be positive, got {limit}")
    fraction = VALIDATION_FRACTIONS[subset] if validation_fraction is None else validation_fraction
    if subset == "docs":
        docs = load_doc_topics(str(root or stdlib_root()), limit)
    else:
        docs = load_sources(str(root or stdlib_root()), subset, limit)
    train, val = split_for_task(docs, seed, fraction, context)
    name = "pycode" if subset == "all" else f"pycode:{subset}"
    identity = f"pycode:{subset}|seed={seed}|fraction={fraction}|max_bytes={limit}"
    return CorpusTask(name, train, val, context=context, identity=identity)
