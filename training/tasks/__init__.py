"""Training tasks: numbered, recomputable samples over real or synthetic data."""

from training.tasks.catalog import TASK_SPECS, make_task
from training.tasks.task import Batch, Task

__all__ = ["TASK_SPECS", "Batch", "Task", "make_task"]
