"""The published import path of the directory loader: ``load_blueprints_from_dir(engine, dir)``."""

from avtomatika.blueprints.loader import load_blueprints_from_dir

__all__ = ["load_blueprints_from_dir"]
