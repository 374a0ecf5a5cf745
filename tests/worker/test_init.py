import avtomatika.worker


def test_the_public_api_is_exactly_this() -> None:
    assert sorted(avtomatika.worker.__all__) == [
        "InvalidInputError",
        "OrchestratorError",
        "PermanentError",
        "SkillDefinitionError",
        "TaskError",
        "TransientError",
        "Worker",
    ]
    for name in avtomatika.worker.__all__:
        assert getattr(avtomatika.worker, name).__module__.startswith("avtomatika.worker.")
