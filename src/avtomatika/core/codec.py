"""The one JSON codec (msgspec) used on the wire, in storage and in logs."""

from typing import Any

import msgspec

from avtomatika.protocol.canonical import encode_sorted

__all__ = ["decode", "encode", "encode_sorted", "to_builtins"]

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder()


def encode(value: Any) -> bytes:
    return _encoder.encode(value)


def decode(data: bytes | str) -> Any:
    return _decoder.decode(data)


def to_builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)
