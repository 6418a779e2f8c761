"""The terminal a command writes to, and how a command ends: an error a user can fix in
one line and exit status 2, a run stopped by Ctrl-C or SIGTERM with the status a shell
reports, model text and secrets kept off the screen.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import typer
from rich.console import Console

from haggler.errors import HagglerError, TransientModelError

# No emoji codes: a reference such as `pkg:Smile:` or a model's ":anchor:" is shown as written.
out = Console(highlight=False, emoji=False)
err = Console(stderr=True, highlight=False, emoji=False)


@contextmanager
def user_errors() -> Iterator[None]:
    """Turn haggler's errors into one line and an exit status: 2 for what the user can fix."""
    try:
        yield
    except TransientModelError as error:
        err.print(f"[bold red]error:[/] {escape_markup(redacted(str(error)))}", soft_wrap=True)
        raise typer.Exit(1) from None
    except HagglerError as error:
        err.print(f"[bold red]error:[/] {escape_markup(redacted(str(error)))}", soft_wrap=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        err.print(f"{interruption()}; finished games are in the store")
        raise typer.Exit(interrupted_status()) from None
    except OSError as error:
        # Writing a report, plot or export: the disk said no (full, read-only, a folder).
        where = f"{error.filename}: " if error.filename else ""
        err.print(f"[bold red]error:[/] {escape_markup(where + (error.strerror or str(error)))}")
        raise typer.Exit(2) from None
    except BaseExceptionGroup as group:
        # Games played at once (asyncio task groups) fail together, grouped: the first failure
        # a user can act on (a full disk under a self-play run) is told as if it came alone.
        first = next((e for e in _leaves(group) if isinstance(e, _TOLD)), None)
        if first is None:
            raise
        with user_errors():
            raise first from None


_TOLD = (HagglerError, KeyboardInterrupt, OSError)


def _leaves(group: BaseExceptionGroup[BaseException]) -> Iterator[BaseException]:
    for error in group.exceptions:
        if isinstance(error, BaseExceptionGroup):
            yield from _leaves(error)
        else:
            yield error


def redacted(text: str) -> str:
    from haggler.llm.secrets import redact

    return redact(text)


def escape_markup(text: str) -> str:
    from rich.markup import escape

    return escape(text)


def command_again(command: str, spec: Path, db: Path) -> str:
    """The command line that continues this one's work."""
    import shlex

    return f"haggler {command} {shlex.quote(str(spec))} --db {shlex.quote(str(db))}"


def interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


# The signals that stopped this command's run, the latest last.
_stopped_by: list[signal.Signals] = []


def run_until_stopped(coroutine: Any) -> Any:
    """`asyncio.run`, where SIGTERM (a plain `kill`, a scheduler ending the job) stops the run
    as Ctrl-C does: the main task is cancelled, so what is in flight is marked failed
    ("interrupted") or dropped, never left running, and KeyboardInterrupt is raised."""
    import asyncio

    _stopped_by.clear()

    async def main() -> Any:
        loop = asyncio.get_running_loop()
        task = asyncio.current_task()
        assert task is not None

        def terminated() -> None:
            _stopped_by.append(signal.SIGTERM)
            task.cancel()

        # Not on the main thread, or no signals here (Windows): Ctrl-C still works.
        with suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signal.SIGTERM, terminated)
        try:
            return await coroutine
        finally:
            loop.remove_signal_handler(signal.SIGTERM)

    try:
        return asyncio.run(main())
    except asyncio.CancelledError:
        if _stopped_by:
            raise KeyboardInterrupt from None
        raise
    except KeyboardInterrupt:
        _stopped_by.append(signal.SIGINT)
        raise


def interrupted_status() -> int:
    """128 + the signal's number, as a shell reports it: 130 for Ctrl-C, 143 for SIGTERM."""
    return 128 + int(_stopped_by[-1] if _stopped_by else signal.SIGINT)


def interruption() -> str:
    stopped = _stopped_by[-1] if _stopped_by else signal.SIGINT
    return "interrupted" + (" by SIGTERM" if stopped == signal.SIGTERM else "")
