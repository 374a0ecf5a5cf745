"""Record blobs for the Redis backend: msgspec MessagePack behind a one-byte format marker.

Records are encoded and decoded here, in Python, and never inside Lua (W-11: cmsgpack turns
empty maps into arrays and may turn floats into integers). Blobs over 16 KiB are zstd
compressed; compressing or decompressing more than 1 MiB runs in a thread so that it does
not stall the event loop.
"""

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

import msgspec
import zstandard

from avtomatika.core.records import HeartbeatUpdate, Job, TaskRecord, TaskState, WorkerRecord
from avtomatika.storage.base import heartbeat_changes

S = TypeVar("S", bound=msgspec.Struct)

PLAIN = 0
ZSTD = 1
COMPRESS_ABOVE = 16 * 1024
OFFLOAD_ABOVE = 1024 * 1024
_ZSTD_LEVEL = 3

_encoder = msgspec.msgpack.Encoder()
JOB_DECODER = msgspec.msgpack.Decoder(Job)
TASK_DECODER = msgspec.msgpack.Decoder(TaskRecord)
WORKER_DECODER = msgspec.msgpack.Decoder(WorkerRecord)

# A heartbeat overlays these worker fields, each stored as its own MessagePack value.
_HEARTBEAT_DECODERS: dict[bytes, msgspec.msgpack.Decoder[Any]] = {
    f"f:{field.name}".encode(): msgspec.msgpack.Decoder(field.type)
    for field in msgspec.structs.fields(HeartbeatUpdate)
}


async def pack(record: msgspec.Struct) -> bytes:
    """The stored form of a record: marker byte, then MessagePack (compressed when large)."""
    data = _encoder.encode(record)
    if len(data) <= COMPRESS_ABOVE:
        return bytes((PLAIN,)) + data
    if len(data) <= OFFLOAD_ABOVE:
        return _compress(data)
    return await asyncio.to_thread(_compress, data)


async def unpack(blob: bytes, decoder: msgspec.msgpack.Decoder[S]) -> S:
    body = memoryview(blob)[1:]
    marker = blob[0]
    if marker == PLAIN:
        return decoder.decode(body)
    if marker != ZSTD:
        raise ValueError(f"Unknown record format marker {marker} in a stored Redis blob")
    size = zstandard.frame_content_size(body)
    if 0 <= size <= OFFLOAD_ABOVE:
        return decoder.decode(_decompress(body))
    return decoder.decode(await asyncio.to_thread(_decompress, body))


def _compress(data: bytes) -> bytes:
    # Compressor objects are not thread-safe; one per call costs microseconds.
    return bytes((ZSTD,)) + zstandard.ZstdCompressor(level=_ZSTD_LEVEL).compress(data)


def _decompress(body: memoryview) -> bytes:
    return zstandard.ZstdDecompressor().decompress(body)


async def unpack_task(row: Sequence[bytes | None]) -> TaskRecord | None:
    """A task from its fields (blob, state, owner, pick-up time); None if it does not exist.

    The blob keeps the record as pushed; the plain fields hold what scripts change.
    """
    blob, state, worker_id, picked_up_at = row
    if not blob or state is None or worker_id is None:
        return None
    record = await unpack(blob, TASK_DECODER)
    record.state = TaskState(state.decode())
    record.worker_id = worker_id.decode()
    record.picked_up_at = None if picked_up_at is None else float(picked_up_at)
    return record


def heartbeat_fields(update: HeartbeatUpdate) -> list[tuple[str, bytes]]:
    """The fields a heartbeat sets (:func:`heartbeat_changes`), each as its own MessagePack value."""
    return [(name, _encoder.encode(value)) for name, value in heartbeat_changes(update).items()]


async def unpack_worker(fields: Mapping[bytes, bytes]) -> WorkerRecord | None:
    """A worker from its hash: the registered blob, overlaid by reputation, last poll and heartbeat
    fields."""
    blob = fields.get(b"d")
    if blob is None:
        return None
    record = await unpack(blob, WORKER_DECODER)
    record.reputation = float(fields[b"rep"])
    last_poll = fields.get(b"lp")
    if last_poll is not None:
        record.last_poll = float(last_poll)
    for name, value in fields.items():
        decoder = _HEARTBEAT_DECODERS.get(name)
        if decoder is not None:
            setattr(record, name[2:].decode(), decoder.decode(value))
    return record


def pairs(flat: Sequence[bytes]) -> dict[bytes, bytes]:
    """HGETALL as a script returns it (a flat list) to a mapping."""
    return dict(zip(flat[::2], flat[1::2], strict=True))


async def started_task(blob: bytes, worker_id: str, picked_up_at: float) -> TaskRecord:
    """A task a script just marked RUNNING on ``worker_id`` (its blob keeps the pushed state)."""
    record = await unpack(blob, TASK_DECODER)
    record.state = TaskState.RUNNING
    record.worker_id = worker_id
    record.picked_up_at = picked_up_at
    return record


async def unpack_workers(rows: Sequence[Sequence[bytes]]) -> list[WorkerRecord]:
    found = [await unpack_worker(pairs(row)) for row in rows]
    return [record for record in found if record is not None]
