"""How records look to the outside world: no credentials, no internal bookkeeping."""

from typing import Any

from avtomatika.core.codec import to_builtins
from avtomatika.core.records import Job, WorkerRecord


def document(job: Job) -> dict[str, Any]:
    """The job as clients see it: no credentials, no internal bookkeeping."""
    return {
        "id": job.id,
        "blueprint_name": job.blueprint_name,
        "current_state": job.current_state,
        "path": job.path,
        "status": job.status.value,
        "initial_data": job.initial_data,
        "state_history": job.state_history,
        "error_message": job.error_message,
        "retry_count": job.retry_count,
        "transition_count": job.transition_count,
        "created_at": job.created_at,
        "updated_at": job.updated_at,
        "finished_at": job.finished_at,
        "webhook_url": job.webhook_url,
        "dispatch_timeout": job.dispatch_timeout,
        "result_timeout": job.result_timeout,
        "metadata": job.metadata,
        "progress": job.progress,
        "progress_message": job.progress_message,
        "parent_job_id": job.parent_job_id,
        "child_job_id": job.child.job_id if job.child else None,
        "tasks": [
            {"task_id": t.task_id, "type": t.spec.type, "worker_id": t.worker_id, "attempt": t.attempt}
            for t in job.tasks.values()
        ],
        "aggregation_results": job.aggregation_results,
        "results": to_builtins(job.results),
    }


def worker_document(worker: WorkerRecord) -> dict[str, Any]:
    doc: dict[str, Any] = to_builtins(worker)
    doc["supported_skills"] = doc.pop("skills")
    return doc
