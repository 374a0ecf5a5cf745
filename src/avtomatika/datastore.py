"""The published import path of the handlers' key-value store."""

from avtomatika.blueprints.datastore import AsyncDictStore

__all__ = ["AsyncDictStore"]
