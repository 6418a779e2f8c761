"""Plan fidelity of the unlearners: how closely the items their plans select match hand-labelled
requests in words (tests/data/forget_requests*.yaml, over the offline world of
tests/fakes/unlearning_world.py). Prints, per set and per level, micro-averaged precision and
recall of the selected items, the exact-match rate, and refusals (right / should be) and
wrongful refusals.

    python benchmarks/unlearner_fidelity.py                       # the rule-based unlearner
    python benchmarks/unlearner_fidelity.py --fake-llm            # + the LLM path, fake model
    OPENAI_API_KEY=... python benchmarks/unlearner_fidelity.py --model openai/gpt-4o-mini

--fake-llm runs the LLMUnlearner through the real openai SDK against the fake server, whose
'model' reads the words with the rule grammar and spoils some replies: it measures parsing,
validation and retries (the plumbing), not understanding. --model measures a real model.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from haggler.agents.unlearner import LLMUnlearner, RuleUnlearner, Unlearner  # noqa: E402
from haggler.llm import open_backend  # noqa: E402
from tests.fakes.plan_fidelity import CASES, load_cases, score  # noqa: E402
from tests.fakes.unlearning_world import build_world  # noqa: E402

SETS = {
    "labelled": "forget_requests.yaml",
    "heldout": "forget_requests_heldout.yaml",
    "fresh": "forget_requests_fresh.yaml",
}


async def measure(unlearner: Unlearner, label: str, sets: list[str], misses: bool) -> None:
    with tempfile.TemporaryDirectory() as folder:
        world = await build_world(Path(folder) / "world.db")
        try:
            for name in sets:
                cases = load_cases(CASES.parent / SETS[name])
                started = time.perf_counter()
                fidelity = await score(unlearner, world, cases)
                took = time.perf_counter() - started
                print(
                    fidelity.table(f"\n{label}, {name} set ({len(cases)} requests, {took:.1f} s)")
                )
                silent = sum(1 for o in fidelity.outcomes if not o.exact and o.refused is None)
                print(f"wrong plans not refused: {silent}")
                if misses:
                    for line in fidelity.misses():
                        print(f"  miss: {line[:300]}")
            spent = getattr(unlearner, "spent", None)
            if spent is not None:
                print(
                    f"\n{label}: {spent.calls} calls, {spent.tokens} tokens, "
                    f"${spent.cost_usd:.4f}, {spent.retries} replies refused and asked again"
                )
        finally:
            world.store.close()


async def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--model", help="also measure this model, e.g. openai/gpt-4o-mini")
    parser.add_argument("--api-base", help="the model's server (vLLM, Ollama, a proxy)")
    parser.add_argument("--attempts", type=int, default=3, help="replies read per request")
    parser.add_argument("--fake-llm", action="store_true", help="also the LLM path, fake model")
    parser.add_argument("--sets", default=",".join(SETS), help=f"of {', '.join(SETS)}")
    parser.add_argument("--misses", action="store_true", help="list what each miss got wrong")
    args = parser.parse_args()
    sets = [s.strip() for s in args.sets.split(",") if s.strip()]
    unknown = [s for s in sets if s not in SETS]
    if unknown:
        parser.error(f"unknown set {unknown[0]!r}; choose from {', '.join(SETS)}")

    await measure(RuleUnlearner(), "rule-based", sets, args.misses)
    if args.fake_llm:
        from tests.fakes.llm_server import FakeLLMServer
        from tests.fakes.unlearning_model import RuleBrain, spoil_some

        with FakeLLMServer(RuleBrain(faults=spoil_some)) as server:
            os.environ.setdefault("OPENAI_API_KEY", "sk-fake-server-needs-no-key")
            backend = open_backend("openai/gpt-4o-mini", api_base=server.openai_base)
            label = "LLM path through the fake server (rule-grammar 'model', spoiled replies)"
            await measure(LLMUnlearner(backend, attempts=args.attempts), label, sets, args.misses)
            await backend.aclose()
    if args.model:
        backend = open_backend(args.model, api_base=args.api_base)
        unlearner = LLMUnlearner(backend, attempts=args.attempts)
        await measure(unlearner, args.model, sets, args.misses)
        await backend.aclose()


if __name__ == "__main__":
    asyncio.run(main())
