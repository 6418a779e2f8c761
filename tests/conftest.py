"""Test-wide guarantees: nothing reaches a model hub or a price list on the network."""

from __future__ import annotations

import os

# Set before any test imports litellm or transformers (both read these at import).
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

pytest_plugins = ["tests.fakes.fixtures"]
