"""A worker that speaks RXON v1 by hand, message by message, for tests that need exact control
over what is sent and when (duplicates, stale results, another worker's results)."""

import time
from typing import Any

import aiohttp

from avtomatika.protocol import signing
from tests.conftest import WORKER_TOKEN


class WireWorker:
    def __init__(
        self, session: aiohttp.ClientSession, url: str, worker_id: str, token: str = WORKER_TOKEN
    ) -> None:
        self.session = session
        self.url = url
        self.worker_id = worker_id
        self.token = token

    @property
    def headers(self) -> dict[str, str]:
        return {"X-Worker-Token": self.token}

    def sign(
        self,
        message: dict[str, Any],
        exclude: tuple[str, ...] = ("security",),
        timestamp: float | None = None,
    ) -> dict[str, Any]:
        """Sign ``message`` as this worker, stamped now (or at ``timestamp``, to test replays)."""
        message = {**message, "timestamp": time.time() if timestamp is None else timestamp}
        message["security"] = {
            "signature": signing.signature(self.token, message, exclude=exclude),
            "signer_id": self.worker_id,
        }
        return message

    async def register(self, *skills: str, capacity: int = 4, **extra: Any) -> dict[str, Any]:
        body = self.sign(
            {
                "worker_id": self.worker_id,
                "supported_skills": [{"name": s} for s in skills],
                "resources": {"max_concurrent_tasks": capacity},
                "capabilities": {"hostname": "test", "cost_per_skill": {}, "extra": {}},
                **extra,
            }
        )
        async with self.session.post(
            f"{self.url}/_worker/workers/register", json=body, headers=self.headers
        ) as r:
            assert r.status == 200, await r.text()
            result: dict[str, Any] = await r.json()
            return result

    async def poll(self) -> dict[str, Any] | None:
        async with self.session.get(
            f"{self.url}/_worker/workers/{self.worker_id}/tasks/next", headers=self.headers
        ) as r:
            if r.status == 204:
                return None
            assert r.status == 200, await r.text()
            task: dict[str, Any] = await r.json()
            return task

    async def poll_until_task(self, attempts: int = 10) -> dict[str, Any]:
        for _ in range(attempts):
            task = await self.poll()
            if task is not None:
                return task
        raise AssertionError(f"worker {self.worker_id} received no task")

    async def result(
        self,
        task: dict[str, Any],
        status: str = "success",
        data: Any = None,
        error: dict[str, Any] | None = None,
        worker_id: str | None = None,
    ) -> tuple[int, Any]:
        body = self.sign(
            {
                "job_id": task["job_id"],
                "task_id": task["task_id"],
                "worker_id": worker_id or self.worker_id,
                "status": status,
                "data": data,
                "error": error,
            }
        )
        async with self.session.post(
            f"{self.url}/_worker/tasks/result", json=body, headers=self.headers
        ) as r:
            return r.status, await r.json()

    async def heartbeat(
        self, current_tasks: list[str] | None = None, status: str = "idle"
    ) -> tuple[int, Any]:
        body = self.sign(
            {"worker_id": self.worker_id, "status": status, "current_tasks": current_tasks or []}
        )
        async with self.session.patch(
            f"{self.url}/_worker/workers/{self.worker_id}", json=body, headers=self.headers
        ) as r:
            return r.status, await r.json()

    async def event(self, task: dict[str, Any], event_type: str, payload: dict[str, Any]) -> tuple[int, Any]:
        body = self.sign(
            {
                "event_id": f"evt-{time.time_ns()}",
                "worker_id": self.worker_id,
                "origin_worker_id": self.worker_id,
                "event_type": event_type,
                "payload": payload,
                "bubbling_chain": [],
                "target_job_id": task["job_id"],
                "target_task_id": task["task_id"],
            },
            exclude=("security", "bubbling_chain"),
        )
        async with self.session.post(f"{self.url}/_worker/events", json=body, headers=self.headers) as r:
            return r.status, await r.json()
