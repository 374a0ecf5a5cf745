"""The one JSON codec (msgspec) used on the wire, in storage and in logs."""

from typing import Any

import msgspec

_encoder = msgspec.json.Encoder()
_sorted_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder()


def encode(value: Any) -> bytes:
    return _encoder.encode(value)


def encode_sorted(value: Any) -> bytes:
    """Compact JSON with sorted keys; byte-identical to orjson's OPT_SORT_KEYS output."""
    return _sorted_encoder.encode(value)


def decode(data: bytes | str) -> Any:
    return _decoder.decode(data)


def to_builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)
