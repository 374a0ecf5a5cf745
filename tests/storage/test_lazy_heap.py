"""The shared heap with lazy deletion, against a plain model: a dict sorted on demand."""

from hypothesis import given
from hypothesis import strategies as st

from avtomatika.storage.lazy_heap import LazyHeap

_keys = st.sampled_from("abcdefgh")
_ranks = st.integers(-3, 3).map(float)
_ops = st.lists(
    st.one_of(
        st.tuples(st.just("set"), _keys, _ranks, st.booleans()),
        st.tuples(st.just("discard"), _keys),
        st.tuples(st.just("pop")),
        st.tuples(st.just("pop_until"), _ranks),
        st.tuples(st.just("shift"), _ranks),
    ),
    max_size=300,
)


@given(_ops)
def test_lazy_heap_orders_like_a_sorted_dict(ops: list[tuple[object, ...]]) -> None:
    heap: LazyHeap[str] = LazyHeap()
    model: dict[str, tuple[float, int]] = {}
    first, last = -1, 0

    def ordered() -> list[str]:
        return sorted(model, key=model.__getitem__)

    for op in ops:
        match op:
            case ("set", str(key), float(rank), bool(ahead)):
                heap.set(key, rank, first=ahead)
                if ahead:
                    model[key], first = (rank, first), first - 1
                else:
                    model[key], last = (rank, last), last + 1
            case ("discard", str(key)):
                heap.discard(key)
                model.pop(key, None)
            case ("pop",):
                expected = ordered()[:1]
                assert [key for key in [heap.pop()] if key is not None] == expected
                for key in expected:
                    del model[key]
            case ("pop_until", float(rank)):
                expected = [key for key in ordered() if model[key][0] <= rank]
                assert heap.pop_until(rank) == expected
                for key in expected:
                    del model[key]
            case ("shift", float(by)):
                heap.shift(by)
                model = {key: (rank + by, seq) for key, (rank, seq) in model.items()}
        assert len(heap) == len(model)
        assert heap.smallest(3) == ordered()[:3]
        head = heap.head()
        assert (None if head is None else head[0]) == next(iter(ordered()), None)


def test_many_stale_items_are_compacted_without_losing_order() -> None:
    heap: LazyHeap[str] = LazyHeap()
    for round_ in range(100):
        for key in ("x", "y", "z"):
            heap.set(key, float(round_ + ord(key)))
    assert len(heap._heap) < 100
    assert heap.pop_until(1_000.0) == ["x", "y", "z"]
    assert heap.head() is None
