"""Byte corpora cut into fixed-length windows, split into train and validation by document.

A document is one source file (or one JSONL record). Each document is cut into windows of
``context + 1`` bytes starting at multiples of ``context``, so consecutive windows overlap by one
byte and every byte after a document's first is a target exactly once; windows never cross
documents and the tail shorter than a window is dropped. Sample ``i`` is the ``i``-th window of
the documents taken in their given (sorted) order: ``locate(i)`` gives (document, offset).

The split assigns whole documents by a keyed hash of their name, so no text is in both halves
and adding a file moves no other file across the split.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from protocol.errors import ConfigError
from training.tasks.task import Batch

BYTE_VOCAB = 256
DEFAULT_VALIDATION_FRACTION = 0.1
DEFAULT_VALIDATION_SAMPLES = 256


@dataclass(frozen=True)
class Document:
    """A named run of bytes; ``name`` is stable across machines (a relative path)."""

    name: str
    data: bytes


def validation_share(name: str, seed: int) -> float:
    """Where ``name`` falls in [0, 1) under the data seed; below the fraction = validation."""
    digest = hashlib.blake2b(f"{seed}\0{name}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2.0**64


def split_documents(
    docs: Sequence[Document], seed: int, fraction: float
) -> tuple[list[Document], list[Document]]:
    """Whole documents to (train, validation) by keyed hash of their names."""
    if not 0.0 < fraction < 1.0:
        raise ConfigError(f"validation fraction must be in (0, 1), got {fraction}")
    train = [d for d in docs if validation_share(d.name, seed) >= fraction]
    val = [d for d in docs if validation_share(d.name, seed) < fraction]
    return train, val


def split_tails(
    docs: Sequence[Document], fraction: float, context: int
) -> tuple[list[Document], list[Document]]:
    """Fallback for a corpus with a single usable document: each document's last ``fraction``
    of bytes (at least one window) goes to validation, the head to training."""
    train: list[Document] = []
    val: list[Document] = []
    for doc in docs:
        cut = len(doc.data) - max(context + 1, int(len(doc.data) * fraction))
        train.append(Document(f"{doc.name}#head", doc.data[: max(cut, 0)]))
        val.append(Document(f"{doc.name}#tail", doc.data[max(cut, 0) :]))
    return train, val


class WindowedCorpus:
    """Documents concatenated in memory and addressed as fixed-length windows."""

    def __init__(self, docs: Sequence[Document], context: int) -> None:
        if context < 1:
            raise ConfigError(f"context must be positive, got {context}")
        self.context = context
        self.names = tuple(d.name for d in docs)
        joined = b"".join(d.data for d in docs)
        self._bytes = torch.from_numpy(np.frombuffer(joined, dtype=np.uint8).copy())
        self._doc_starts: list[int] = []
        self._first_sample: list[int] = []  # cumulative window counts, one per document
        start = total = 0
        for doc in docs:
            self._doc_starts.append(start)
            self._first_sample.append(total)
            start += len(doc.data)
            total += self.windows_in(len(doc.data))
        self._num_samples = total

    def windows_in(self, length: int) -> int:
        """How many windows a document of ``length`` bytes holds."""
        return max(0, (length - 1) // self.context)

    @property
    def num_bytes(self) -> int:
        return int(self._bytes.numel())

    def __len__(self) -> int:
        return self._num_samples

    def locate(self, index: int) -> tuple[str, int]:
        """(document name, byte offset in it) of sample ``index``."""
        doc, offset = self._position(index)
        return self.names[doc], offset

    def _position(self, index: int) -> tuple[int, int]:
        if not 0 <= index < self._num_samples:
            raise IndexError(f"sample {index} out of range [0, {self._num_samples})")
        doc = bisect.bisect_right(self._first_sample, index) - 1
        return doc, (index - self._first_sample[doc]) * self.context

    def batch(self, indices: Sequence[int]) -> Batch:
        """The windows ``indices`` as a batch (int64, shape (len(indices), context))."""
        if len(indices) == 0:
            raise ConfigError("a batch needs at least one sample index")
        starts = []
        for index in indices:
            doc, offset = self._position(int(index))
            starts.append(self._doc_starts[doc] + offset)
        gather = torch.tensor(starts).unsqueeze(1) + torch.arange(self.context + 1)
        windows = self._bytes[gather].long()
        return Batch(inputs=windows[:, :-1].contiguous(), targets=windows[:, 1:].contiguous())

    def evenly_spaced(self, count: int) -> list[int]:
        """``count`` sample indices spread evenly over the corpus (all of them if fewer)."""
        n = self._num_samples
        if count >= n:
            return list(range(n))
        return [i * n // count for i in range(count)]


def corpus_digest(docs: Sequence[Document]) -> hashlib._Hash:
    """A running hash over document names, sizes and contents, in order."""
    h = hashlib.sha256()
    for doc in docs:
        h.update(doc.name.encode() + b"\0" + str(len(doc.data)).encode() + b"\0")
        h.update(hashlib.sha256(doc.data).digest())
    return h


class CorpusTask:
    """A byte-level language-modelling task over documents split by ``split_documents``."""

    vocab_size = BYTE_VOCAB

    def __init__(
        self,
        name: str,
        train: Sequence[Document],
        validation: Sequence[Document],
        *,
        context: int,
        identity: str,
        validation_samples: int = DEFAULT_VALIDATION_SAMPLES,
    ) -> None:
        self.name = name
        self.context = context
        self.train = WindowedCorpus(train, context)
        self.validation = WindowedCorpus(validation, context)
        if len(self.train) == 0 or len(self.validation) == 0:
            raise ConfigError(
                f"task {name}: too little data for context {context} "
                f"({len(self.train)} train / {len(self.validation)} validation samples)"
            )
        self._validation_indices = self.validation.evenly_spaced(validation_samples)
        h = corpus_digest(train)
        h.update(b"|validation|")
        h.update(corpus_digest(validation).digest())
        h.update(f"|{identity}|context={context}|val={validation_samples}".encode())
        self._fingerprint = h.hexdigest()

    def num_train_samples(self) -> int:
        return len(self.train)

    def train_batch(self, indices: Sequence[int]) -> Batch:
        return self.train.batch(indices)

    def random_batch(self, indices: Sequence[int]) -> Batch:
        return self.train.batch(indices)

    def validation_batch(self) -> Batch:
        return self.validation.batch(self._validation_indices)

    def fingerprint(self) -> str:
        return self._fingerprint

    def describe(self) -> dict[str, int]:
        """Sizes for reports: documents, bytes and samples per split."""
        return {
            "train_documents": len(self.train.names),
            "validation_documents": len(self.validation.names),
            "train_bytes": self.train.num_bytes,
            "validation_bytes": self.validation.num_bytes,
            "train_samples": len(self.train),
            "validation_samples": len(self._validation_indices),
        }


def split_for_task(
    docs: Sequence[Document], seed: int, fraction: float, context: int
) -> tuple[list[Document], list[Document]]:
    """``split_documents``, made to leave at least one window on each side.

    When the hash leaves a side without a window (small corpora), the usable document with the
    lowest hash share joins validation (or the highest leaves it); with a single usable
    document, its tail becomes validation.
    """
    train, val = split_documents(docs, seed, fraction)
    usable = [d for d in docs if len(d.data) > context]
    if len(usable) < 2:
        return split_tails(docs, fraction, context)
    by_share = sorted(usable, key=lambda d: validation_share(d.name, seed))
    held_out = {d.name for d in val}
    if not any(len(d.data) > context for d in val):
        held_out.add(by_share[0].name)
    elif not any(len(d.data) > context for d in train):
        held_out.discard(by_share[-1].name)
    return (
        [d for d in docs if d.name not in held_out],
        [d for d in docs if d.name in held_out],
    )
