"""The `vitals` console command: the top floor. It wires each subcommand to the package that
does the work; nothing imports it. Public: `app` (the Typer application) and `main`."""

from cli.app import app, main

__all__ = ["app", "main"]
