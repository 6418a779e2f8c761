"""The fake OpenAI-compatible server as a process of its own, for the throughput benchmarks.

Every chat completion waits `--latency` seconds, then answers as a negotiating model would
(tests.fakes.negotiating_llm.negotiate). It prints its OpenAI base URL on one line and serves
until killed. Running it apart keeps its threads off the measured client's GIL.

A completion asked of the model `__stats__` is not counted: it answers, at once, the number of
completions served so far, as JSON: {"calls": N}.

    python benchmarks/fake_server_process.py [--latency 0.05]
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fakes.llm_server import (  # noqa: E402
    Delay,
    FakeLLMServer,
    RecordedRequest,
    Reply,
    Text,
)
from tests.fakes.negotiating_llm import negotiate  # noqa: E402

STATS_MODEL = "__stats__"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--latency", type=float, default=0.05)
    args = parser.parse_args()

    lock = threading.Lock()
    calls = 0

    def respond(request: RecordedRequest) -> Reply:
        nonlocal calls
        with lock:
            if request.model == STATS_MODEL:
                return Text(json.dumps({"calls": calls}))
            calls += 1
        return Delay(args.latency, then=negotiate(request))

    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    signal.signal(signal.SIGINT, lambda *_: stopped.set())
    with FakeLLMServer(respond) as server:
        print(server.openai_base, flush=True)
        stopped.wait()


if __name__ == "__main__":
    main()
