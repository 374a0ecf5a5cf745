"""The ``avtomatika`` command: serve, demo, worker, graph."""

import sys

import click

from avtomatika.errors import AvtomatikaError, ConfigError
from avtomatika.targets import load_target

NOTHING_TO_SERVE = (
    "nothing to serve: give TARGET as 'module:engine' (an OrchestratorEngine with its blueprints "
    "registered), or set BLUEPRINTS_DIR to a directory of blueprint modules"
)


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
            engine = load_target(target, OrchestratorEngine, "an OrchestratorEngine", "app:engine")
        else:
            config = Config()
            if not config.BLUEPRINTS_DIR:
                raise ConfigError(NOTHING_TO_SERVE)
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

    try:
        bp = load_target(target, Blueprint, "a Blueprint", "flows:bp")
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from exc
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
