"""Resource matching: numbers compare greater-or-equal, everything else by equality, every
requirement group must hold, and each wanted device needs a device of its own."""

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from avtomatika.core.matching import satisfies
from avtomatika.core.records import TaskSpec, WorkerRecord
from avtomatika.protocol.models import HardwareDevice, InstalledArtifact, Resources, WorkerCapabilities


def gpu(memory_gb: float, model: str = "NVIDIA RTX 4090", **properties: Any) -> HardwareDevice:
    return HardwareDevice(type="gpu", model=model, properties={"memory_gb": memory_gb, **properties})


def worker(
    cpu_cores: int | None = 8,
    ram_gb: float | None = 32,
    devices: list[HardwareDevice] | None = None,
    properties: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    cost: float | None = None,
    **fields: Any,
) -> WorkerRecord:
    return WorkerRecord(
        worker_id="w",
        resources=Resources(cpu_cores=cpu_cores, ram_gb=ram_gb, devices=devices, properties=properties),
        capabilities=WorkerCapabilities(
            cost_per_skill=None if cost is None else {"render": cost}, extra=extra
        ),
        **fields,
    )


def needs(max_cost: float | None = None, **requirements: Any) -> TaskSpec:
    return TaskSpec(type="render", resource_requirements=requirements or None, max_cost=max_cost)


def test_no_requirements_are_met_by_any_worker() -> None:
    assert satisfies(worker(cpu_cores=None, ram_gb=None), needs())


def test_cpu_and_ram_compare_greater_or_equal() -> None:
    w = worker(cpu_cores=8, ram_gb=32)
    assert satisfies(w, needs(resources={"cpu_cores": 8, "ram_gb": 32}))
    assert satisfies(w, needs(resources={"cpu_cores": 4, "ram_gb": 16.5}))
    assert not satisfies(w, needs(resources={"cpu_cores": 9}))
    assert not satisfies(w, needs(resources={"ram_gb": 32.1}))
    assert not satisfies(worker(cpu_cores=None), needs(resources={"cpu_cores": 1}))


def test_gpu_memory_model_and_count() -> None:
    one = worker(devices=[gpu(24)])
    two = worker(devices=[gpu(24), gpu(16, model="NVIDIA A4000")])
    assert satisfies(one, needs(resources={"devices": [{"type": "gpu", "properties": {"memory_gb": 24}}]}))
    assert not satisfies(
        one, needs(resources={"devices": [{"type": "gpu", "properties": {"memory_gb": 48}}]})
    )
    assert satisfies(one, needs(resources={"devices": [{"type": "gpu", "model": "rtx 4090"}]}))
    assert not satisfies(one, needs(resources={"devices": [{"type": "gpu", "model": "a100"}]}))
    assert not satisfies(worker(devices=None), needs(resources={"devices": [{"type": "gpu"}]}))
    pair = {"devices": [{"type": "gpu"}, {"type": "gpu"}]}
    assert not satisfies(one, needs(resources=pair)), "one GPU counted twice"
    assert satisfies(two, needs(resources=pair))


def test_each_wanted_device_gets_its_own_device_whatever_the_order() -> None:
    # The first wanted device fits both GPUs; only the big one fits the second: a greedy
    # first-fit would hand the big GPU to the first and fail.
    w = worker(devices=[gpu(48), gpu(16)])
    wanted = [
        {"type": "gpu", "properties": {"memory_gb": 8}},
        {"type": "gpu", "properties": {"memory_gb": 40}},
    ]
    assert satisfies(w, needs(resources={"devices": wanted}))
    assert not satisfies(w, needs(resources={"devices": [*wanted, {"type": "gpu"}]}))


def test_custom_properties_numbers_ge_others_equal() -> None:
    w = worker(properties={"disk_gb": 500, "region": "eu", "nvme": True}, extra={"tier": 2, "zone": "a"})
    assert satisfies(w, needs(resources={"properties": {"disk_gb": 200, "region": "eu", "nvme": True}}))
    assert not satisfies(w, needs(resources={"properties": {"disk_gb": 501}}))
    assert not satisfies(w, needs(resources={"properties": {"region": "us"}}))
    assert not satisfies(w, needs(resources={"properties": {"nvme": False}}))
    assert not satisfies(w, needs(resources={"properties": {"missing": 1}}))
    assert satisfies(w, needs(extra_requirements={"tier": 1, "zone": "a"}))
    assert not satisfies(w, needs(extra_requirements={"tier": 3}))


def test_booleans_are_not_numbers() -> None:
    assert not satisfies(worker(properties={"count": True}), needs(resources={"properties": {"count": 1}}))
    assert not satisfies(worker(properties={"count": 2}), needs(resources={"properties": {"count": True}}))


def test_software_and_artifacts() -> None:
    w = worker(
        installed_software={"ffmpeg": "6.1"},
        installed_artifacts=[InstalledArtifact(name="sdxl", version="1.0", properties={"size_gb": 7})],
    )
    assert satisfies(w, needs(installed_software={"ffmpeg": "6.1"}))
    assert satisfies(w, needs(installed_software={"ffmpeg": "any"}))
    assert not satisfies(w, needs(installed_software={"ffmpeg": "7.0"}))
    assert not satisfies(w, needs(installed_software={"blender": "any"}))
    assert satisfies(w, needs(installed_artifacts=["sdxl", {"name": "sdxl", "version": "1.0"}]))
    assert satisfies(w, needs(installed_artifacts=[{"name": "sdxl", "properties": {"size_gb": 5}}]))
    assert not satisfies(w, needs(installed_artifacts=[{"name": "sdxl", "version": "2.0"}]))
    assert not satisfies(w, needs(installed_artifacts=["flux"]))


def test_max_cost_needs_a_price_at_or_under_it() -> None:
    assert satisfies(worker(cost=2.0), needs(max_cost=2.0))
    assert not satisfies(worker(cost=2.5), needs(max_cost=2.0))
    assert not satisfies(worker(cost=None), needs(max_cost=100.0)), (
        "an unpriced worker has no cost to compare"
    )


def test_every_requirement_group_must_hold() -> None:
    w = worker(cpu_cores=8, installed_software={"ffmpeg": "6.1"})
    assert not satisfies(w, needs(resources={"cpu_cores": 4}, installed_software={"blender": "any"}))
    assert not satisfies(w, needs(resources={"cpu_cores": 16}, installed_software={"ffmpeg": "6.1"}))
    assert satisfies(w, needs(resources={"cpu_cores": 4}, installed_software={"ffmpeg": "6.1"}))


sizes = st.integers(min_value=0, max_value=64)
memories = st.lists(st.integers(min_value=1, max_value=80), max_size=4)


@given(have_cpu=sizes, want_cpu=sizes, have_ram=sizes, want_ram=sizes, have_gpus=memories, want_gpus=memories)
def test_matching_is_componentwise_greater_or_equal(
    have_cpu: int, want_cpu: int, have_ram: int, want_ram: int, have_gpus: list[int], want_gpus: list[int]
) -> None:
    w = worker(cpu_cores=have_cpu, ram_gb=have_ram, devices=[gpu(m) for m in have_gpus])
    wanted = [{"type": "gpu", "properties": {"memory_gb": m}} for m in want_gpus]
    spec = needs(resources={"cpu_cores": want_cpu, "ram_gb": want_ram, "devices": wanted})
    # Wanted GPUs fit distinct GPUs iff, both sorted largest first, the i-th largest GPU holds
    # the i-th largest want (the greedy exchange argument for one numeric property).
    biggest = sorted(have_gpus, reverse=True)
    gpus_fit = len(want_gpus) <= len(have_gpus) and all(
        h >= wnt for h, wnt in zip(biggest, sorted(want_gpus, reverse=True), strict=False)
    )
    assert satisfies(w, spec) == (have_cpu >= want_cpu and have_ram >= want_ram and gpus_fit)


@given(have=st.integers(0, 100), want=st.integers(0, 100), extra=st.integers(0, 100))
def test_a_better_worker_satisfies_whatever_a_worse_one_does(have: int, want: int, extra: int) -> None:
    spec = needs(resources={"cpu_cores": want, "properties": {"disk_gb": want}})
    worse = worker(cpu_cores=have, properties={"disk_gb": have})
    better = worker(cpu_cores=have + extra, properties={"disk_gb": have + extra})
    assert not satisfies(worse, spec) or satisfies(better, spec)
