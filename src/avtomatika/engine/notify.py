"""Telling the outside world what happened to a job, after the change is committed: its webhook
and the engine's in-process callbacks (``on_job_finished``, ``on_worker_event``).

Worker events and the events a blueprint's handler emits (``actions.send_event``) take the same
road: a ``worker_event:<type>`` webhook for the job they concern, and the ``on_worker_event``
callbacks, called in the background so that no callback holds up the engine.
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple

from avtomatika.core.documents import document
from avtomatika.core.records import Job
from avtomatika.engine.webhooks import WebhookPayload, WebhookSender
from avtomatika.protocol.constants import WEBHOOK_EVENT_BY_STATUS

logger = logging.getLogger(__name__)

JobFinishedCallback = Callable[[str, str, dict[str, Any]], Awaitable[None]]
WorkerEventCallback = Callable[[str, dict[str, Any]], Awaitable[None]]


class JobEvent(NamedTuple):
    """An event about a job: from a worker (``source`` is its id) or from the blueprint's own
    handler (``source`` is ``blueprint:<name>``)."""

    source: str
    event_type: str
    payload: dict[str, Any]
    security: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None


class Notifier:
    def __init__(
        self,
        webhooks: WebhookSender,
        on_job_finished: list[JobFinishedCallback],
        on_worker_event: list[WorkerEventCallback],
    ) -> None:
        self.webhooks = webhooks
        self.on_job_finished = on_job_finished
        self.on_worker_event = on_worker_event
        self._callbacks: set[asyncio.Task[None]] = set()

    async def job_ended(self, job: Job) -> None:
        if job.webhook_url:
            self.webhooks.send(
                job.webhook_url,
                WebhookPayload(
                    event=WEBHOOK_EVENT_BY_STATUS[job.status].value,
                    job_id=job.id,
                    status=job.status.value,
                    result=job.state_history,
                    error=job.error_message,
                    security=job.security,
                    metadata=job.metadata,
                ),
            )
        doc = document(job) if self.on_job_finished else {}
        for callback in self.on_job_finished:
            try:
                await callback(job.id, job.status.value, doc)
            except Exception:
                logger.exception("on_job_finished callback failed for job %s", job.id)

    def event(self, job: Job | None, event: JobEvent) -> None:
        """An event was accepted (about ``job``, if it names one)."""
        if job is not None and job.webhook_url:
            self.webhooks.send(
                job.webhook_url,
                WebhookPayload(
                    event=f"worker_event:{event.event_type}",
                    job_id=job.id,
                    status=job.status.value,
                    result=event.payload,
                    error=None,
                    security=event.security,
                    metadata=event.metadata,
                ),
            )
        if not self.on_worker_event:
            return
        described = {**event._asdict(), "job_id": job.id if job is not None else None}
        for callback in self.on_worker_event:
            task = asyncio.create_task(self._call(callback, event.source, described))
            self._callbacks.add(task)
            task.add_done_callback(self._callbacks.discard)

    @staticmethod
    async def _call(callback: WorkerEventCallback, source: str, described: dict[str, Any]) -> None:
        try:
            await callback(source, described)
        except Exception:
            logger.exception("on_worker_event callback failed for an event from %s", source)
