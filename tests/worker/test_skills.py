import asyncio
import threading
from typing import Any

import pytest

from avtomatika.protocol.models import SkillInfo, TaskPayload
from avtomatika.worker.errors import SkillDefinitionError
from avtomatika.worker.skills import INJECTABLE, SkillRegistry, make_skill

PAYLOAD = TaskPayload(
    job_id="job-1",
    task_id="task-1",
    type="resize",
    params={"width": 640},
    priority=5.0,
    deadline=1_800_000_000.5,
    metadata={"tenant": "acme"},
)


class ProgressRecorder:
    def __init__(self) -> None:
        self.calls: list[tuple[float, str]] = []

    async def __call__(self, fraction: float, message: str = "") -> None:
        self.calls.append((fraction, message))


async def test_every_injectable_parameter_receives_its_value() -> None:
    seen: dict[str, Any] = {}

    async def handler(params, task_id, job_id, priority, deadline, metadata, progress):  # type: ignore[no-untyped-def]
        seen.update(locals())
        await progress(0.5, "half")
        return "ok"

    recorder = ProgressRecorder()
    skill = make_skill(SkillInfo(name="resize"), handler)
    assert skill.injected == INJECTABLE
    assert await skill.invoke(PAYLOAD, recorder) == "ok"
    assert seen["params"] == {"width": 640}
    assert (seen["task_id"], seen["job_id"]) == ("task-1", "job-1")
    assert (seen["priority"], seen["deadline"], seen["metadata"]) == (
        5.0,
        1_800_000_000.5,
        {"tenant": "acme"},
    )
    assert recorder.calls == [(0.5, "half")]


async def test_handler_receives_only_what_it_asks_for() -> None:
    async def handler(job_id: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        return job_id, params

    skill = make_skill(SkillInfo(name="resize"), handler)
    assert skill.injected == ("job_id", "params")
    assert await skill.invoke(PAYLOAD, ProgressRecorder()) == ("job-1", {"width": 640})


async def test_missing_metadata_is_injected_as_an_empty_dict() -> None:
    async def handler(metadata: dict[str, Any]) -> dict[str, Any]:
        return metadata

    skill = make_skill(SkillInfo(name="x"), handler)
    payload = TaskPayload(job_id="j", task_id="t", type="x")
    assert await skill.invoke(payload, ProgressRecorder()) == {}


def test_an_unknown_required_parameter_fails_at_registration_naming_skill_and_parameter() -> None:
    async def handler(params: dict[str, Any], widht: int) -> None: ...

    with pytest.raises(SkillDefinitionError, match=r"skill 'resize': parameter 'widht'"):
        make_skill(SkillInfo(name="resize"), handler)


def test_a_positional_only_injectable_name_cannot_be_injected() -> None:
    async def handler(params: dict[str, Any], /) -> None: ...

    with pytest.raises(SkillDefinitionError, match="'params'"):
        make_skill(SkillInfo(name="resize"), handler)


async def test_parameters_with_defaults_and_var_arguments_are_left_alone() -> None:
    async def handler(params: dict[str, Any], scale: int = 2, *args: Any, **kwargs: Any) -> Any:
        return params["width"] * scale, args, kwargs

    skill = make_skill(SkillInfo(name="resize"), handler)
    assert skill.injected == ("params",)
    assert await skill.invoke(PAYLOAD, ProgressRecorder()) == (1280, (), {})


async def test_sync_handlers_run_in_a_thread_with_a_blocking_progress() -> None:
    loop_thread = threading.get_ident()

    def handler(params: dict[str, Any], progress: Any) -> int:
        progress(0.25, "quarter")
        assert threading.get_ident() != loop_thread
        return int(params["width"])

    recorder = ProgressRecorder()
    skill = make_skill(SkillInfo(name="resize"), handler)
    assert not skill.is_async
    assert await skill.invoke(PAYLOAD, recorder) == 640
    assert recorder.calls == [(0.25, "quarter")]


async def test_a_sync_handler_does_not_block_the_event_loop() -> None:
    release = threading.Event()

    def handler() -> str:
        release.wait(5)
        return "done"

    skill = make_skill(SkillInfo(name="slow"), handler)
    running = asyncio.create_task(skill.invoke(PAYLOAD, ProgressRecorder()))
    await asyncio.sleep(0.05)
    assert not running.done()
    release.set()
    assert await running == "done"


def test_registry_finds_skills_by_name_then_by_type() -> None:
    async def handler() -> None: ...

    registry = SkillRegistry()
    registry.add(make_skill(SkillInfo(name="whisper", type="transcription"), handler))
    assert registry.find("whisper") is registry.find("transcription")
    assert registry.find("whisper") is not None
    assert registry.find("ocr") is None


def test_registry_refuses_duplicate_names() -> None:
    async def handler() -> None: ...

    registry = SkillRegistry()
    registry.add(make_skill(SkillInfo(name="a"), handler))
    with pytest.raises(SkillDefinitionError, match="'a' is already registered"):
        registry.add(make_skill(SkillInfo(name="a"), handler))


def test_contract_hash_changes_with_the_advertised_skills() -> None:
    async def handler() -> None: ...

    registry = SkillRegistry()
    empty = registry.contract_hash
    registry.add(make_skill(SkillInfo(name="a"), handler))
    assert registry.contract_hash != empty
    other = SkillRegistry()
    other.add(make_skill(SkillInfo(name="a"), handler))
    assert other.contract_hash == registry.contract_hash
    assert len(registry) == 1
    assert [info.name for info in registry.infos()] == ["a"]
