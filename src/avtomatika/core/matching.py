"""Does a worker satisfy a task's requirements? Numbers compare greater-or-equal (GE)."""

from collections.abc import Mapping, Sequence
from typing import Any

from avtomatika.core.records import TaskSpec, WorkerRecord


def _ge_or_equal(have: Any, want: Any) -> bool:
    if isinstance(want, bool) or isinstance(have, bool):
        # Not ``have == want``: Python has True == 1, and a flag is not a count.
        return type(have) is type(want) and have == want
    if isinstance(want, int | float) and isinstance(have, int | float):
        return have >= want
    return bool(have == want)


def _properties_match(have: Mapping[str, Any] | None, want: Mapping[str, Any] | None) -> bool:
    if not want:
        return True
    have = have or {}
    return all(key in have and _ge_or_equal(have[key], value) for key, value in want.items())


def _device_matches(device: Mapping[str, Any], want: Mapping[str, Any]) -> bool:
    if want.get("type") and device.get("type") != want["type"]:
        return False
    model = want.get("model")
    if model and str(model).lower() not in str(device.get("model") or "").lower():
        return False
    if want.get("id") is not None and device.get("id") != want["id"]:
        return False
    return _properties_match(device.get("properties"), want.get("properties"))


def _resources_match(worker: WorkerRecord, want: Mapping[str, Any]) -> bool:
    res = worker.resources
    for key in ("cpu_cores", "ram_gb", "max_concurrent_tasks"):
        if key in want and not _ge_or_equal(getattr(res, key) or 0, want[key]):
            return False
    devices = [
        {"type": d.type, "model": d.model, "id": d.id, "properties": d.properties} for d in res.devices or []
    ]
    if not _devices_assignable(devices, list(want.get("devices") or [])):
        return False
    return _properties_match(res.properties, want.get("properties"))


def _devices_assignable(devices: Sequence[Mapping[str, Any]], wanted: Sequence[Mapping[str, Any]]) -> bool:
    """Each wanted device gets a device of its own: two wanted GPUs need two GPUs, not one twice.
    A bipartite matching by augmenting paths (a task asks for a handful of devices)."""
    holder: dict[int, int] = {}
    """Device index -> index of the wanted device it is assigned to."""

    def assign(want_index: int, tried: set[int]) -> bool:
        for index, device in enumerate(devices):
            if index in tried or not _device_matches(device, wanted[want_index]):
                continue
            tried.add(index)
            if index not in holder or assign(holder[index], tried):
                holder[index] = want_index
                return True
        return False

    return len(wanted) <= len(devices) and all(assign(i, set()) for i in range(len(wanted)))


def _software_match(worker: WorkerRecord, want: Mapping[str, str]) -> bool:
    for name, version in want.items():
        have = worker.installed_software.get(name)
        if have is None or (version not in ("any", "*") and have != version):
            return False
    return True


def _artifacts_match(worker: WorkerRecord, wanted: list[Any]) -> bool:
    installed = {a.name: a for a in worker.installed_artifacts}
    for item in wanted:
        spec: dict[str, Any] = {"name": item} if isinstance(item, str) else dict(item)
        artifact = installed.get(spec.get("name", ""))
        if artifact is None:
            return False
        version = spec.get("version")
        if version not in (None, "unknown", "any") and artifact.version != version:
            return False
        if not _properties_match(artifact.properties, spec.get("properties")):
            return False
    return True


def cost_of(worker: WorkerRecord, task_type: str) -> float:
    costs = worker.capabilities.cost_per_skill or {}
    return float(costs.get(task_type, 0.0))


def satisfies(worker: WorkerRecord, spec: TaskSpec) -> bool:
    """All requirement groups of resource_requirements, plus max_cost."""
    if spec.max_cost is not None:
        costs = worker.capabilities.cost_per_skill or {}
        if spec.type not in costs or costs[spec.type] > spec.max_cost:
            return False
    req = spec.resource_requirements or {}
    if req.get("resources") and not _resources_match(worker, req["resources"]):
        return False
    if req.get("installed_software") and not _software_match(worker, req["installed_software"]):
        return False
    if req.get("installed_artifacts") and not _artifacts_match(worker, req["installed_artifacts"]):
        return False
    return _properties_match(worker.capabilities.extra, req.get("extra_requirements"))


def is_hot(worker: WorkerRecord, spec: TaskSpec) -> bool:
    """The worker already has the task's skill or model loaded."""
    if spec.type in worker.hot_skills:
        return True
    hint = spec.params.get("resource_hint") or spec.params.get("model_name")
    return isinstance(hint, str) and hint in worker.hot_cache
