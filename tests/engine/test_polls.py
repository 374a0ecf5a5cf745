"""HeldPolls: a stopping instance ends every held long-poll empty, and only those."""

import asyncio

import pytest

from avtomatika.engine.polls import HeldPolls


async def wait_forever() -> str:
    await asyncio.sleep(60)
    return "task"


async def held(polls: HeldPolls, count: int) -> None:
    """Until ``count`` polls are held (each needs a turn of the loop to start)."""
    for _ in range(count + 10):
        if len(polls) >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{len(polls)} polls held, expected {count}")


async def test_release_all_ends_every_held_poll_empty() -> None:
    polls = HeldPolls()
    waiting = [asyncio.create_task(polls.hold(wait_forever())) for _ in range(50)]
    await held(polls, 50)
    assert polls.release_all() == 50
    assert await asyncio.gather(*waiting) == [None] * 50
    assert len(polls) == 0
    assert not any(task.cancelling() for task in waiting)


async def test_a_poll_that_answers_keeps_its_answer() -> None:
    polls = HeldPolls()

    async def answer() -> str:
        await asyncio.sleep(0)
        return "task"

    assert await polls.hold(answer()) == "task"
    assert len(polls) == 0


async def test_a_poll_arriving_after_release_is_answered_empty_without_waiting() -> None:
    polls = HeldPolls()
    polls.release_all()
    poll = wait_forever()
    assert await polls.hold(poll) is None
    assert poll.cr_frame is None  # closed, never started


async def test_any_other_cancellation_still_cancels() -> None:
    polls = HeldPolls()
    mine = asyncio.create_task(polls.hold(wait_forever()))
    await held(polls, 1)
    mine.cancel()
    with pytest.raises(asyncio.CancelledError):
        await mine


async def test_a_poll_cancelled_by_someone_else_too_is_not_turned_into_an_answer() -> None:
    polls = HeldPolls()
    mine = asyncio.create_task(polls.hold(wait_forever()))
    await held(polls, 1)
    mine.cancel()
    polls.release_all()
    with pytest.raises(asyncio.CancelledError):
        await mine
