"""The pycode task: a deterministic by-file split and recomputable fixed-length samples."""

from __future__ import annotations

from pathlib import PurePosixPath

import pytest

from protocol.errors import ConfigError
from training.tasks import Task, make_task
from training.tasks.corpus import CorpusTask
from training.tasks.pycode import FINETUNE_PACKAGES, make_pycode_task, stdlib_root

# Bounded so the tests read a few MB, not the whole library.
MAX_BYTES = 3_000_000


@pytest.fixture(scope="module")
def task() -> CorpusTask:
    return make_pycode_task("all", context=32, seed=0, max_bytes=MAX_BYTES)


def test_split_is_by_file_and_covers_every_file(task: CorpusTask) -> None:
    train, val = set(task.train.names), set(task.validation.names)
    assert train and val
    assert not train & val
    assert all(name.endswith(".py") for name in train | val)
    assert not any("site-packages" in PurePosixPath(n).parts for n in train | val)
    assert task.train.num_bytes + task.validation.num_bytes <= MAX_BYTES


def test_split_is_deterministic_and_seeded(task: CorpusTask) -> None:
    again = make_pycode_task("all", context=32, seed=0, max_bytes=MAX_BYTES)
    other = make_pycode_task("all", context=32, seed=1, max_bytes=MAX_BYTES)
    assert again.validation.names == task.validation.names
    assert again.fingerprint() == task.fingerprint()
    assert other.validation.names != task.validation.names
    assert other.fingerprint() != task.fingerprint()


def test_batches_have_the_right_shape_and_are_recomputable(task: CorpusTask) -> None:
    assert isinstance(make_task("pycode", context=32, max_bytes=MAX_BYTES), Task)
    indices = [0, 7, task.num_train_samples() - 1, 7]
    batch = task.train_batch(indices)
    assert batch.inputs.shape == batch.targets.shape == (4, 32)
    assert batch.inputs.dtype == batch.targets.dtype
    assert int(batch.inputs.max()) < task.vocab_size == 256
    assert (batch.inputs[:, 1:] == batch.targets[:, :-1]).all()
    assert (batch.inputs[1] == batch.inputs[3]).all()
    fresh = make_pycode_task("all", context=32, seed=0, max_bytes=MAX_BYTES)
    assert (fresh.train_batch(indices).inputs == batch.inputs).all()
    assert (task.random_batch(indices).targets == batch.targets).all()


def test_index_maps_to_file_and_offset(task: CorpusTask) -> None:
    index = task.num_train_samples() // 2
    name, offset = task.train.locate(index)
    raw = (stdlib_root() / name).read_bytes()[offset : offset + 33]
    batch = task.train_batch([index])
    assert bytes(batch.inputs[0].tolist()) == raw[:32]
    assert bytes(batch.targets[0].tolist()) == raw[1:]
    with pytest.raises(IndexError):
        task.train_batch([task.num_train_samples()])


def test_validation_batch_is_fixed(task: CorpusTask) -> None:
    first, second = task.validation_batch(), task.validation_batch()
    assert first.inputs.shape[1] == 32
    assert (first.inputs == second.inputs).all()


def test_pretrain_and_finetune_subsets_are_disjoint_packages() -> None:
    pre = make_pycode_task("pretrain", context=32, max_bytes=MAX_BYTES)
    fine = make_pycode_task("finetune", context=32, max_bytes=MAX_BYTES)
    pre_files = set(pre.train.names) | set(pre.validation.names)
    fine_files = set(fine.train.names) | set(fine.validation.names)
    assert pre_files and fine_files and not pre_files & fine_files
    assert all(PurePosixPath(f).parts[0] in FINETUNE_PACKAGES for f in fine_files)
    assert pre.fingerprint() != fine.fingerprint()


def test_unknown_specs_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="subset"):
        make_task("pycode:everything")
    with pytest.raises(ConfigError, match="unknown task"):
        make_task("imagenet")
