"""The canonical JSON form: compact, keys sorted. Signatures are computed over it, and it is
byte-identical to orjson's ``OPT_SORT_KEYS`` output, which the published SDK signs with."""

from typing import Any

import msgspec

_sorted_encoder = msgspec.json.Encoder(order="sorted")


def encode_sorted(value: Any) -> bytes:
    return _sorted_encoder.encode(value)
