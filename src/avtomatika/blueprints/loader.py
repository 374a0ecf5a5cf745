"""Registers every Blueprint defined at module level in the ``*.py`` files of a directory."""

import importlib.util
import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Protocol

from avtomatika.blueprints.blueprint import Blueprint
from avtomatika.errors import ConfigError

logger = logging.getLogger(__name__)


class BlueprintRegistry(Protocol):
    """What the loader needs of an engine."""

    @property
    def blueprints(self) -> Mapping[str, Blueprint]: ...

    def register_blueprint(self, bp: Blueprint) -> None: ...


def load_blueprints_from_dir(engine: BlueprintRegistry, directory: str) -> list[str]:
    """Import each module and register its blueprints; a broken file names itself in the error."""
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(f"BLUEPRINTS_DIR={directory!r} is not a directory")
    loaded: list[str] = []
    for path in sorted(root.glob("*.py")):
        if path.name == "__init__.py":
            continue
        spec = importlib.util.spec_from_file_location(f"avtomatika_blueprints.{path.stem}", path)
        if spec is None or spec.loader is None:
            raise ConfigError(f"Cannot import blueprint file {path}")
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            raise ConfigError(f"Blueprint file {path} failed to import: {exc}") from exc
        for value in vars(module).values():
            if isinstance(value, Blueprint) and value.name not in engine.blueprints:
                engine.register_blueprint(value)
                loaded.append(value.name)
    logger.info("Loaded blueprints %s from %s", loaded, directory)
    return loaded
