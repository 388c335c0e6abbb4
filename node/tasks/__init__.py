"""Training tasks: numbered, recomputable samples over real or synthetic data."""

from node.tasks.base import Batch, Task
from node.tasks.registry import TASK_SPECS, make_task

__all__ = ["TASK_SPECS", "Batch", "Task", "make_task"]
