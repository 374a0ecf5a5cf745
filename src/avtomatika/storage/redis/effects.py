"""Arguments of the ``apply`` script: a job change and its effects, flattened for Lua.

Everything is encoded and checked here, before the script runs: a script that fails half-way
is not rolled back by Redis, so no value the script would refuse may reach it.
"""

import math
import secrets
from collections.abc import Iterable
from typing import Literal

from msgspec.structs import replace

from avtomatika.core.effects import Effects
from avtomatika.core.records import Job, TaskRecord
from avtomatika.protocol.constants import TERMINAL_STATUSES
from avtomatika.storage.base import IdempotencyClaim
from avtomatika.storage.redis.codec import pack

Arg = str | bytes | int | float


def milliseconds(seconds: float) -> int:
    """A positive PX/PEXPIRE argument: Redis refuses zero or negative expiry times."""
    return max(1, math.ceil(seconds * 1000))


def score(value: float | None, what: str) -> Arg:
    """A sorted-set score argument ('' for none); NaN would fail inside a script."""
    if value is None:
        return ""
    if math.isnan(value):
        raise ValueError(f"{what} must be a number, not NaN")
    return value


async def apply_args(
    mode: Literal["create", "commit"],
    job: Job,
    expected_version: int,
    effects: Effects,
    now: float,
    job_retention: float,
    task_retention: float,
    claim: IdempotencyClaim | None = None,
) -> list[Arg]:
    """ARGV (after the prefix) for ``apply.lua``, in the order it reads them. The change gets a
    token of its own, stored with the job: sent again after its reply was lost, the change is
    recognised as done instead of refused as a clash or a stale version. A creation may claim
    an idempotency key with its job."""
    stored = replace(job, version=1 if mode == "create" else expected_version + 1)
    args: list[Arg] = [mode, job.id, expected_version, secrets.token_hex(8)]
    if claim is None:
        args += ["", "", ""]
    else:
        args += [claim.key, claim.fingerprint, milliseconds(claim.ttl)]
    args.append(stored.version)
    args += [job.client_id, await pack(stored)]
    args += [_job_ttl(job, job_retention), milliseconds(now + job_retention)]
    args += [now, milliseconds(now), effects.release_lease or ""]
    args += [milliseconds(task_retention), now + task_retention]
    args.append(score(effects.run_at, "run_at"))
    _add_ids(args, effects.drop_tasks)
    _add_ids(args, effects.cancel_tasks)
    args.append(len(effects.push_tasks))
    for task in effects.push_tasks:
        args += await _task_args(task)
    args.append(len(effects.create_jobs))
    for child in effects.create_jobs:
        args += [
            child.id,
            child.client_id,
            await pack(replace(child, version=1)),
            _job_ttl(child, job_retention),
        ]
    _add_ids(args, effects.wake_jobs)
    return args


def _job_ttl(job: Job, job_retention: float) -> Arg:
    """Terminal jobs expire after the retention (W-29: nothing grows without bound)."""
    return milliseconds(job_retention) if job.status in TERMINAL_STATUSES else ""


def _add_ids(args: list[Arg], ids: Iterable[str]) -> None:
    items = list(ids)
    args.append(len(items))
    args += items


async def _task_args(task: TaskRecord) -> list[Arg]:
    """id, worker, queue score (-priority), queued deadline, execution timeout, result deadline,
    blob, job id."""
    return [
        task.task_id,
        task.worker_id,
        score(-task.priority, f"Task {task.task_id!r} priority"),
        score(task.queued_deadline(), f"Task {task.task_id!r} deadline"),
        score(task.execution_timeout, f"Task {task.task_id!r} execution_timeout"),
        score(task.result_deadline, f"Task {task.task_id!r} result_deadline"),
        await pack(task),
        task.job_id,
    ]
