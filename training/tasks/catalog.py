"""Task specs to task objects: the one place that knows every task's spec syntax.

Specs: ``synthetic``; ``pycode`` (= ``pycode:all``), ``pycode:pretrain``, ``pycode:finetune``,
``pycode:docs``;
``text:<path>`` (a file or a directory of .txt / .jsonl).
"""

from __future__ import annotations

from protocol.errors import ConfigError
from training.tasks.task import Task

TASK_SPECS = ("synthetic", "pycode", "pycode:pretrain", "pycode:finetune", "pycode:docs",
              "text:<path>")


def make_task(spec: str, *, context: int = 64, seed: int = 0, max_bytes: int | None = None) -> Task:
    """Build the task ``spec`` names; ``seed`` is the data seed, ``max_bytes`` caps file tasks."""
    kind, _, argument = spec.partition(":")
    if kind == "synthetic" and not argument:
        from training.tasks.synthetic import SyntheticTask

        return SyntheticTask(context=context, seed=seed)
    if kind == "pycode":
        from training.tasks.pycode import make_pycode_task

        return make_pycode_task(argument or "all", context=context, seed=seed, max_bytes=max_bytes)
    if kind == "text":
        if not argument:
            raise ConfigError("text task needs a path: text:<file or directory>")
        from training.tasks.text import make_text_task

        return make_text_task(argument, context=context, seed=seed, max_bytes=max_bytes)
    raise ConfigError(f"unknown task {spec!r}; known: {', '.join(TASK_SPECS)}")
