"""Public routes: a human approval is taken only from the job's own client."""

from typing import Any

from avtomatika.access.identity import Client
from tests.conftest import OrchestratorFactory
from tests.sample_blueprints import approval_blueprint


async def test_approval_with_another_clients_token_is_refused_and_the_owners_is_taken(
    orchestrator: OrchestratorFactory, backend: Any
) -> None:
    async with orchestrator(approval_blueprint(), storage=backend) as orch:
        orch.engine.services.clients.add("other-token", Client(id="other", plan="free", params={}))
        job_id = await orch.create_job("/api/v1/jobs/review")
        await orch.wait_for(job_id, statuses=("waiting_for_human",))
        url = f"{orch.url}/_public/webhooks/approval/{job_id}"
        other = {"X-Client-Token": "other-token"}
        async with orch.session.post(url, json={"decision": "approved"}, headers=other) as r:
            refused = (r.status, await r.json())
        untouched = await orch.job(job_id)
        async with orch.session.post(url, json={"decision": "rejected"}, headers=orch.headers) as r:
            taken = (r.status, await r.json())
        doc = await orch.wait_for(job_id)
    # Another client's job is reported as missing, exactly as one that does not exist.
    assert refused[0] == 404
    assert refused[1]["error"] == "not_found"
    assert untouched["status"] == "waiting_for_human"
    assert "approval_decision" not in untouched["state_history"]
    assert taken == (200, {"status": "approval_received", "job_id": job_id})
    assert (doc["status"], doc["current_state"]) == ("finished", "dropped")
    assert doc["state_history"]["approval_decision"] == "rejected"
