"""Run a job's units of work as Prefect tasks: the jobs in ``etl.jobs`` take a ``submit``
callable, and this one submits each unit function through the task that wraps it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prefect import Task

from etl.jobs.submit import Pending, Submit


def as_tasks(*tasks: Task[..., Any]) -> Submit:
    """A ``submit`` that runs ``fn(*args)`` as the task whose function is ``fn`` (or wraps it,
    e.g. timed for the metrics); a unit with no task is a programming error and fails loudly."""
    by_fn: dict[Callable[..., Any], Task[..., Any]] = {getattr(t.fn, "__wrapped__", t.fn): t for t in tasks}

    def submit(fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Pending[Any]:
        return by_fn[fn].submit(*args, **kwargs)

    return submit
