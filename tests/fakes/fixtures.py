"""Shared pytest fixtures; each fake lives in its own module beside this one."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.fakes.llm_server import FakeLLMServer

# --- a tiny local model (tests/fakes/tiny_model.py), built once per session ---


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny Llama with a chat template, saved to disk; skipped without the `local` extra."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.fakes.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-chat"), chat_template=True)


@pytest.fixture(scope="session")
def tiny_base_model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same tiny Llama without a chat template, as a base model ships."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    from tests.fakes.tiny_model import build_tiny_model

    return build_tiny_model(tmp_path_factory.mktemp("tiny-base"), chat_template=False)


# --- a fake hosted LLM (tests/fakes/llm_server.py), one per test so scripts never leak ---


@pytest.fixture
def fake_llm_server() -> Iterator[FakeLLMServer]:
    """A started FakeLLMServer speaking the OpenAI and Anthropic APIs on 127.0.0.1."""
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def example_plugins() -> None:
    """The worked plug-in package (examples/plugins, `haggler_mediation`), installed by
    README's test command: its tests fail when it is missing in CI (or with
    HAGGLER_REQUIRE_PLUGINS=1) and skip, saying how to install it, elsewhere."""
    if importlib.util.find_spec("haggler_mediation") is not None:
        return
    if os.environ.get("HAGGLER_REQUIRE_PLUGINS") == "1" or os.environ.get("CI") == "true":
        pytest.fail(
            "the example plug-in package is not installed: pip install -e examples/plugins",
            pytrace=False,
        )
    pytest.skip("pip install -e examples/plugins to run these")
