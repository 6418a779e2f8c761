"""The adversary's strategies, one module per family."""
