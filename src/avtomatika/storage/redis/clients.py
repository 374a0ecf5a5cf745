"""Which connections an instance talks to Redis over: our own RESP connections (one multiplexed
command connection, one subscription), or, for a client the user passes or a URL ours cannot
serve, redis-py's."""

from functools import partial

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from avtomatika.storage.redis.connection import ClientCommands, Commands, Multiplexed, connection_options
from avtomatika.storage.redis.listener import ClientSubscription, OwnSubscription, Subscribe

POOL_SIZE = 32
"""Connections of the redis-py pool made for a URL our own connections cannot serve (a
``max_connections`` URL option wins)."""


def open_connections(client: aioredis.Redis | None, url: str, channel: str) -> tuple[Commands, Subscribe]:
    """Commands and wake-ups on connections of our own, or through redis-py (see the class)."""
    options = None if client is not None else connection_options(url)
    if options is not None:
        return Multiplexed(options), partial(OwnSubscription.open, options, channel)
    owned = client is None
    if client is None:
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=POOL_SIZE, retry=Retry(NoBackoff(), 0)
        )
        client = aioredis.Redis(connection_pool=pool)
    elif client.connection_pool.connection_kwargs.get("decode_responses"):
        raise ValueError("RedisStorage needs a client without decode_responses: records are binary")
    return ClientCommands(client, owned=owned), partial(ClientSubscription.open, client, channel)
