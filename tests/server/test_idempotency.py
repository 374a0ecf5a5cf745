"""``Idempotency-Key`` on job creation: a create sent again with its key gets the job the first
one made, never a second job, even when the first timed out in a Redis stall."""

import asyncio
from typing import Any

import aiohttp
import pytest

from avtomatika.access.identity import Client
from avtomatika.storage.redis.backend import RedisStorage
from tests.conftest import Orchestrator, OrchestratorFactory
from tests.sample_blueprints import echo_blueprint
from tests.storage.conftest import started_redis, wait_for_server

ECHO = "/api/v1/jobs/echo"
KEY = "Idempotency-Key"
REPLAYED = "Idempotent-Replayed"


async def create(
    orch: Orchestrator, key: str | None, body: Any, path: str = ECHO, token: str | None = None
) -> tuple[int, dict[str, Any], bool]:
    """Status, JSON body and whether the answer was a replay of an earlier create."""
    headers = {**orch.headers, **({} if token is None else {"X-Client-Token": token})}
    if key is not None:
        headers[KEY] = key
    async with orch.session.post(orch.url + path, json=body, headers=headers) as r:
        return r.status, await r.json(), r.headers.get(REPLAYED) == "true"


async def listed(orch: Orchestrator, token: str | None = None) -> list[str]:
    headers = orch.headers if token is None else {"X-Client-Token": token}
    async with orch.session.get(f"{orch.url}/api/v1/jobs", headers=headers) as r:
        assert r.status == 200, await r.text()
        return [doc["id"] for doc in await r.json()]


async def test_a_create_sent_again_with_its_key_gets_the_original_job(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    body = {"initial_data": {"order": 42, "items": [1, 2]}, "metadata": {"tenant": "acme"}}
    reordered = {"metadata": {"tenant": "acme"}, "initial_data": {"items": [1, 2], "order": 42}}
    async with orchestrator(echo_blueprint(), storage=backend) as orch:
        first = await create(orch, "order-42", body)
        again = await create(orch, "order-42", reordered)
        jobs = await listed(orch)
    assert first[0] == again[0] == 202
    assert first[1] == again[1] == {"status": "accepted", "job_id": first[1]["job_id"]}
    assert (first[2], again[2]) == (False, True)
    assert jobs == [first[1]["job_id"]]


async def test_a_key_reused_with_another_request_is_a_409(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint(), echo_blueprint("other")) as orch:
        status, created, _ = await create(orch, "k-1", {"initial_data": {"n": 1}})
        assert status == 202
        for body, path in (
            ({"initial_data": {"n": 2}}, ECHO),
            ({"initial_data": {"n": 1}}, "/api/v1/jobs/other"),
        ):
            status, error, _ = await create(orch, "k-1", body, path)
            assert status == 409
            assert error["error"] == "idempotency_key_reused"
            assert KEY in error["message"]
            assert error["details"] == {"job_id": created["job_id"]}
        assert await listed(orch) == [created["job_id"]]


async def test_keys_are_per_client(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        orch.engine.services.clients.add("other-token", Client(id="other", plan="free", params={}))
        body = {"initial_data": {"n": 1}}
        _, mine, _ = await create(orch, "shared-key", body)
        status, theirs, replayed = await create(orch, "shared-key", body, token="other-token")
        assert (status, replayed) == (202, False)
        assert theirs["job_id"] != mine["job_id"]
        assert await listed(orch, "other-token") == [theirs["job_id"]]


async def test_the_original_id_is_returned_after_its_job_ended(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    async with orchestrator(echo_blueprint(), storage=backend) as orch:
        _, created, _ = await create(orch, "k-1", {})
        job_id = created["job_id"]
        async with orch.session.post(f"{orch.url}/api/v1/jobs/{job_id}/cancel", headers=orch.headers) as r:
            assert r.status == 200
        assert (await orch.job(job_id))["status"] == "cancelled"
        assert await create(orch, "k-1", {}) == (202, {"status": "accepted", "job_id": job_id}, True)


async def test_a_key_is_free_again_after_its_ttl(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint(), IDEMPOTENCY_KEY_TTL_SECONDS=0.3) as orch:
        _, first, _ = await create(orch, "k-1", {})
        await asyncio.sleep(0.4)
        status, second, replayed = await create(orch, "k-1", {})
    assert (status, replayed) == (202, False)
    assert second["job_id"] != first["job_id"]


async def test_creates_without_a_key_each_make_a_job(orchestrator: OrchestratorFactory) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        ids = {(await create(orch, None, {}))[1]["job_id"] for _ in range(2)}
        assert len(ids) == 2
        assert sorted(await listed(orch)) == sorted(ids)


@pytest.mark.parametrize(
    ("key", "fragment"),
    [("", "must not be empty"), ("k" * 256, "at most 255"), ("a\tb", "printable"), ("clé", "printable")],
)
async def test_bad_idempotency_keys_get_400(
    orchestrator: OrchestratorFactory, key: str, fragment: str
) -> None:
    async with orchestrator(echo_blueprint()) as orch:
        status, error, _ = await create(orch, key, {})
        assert await listed(orch) == []
    assert status == 400
    assert error["error"] == "bad_request"
    assert KEY in error["message"]
    assert fragment in error["message"]
    assert error["details"] == {"header": KEY}


async def test_a_create_retried_across_a_redis_stall_makes_one_job(orchestrator: OrchestratorFactory) -> None:
    """The create times out at the client while Redis is frozen; the orchestrator goes on with
    it (sending it again after one attempt's wait) and the job is made once Redis resumes. The
    client's retry with the same key gets that job, whose id it never received."""
    body = {"initial_data": {"order": 7}}
    with started_redis() as (server, _):
        await wait_for_server(server.url)
        storage = RedisStorage.from_url(server.url, retry_seconds=10)
        async with orchestrator(echo_blueprint(), storage=storage) as orch:
            headers = {**orch.headers, KEY: "order-7"}
            server.pause()
            with pytest.raises(TimeoutError):
                async with orch.session.post(
                    orch.url + ECHO, json=body, headers=headers, timeout=aiohttp.ClientTimeout(total=0.5)
                ):
                    pass
            await asyncio.sleep(2.5)  # past one attempt's wait: the orchestrator sends the creation again
            server.resume()
            for _ in range(100):
                if jobs := await listed(orch):
                    break
                await asyncio.sleep(0.05)
            assert len(jobs) == 1, "the timed-out create made its job once Redis was back"
            assert await create(orch, "order-7", body) == (
                202,
                {"status": "accepted", "job_id": jobs[0]},
                True,
            )
            assert await listed(orch) == jobs
