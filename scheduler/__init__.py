"""The clock-driven runtime: the worker that fires SLA deadlines on time."""

from casework.scheduler.worker import Worker

__all__ = ["Worker"]
