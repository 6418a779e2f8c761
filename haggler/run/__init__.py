"""Specs and what plays them: one game (`play`), a self-play experiment (`experiment`), the
roles of a spec cast to their backends (`cast`), and forgetting on a store's agents
(`forgetting`). Above the games, below tournaments and the command line.

The public names are haggler's own (`haggler.play`, `haggler.selfplay`, `haggler.forget`, the
specs); this package holds where they are made.
"""
