"""The seed's import path of :class:`ActionFactory` (``from avtomatika.context import ActionFactory``)."""

from avtomatika.blueprints.actions import ActionFactory

__all__ = ["ActionFactory"]
