"""The published import path of what a handler sees of its job."""

from avtomatika.blueprints.job_context import ClientConfig, JobContext, WorkerInfo

__all__ = ["ClientConfig", "JobContext", "WorkerInfo"]
