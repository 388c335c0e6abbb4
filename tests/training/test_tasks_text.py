"""The text:<path> task: reads .txt and .jsonl, refuses bad input with a ConfigError naming it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from protocol.errors import ConfigError
from training.tasks import make_task
from training.tasks.text import make_text_task

PARAGRAPH = "The quick brown fox jumps over the lazy dog. " * 8


def write_corpus(root: Path, files: int = 12) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(files):
        (root / f"doc{i:02d}.txt").write_text(f"document {i}: {PARAGRAPH}", encoding="utf-8")
    records = [{"text": f"record {i}: {PARAGRAPH}", "id": i} for i in range(6)]
    (root / "sub").mkdir(exist_ok=True)
    (root / "sub" / "more.jsonl").write_text(
        "\n".join(json.dumps(r) for r in records) + "\n\n", encoding="utf-8"
    )
    return root


def test_reads_txt_and_jsonl_documents(tmp_path: Path) -> None:
    task = make_text_task(write_corpus(tmp_path / "c"), context=16)
    names = set(task.train.names) | set(task.validation.names)
    assert {f"doc{i:02d}.txt" for i in range(12)} <= names
    assert {f"sub/more.jsonl:{i + 1}" for i in range(6)} <= names
    assert not set(task.train.names) & set(task.validation.names)
    batch = task.train_batch(list(range(4)))
    assert batch.inputs.shape == (4, 16)
    name, offset = task.train.locate(0)
    assert offset == 0
    first = bytes(task.train_batch([0]).inputs[0].tolist()).decode()
    if name.endswith(".txt"):
        assert first == (tmp_path / "c" / name).read_text()[:16]
    else:
        assert first == f"record {int(name.rsplit(':', 1)[1]) - 1}: {PARAGRAPH}"[:16]


def test_small_corpus_still_gets_a_validation_document(tmp_path: Path) -> None:
    for i in range(2):
        (tmp_path / f"d{i}.txt").write_text(f"{i} {PARAGRAPH}")
    task = make_text_task(tmp_path, context=16)
    assert len(task.train.names) == len(task.validation.names) == 1
    assert task.train.names != task.validation.names


def test_jsonl_text_field_is_what_is_modelled(tmp_path: Path) -> None:
    path = tmp_path / "only.jsonl"
    path.write_text(json.dumps({"text": "abcdefgh" * 40, "label": "zzzz"}) + "\n")
    task = make_text_task(path, context=8)
    seen = b"".join(bytes(task.train_batch([i]).inputs[0].tolist()) for i in range(len(task.train)))
    assert seen and set(seen) <= set(b"abcdefgh")


def test_single_file_falls_back_to_a_tail_split(tmp_path: Path) -> None:
    path = tmp_path / "one.txt"
    path.write_text(PARAGRAPH * 4)
    task = make_task(f"text:{path}", context=16)
    assert task.num_train_samples() > 0
    assert task.validation_batch().inputs.shape[1] == 16


def test_fingerprint_ignores_location_but_not_content(tmp_path: Path) -> None:
    a = write_corpus(tmp_path / "a")
    b = tmp_path / "elsewhere" / "b"
    shutil.copytree(a, b)
    assert make_text_task(a).fingerprint() == make_text_task(b).fingerprint()
    (b / "doc00.txt").write_text("changed " + PARAGRAPH)
    assert make_text_task(a).fingerprint() != make_text_task(b).fingerprint()


@pytest.mark.parametrize(
    ("filename", "content", "message"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.txt", b" \n\n ", "empty"),
        ("nul.txt", b"hello\x00world" * 20, "binary"),
        ("latin1.txt", "caf\u00e9 ".encode("latin-1") * 30, "not UTF-8"),
        ("bad.jsonl", b'{"text": "ok"}\n{not json}\n', "invalid JSON"),
        ("notext.jsonl", b'{"body": "no text field"}\n', '"text"'),
        ("emptytext.jsonl", b'{"text": ""}\n', "no non-empty"),
    ],
)
def test_rejects_bad_files_naming_them(
    tmp_path: Path, filename: str, content: bytes, message: str
) -> None:
    root = write_corpus(tmp_path / "corpus")
    (root / filename).write_bytes(content)
    with pytest.raises(ConfigError, match=message) as caught:
        make_task(f"text:{root}")
    assert filename in str(caught.value)


def test_rejects_unreadable_file(tmp_path: Path) -> None:
    root = write_corpus(tmp_path / "corpus")
    # A dangling link cannot be read even by root (chmod 000 can).
    (root / "gone.txt").symlink_to(tmp_path / "missing.txt")
    with pytest.raises(ConfigError, match="cannot read") as caught:
        make_task(f"text:{root}")
    assert "gone.txt" in str(caught.value)


def test_rejects_missing_paths_and_empty_directories(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        make_task(f"text:{tmp_path / 'nope'}")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "image.png").write_bytes(b"\x89PNG")
    with pytest.raises(ConfigError, match=r"no \.txt or \.jsonl"):
        make_task(f"text:{tmp_path / 'empty'}")
    with pytest.raises(ConfigError, match="needs a path"):
        make_task("text:")


def test_too_little_text_for_the_context_is_refused(tmp_path: Path) -> None:
    (tmp_path / "tiny.txt").write_text("short")
    with pytest.raises(ConfigError, match="too little data"):
        make_task(f"text:{tmp_path}", context=64)
