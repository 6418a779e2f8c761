"""Plan fidelity on hand-labelled requests (tests/data/forget_requests*.yaml): precision and
recall of the items the unlearners' plans select, exact matches, and refusals.

The thresholds are the ones README states; benchmarks/unlearner_fidelity.py prints the tables.
Three sets: the labelled set (written with the grammar), the held-out set (written after it,
then mended on its misses) and the fresh set (written after that, never used to change the
grammar: the least flattering estimate).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from haggler.agents.unlearner import LLMUnlearner, RuleUnlearner
from haggler.llm import RetryPolicy, open_backend
from tests.fakes.llm_server import FakeLLMServer
from tests.fakes.plan_fidelity import CASES, Fidelity, load_cases, score
from tests.fakes.unlearning_model import SPOILED, RuleBrain, spoil_some
from tests.fakes.unlearning_world import World, build_world

DATA = CASES.parent
# (set, least precision, least recall, least exact-match rate), as README states them.
THRESHOLDS = {
    "forget_requests.yaml": (0.95, 0.95, 0.95),
    "forget_requests_heldout.yaml": (0.95, 0.95, 0.95),
    "forget_requests_fresh.yaml": (0.95, 0.70, 0.70),
}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    built = asyncio.run(build_world(tmp_path_factory.mktemp("world") / "w.db"))
    yield built
    built.store.close()


def test_the_labelled_sets_are_large_and_cover_every_level_and_refusals() -> None:
    cases = load_cases()
    assert len(cases) >= 40
    for level in ("state", "trajectory", "environment"):
        assert sum(c.level == level and not c.refuse for c in cases) >= 10, level
    assert sum(c.refuse for c in cases) >= 10
    assert any(c.given_level for c in cases) and any(c.mode for c in cases)
    assert sum(len(load_cases(DATA / name)) for name in THRESHOLDS) >= 120


def assert_fidelity(fidelity: Fidelity, name: str) -> None:
    least_precision, least_recall, least_exact = THRESHOLDS[name]
    total = fidelity.rows["all"]
    report = "\n".join([fidelity.table(name), *fidelity.misses()])
    assert total.precision >= least_precision, report
    assert total.recall >= least_recall, report
    assert total.exact_rate >= least_exact, report
    assert total.refused_rightly == total.should_refuse, report
    # Where the grammar does not read a request it refuses it: no plan is silently wrong.
    silent = [o for o in fidelity.outcomes if not o.exact and o.refused is None]
    assert not silent, report


@pytest.mark.parametrize("name", sorted(THRESHOLDS))
async def test_the_rule_unlearner_reaches_the_stated_fidelity(world: World, name: str) -> None:
    fidelity = await score(RuleUnlearner(), world, load_cases(DATA / name))

    assert_fidelity(fidelity, name)


async def test_an_llm_unlearner_through_the_fake_server_reaches_it_despite_spoiled_replies(
    world: World, fake_llm_server: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The fake model reads words with the rule grammar (it cannot understand them), and spoils
    # some replies: this measures the LLM path's plumbing, not a model's understanding.
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-unlearner-0123456789")
    brain = RuleBrain(faults=spoil_some)
    fake_llm_server.responder = brain
    backend = open_backend(
        "openai/gpt-4o-mini",
        api_base=fake_llm_server.openai_base,
        retry_policy=RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.02, jitter=0.0),
    )
    unlearner = LLMUnlearner(backend, attempts=3)
    cases = load_cases()

    fidelity = await score(unlearner, world, cases)
    by_rule = await score(RuleUnlearner(), world, cases)
    await backend.aclose()

    assert_fidelity(fidelity, "forget_requests.yaml")
    for llm, rule in zip(fidelity.outcomes, by_rule.outcomes, strict=True):
        assert (llm.got, llm.refused is None) == (rule.got, rule.refused is None), llm.words
    replies = [r.json["messages"][-1]["content"] for r in fake_llm_server.requests]
    assert unlearner.spent.calls == len(fake_llm_server.requests) == len(brain.heard)
    assert unlearner.spent.retries == unlearner.spent.calls - len(cases) > 20
    told = " ".join(replies)
    for reason in ("not JSON", "finite amount", "JSON list, not an object"):
        assert reason in told, f"no spoiled reply was refused for: {reason}"
    assert set(SPOILED) >= {"prose", "schema", "truncated", "array"}


def test_the_benchmark_prints_the_table_for_the_rule_unlearner() -> None:
    root = Path(__file__).resolve().parent.parent
    run = subprocess.run(
        [sys.executable, str(root / "benchmarks" / "unlearner_fidelity.py"), "--sets", "fresh"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=root,
    )

    assert run.returncode == 0, run.stderr
    assert "rule-based, fresh set (20 requests" in run.stdout
    assert "level        requests precision  recall  exact" in run.stdout
    assert "wrong plans not refused: 0" in run.stdout
    bench = (root / "benchmarks" / "unlearner_fidelity.py").read_text()
    for name in THRESHOLDS:
        assert name in bench, f"the benchmark does not read {name}"
