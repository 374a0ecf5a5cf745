"""The ``avtomatika`` command: serve, demo, worker, graph."""

import importlib
import sys

import click

from avtomatika.errors import AvtomatikaError


def _import_object(target: str) -> object:
    module_name, _, attr = target.partition(":")
    if not module_name or not attr:
        raise click.BadParameter(f"expected 'module:attribute', got {target!r}")
    sys.path.insert(0, ".")
    module = importlib.import_module(module_name)
    try:
        return getattr(module, attr)
    except AttributeError:
        raise click.BadParameter(f"module {module_name!r} has no attribute {attr!r}") from None


@click.group()
@click.version_option(package_name="avtomatika")
def main() -> None:
    """Avtomatika orchestrator."""


@main.command()
@click.argument("target", required=False)
@click.option("--host", default=None, help="Bind address (default: API_HOST).")
@click.option("--port", type=int, default=None, help="Port (default: API_PORT).")
def serve(target: str | None, host: str | None, port: int | None) -> None:
    """Run an orchestrator: TARGET is 'module:engine', or omitted to serve BLUEPRINTS_DIR on the storage
    that STORAGE_BACKEND selects."""
    from avtomatika.config import Config
    from avtomatika.server.orchestrator import OrchestratorEngine
    from avtomatika.storage.factory import storage_from_config

    try:
        if target:
            engine = _import_object(target)
            if not isinstance(engine, OrchestratorEngine):
                raise click.BadParameter(f"{target} is not an OrchestratorEngine")
        else:
            config = Config()
            engine = OrchestratorEngine(storage_from_config(config), config)
        if host is not None:
            engine.config.API_HOST = host
        if port is not None:
            engine.config.API_PORT = port
        engine.run()
    except AvtomatikaError as exc:
        raise click.ClickException(str(exc)) from exc


@main.command()
@click.option("--jobs", "job_count", type=int, default=36, show_default=True, help="How many jobs to run.")
@click.option("--workers", "worker_count", type=int, default=3, show_default=True, help="Local workers.")
def demo(job_count: int, worker_count: int) -> None:
    """Run a realistic pipeline end to end on the embedded default (no other service needed)."""
    from avtomatika.cli.demo import run_demo

    sys.exit(run_demo(job_count, worker_count))


@main.command()
@click.argument("target")
@click.option("--format", "fmt", type=click.Choice(["dot", "png", "svg"]), default="dot", show_default=True)
@click.option("--output", "-o", default=None, help="File to write (required for png/svg).")
def graph(target: str, fmt: str, output: str | None) -> None:
    """Export the state graph of a blueprint given as 'module:blueprint'."""
    from avtomatika.blueprints.blueprint import Blueprint

    bp = _import_object(target)
    if not isinstance(bp, Blueprint):
        raise click.BadParameter(f"{target} is not a Blueprint")
    if fmt == "dot":
        text = bp.render_graph()
        assert text is not None
        if output:
            with open(output, "w", encoding="utf-8") as fh:
                fh.write(text)
        else:
            click.echo(text)
        return
    if not output:
        raise click.UsageError(f"--output is required for --format {fmt}")
    bp.render_graph(output, fmt)


def _add_worker_command() -> None:
    from avtomatika.worker.cli import worker_command

    main.add_command(worker_command, "worker")


_add_worker_command()
