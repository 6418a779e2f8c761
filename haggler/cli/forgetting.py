"""`haggler forget` and `haggler memory`: a request in words to a reviewed plan and its
execution, and an agent's memory shown with its provenance.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from haggler.cli.console import err, escape_markup, out, user_errors
from haggler.cli.options import DbOption, existing_store, require_store


def forget_command(
    agent: Annotated[
        str,
        typer.Argument(
            help="Whose memory forgets: an agent's name (a run's agents share a prefix, such as "
            "run-…/ai/0/seller or a named agent), or * for every agent of the store."
        ),
    ],
    request: Annotated[
        str,
        typer.Argument(
            help="What to forget, in words (docs/forgetting.md); with --level, a plain phrase, "
            "value or id will do."
        ),
    ],
    level: Annotated[
        str | None,
        typer.Option(help="state (a fact), trajectory (a game, lineage, turns) or environment."),
    ] = None,
    mode: Annotated[
        str | None,
        typer.Option(
            help="exact (remove what it influenced too), redact or rederive; the words may say "
            "it instead, and exact is the default."
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would be forgotten; change nothing.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Carry it out without asking.")] = False,
    purge_record: Annotated[
        bool,
        typer.Option(
            "--purge-record", help="Also delete or scrub it from the games, turns and critiques."
        ),
    ] = False,
    vacuum: Annotated[
        bool, typer.Option(help="Also rebuild the database file afterwards (slow on a big store).")
    ] = False,
    unlearner: Annotated[
        str, typer.Option(help="Who reads the request: rule (the grammar) or a model.")
    ] = "rule",
    db: DbOption = Path("haggler.db"),
) -> None:
    """Make agents forget a fact, a game or an environment: shows the plan, then carries it out."""
    with user_errors():
        import asyncio
        import sys

        from haggler.errors import ConfigError
        from haggler.memory.forgetting import LEVELS, MODES, describe_plan
        from haggler.run.forgetting import carry_out_for, read_request

        if level is not None and level not in LEVELS:
            raise ConfigError(f"--level {level}: choose one of {', '.join(LEVELS)}")
        if mode is not None and mode not in MODES:
            raise ConfigError(f"--mode {mode}: choose one of {', '.join(MODES)}")
        # A dry run only reads; forgetting writes (and refuses a store it cannot write).
        store = require_store(db) if dry_run else existing_store(db)
        try:
            read = asyncio.run(
                read_request(
                    store, agent, request, level=level, mode=mode, purge_record=purge_record,
                    unlearner=unlearner,
                )
            )  # fmt: skip
            if read.plan.is_empty():
                raise ConfigError(
                    f"the request selects nothing in the memory of {agent!r}; check the words "
                    "(docs/forgetting.md) or name another agent"
                )
            out.print(escape_markup(describe_plan(read.plan, read.memories)), soft_wrap=True)
            if dry_run:
                out.print("[dim]dry run: nothing was changed[/]")
                return
            if not yes:
                if not sys.stdin.isatty():
                    raise ConfigError("pass --yes to carry it out (no terminal to ask on)")
                if not typer.confirm("Carry it out?", default=False):
                    out.print("nothing was changed")
                    return
            done = asyncio.run(carry_out_for(store, read, vacuum=vacuum))
        finally:
            store.close()
        counts = done.counts
        out.print(
            f"forgotten ({read.plan.request.mode}): {counts.get('deleted', 0):.0f} items deleted, "
            f"{counts.get('redacted', 0):.0f} redacted, {counts.get('rederived', 0):.0f} "
            f"re-derived across {len(done.owners)} agent(s); audit {done.forgetting_id}"
        )
        if done.erased is False:
            err.print(
                "[yellow]another process holds the store open: the removed bytes leave its "
                "write-ahead log when the last process using the store closes it[/]"
            )


def memory_command(
    agent: Annotated[
        str | None,
        typer.Argument(help="An agent's name (or a prefix of names); all agents when omitted."),
    ] = None,
    db: DbOption = Path("haggler.db"),
) -> None:
    """Show what agents remember: items, sizes, and where each came from (provenance)."""
    with user_errors():
        from haggler.memory.forgetting import load_agents, resolve_agents
        from haggler.run.forgetting import memory_table, memory_tree

        store = require_store(db)
        try:
            if agent is None:
                if not store.memory_owners():
                    out.print(f"no agent holds memory in {escape_markup(str(db))}")
                    return
                out.print(memory_table(store, resolve_agents(["*"], store=store, memories={})))
                return
            memories = load_agents([agent], store=store)
            if len(memories) > 1:
                out.print(memory_table(store, list(memories)))
                return
            (memory,) = memories.values()
            out.print(memory_tree(memory))
        finally:
            store.close()
