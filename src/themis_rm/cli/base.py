"""What every ``themis`` command shares: one stderr console, one error wrapper, one progress bar."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from themis_rm.errors import ThemisError

console = Console(stderr=True)


def wide_console() -> Console:
    """Stdout console; 120 columns when not a terminal (logs, CI) so tables are not cut."""
    plain = Console()
    return plain if plain.is_terminal else Console(width=120)


def fail(exc: Exception) -> None:
    """Print one of our errors as one red line and exit 2 (no traceback); anything else propagates."""
    if not isinstance(exc, ThemisError):
        raise exc
    console.print(f"[red]error:[/red] {escape(str(exc))}")  # keep "themis-rm[serve]" literal, not markup
    raise typer.Exit(2) from exc


@contextmanager
def friendly_errors() -> Iterator[None]:
    """Our own errors print as one red line and exit 2, without a traceback."""
    try:
        yield
    except ThemisError as exc:
        fail(exc)


@contextmanager
def progress_bar(description: str) -> Iterator[tuple[Callable[[int], None], Callable[[int], None]]]:
    """A rich progress bar; yields (set_total, advance) callbacks for the library's loops."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    ) as progress:
        task = progress.add_task(description, total=None)
        yield (lambda total: progress.update(task, total=total)), (lambda n: progress.advance(task, n))
