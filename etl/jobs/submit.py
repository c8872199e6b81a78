"""How a job runs its units of work: at once, in this thread (scripts, tests, the CLI), or as
Prefect task runs (the flows). A job takes a :class:`Submit`; the flows pass one that maps each
unit function to its Prefect task, so a job's sequence is written once and Prefect stays a thin
layer around it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

T = TypeVar("T")
T_co = TypeVar("T_co", covariant=True)


class Pending(Protocol[T_co]):
    """A unit of work submitted: ``result()`` waits for it and returns (or raises) its outcome.
    Prefect's futures and ``concurrent.futures.Future`` both are one."""

    def result(self) -> T_co: ...


class Submit(Protocol):
    def __call__(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Pending[T]: ...


@dataclass(frozen=True)
class Done(Generic[T]):
    value: T

    def result(self) -> T:
        return self.value


def run_now(fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Done[T]:
    """The default :class:`Submit`: runs the unit at once; its exception propagates here."""
    return Done(fn(*args, **kwargs))
