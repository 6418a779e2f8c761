"""Built-in probing strategies; each module registers its own in `STRATEGIES`."""
