"""Probing agents for what they should have forgotten: quick probes of a stored agent, and
forgetting experiments (agents made, made to forget, probed beside the reference agent that
never knew, and measured), stored like games and reported with intervals.

    run = await probe_agent(store, "shop/ai/0/seller", secret_from_text("$14"))
    run = await unlearn_eval(load_unlearn_spec("examples/unlearn_offline.yaml"), store=store)
    console.print(render_report(unlearn_report(store, run.run_id)))

See docs/probing.md.
"""

from haggler.probe.experiment import UnlearnEvalRun, run_id_of, unlearn_eval
from haggler.probe.judging import Judge
from haggler.probe.quick import ProbeRun, probe_agent, secret_from_text
from haggler.probe.report import UnlearnReport, render_report, unlearn_report
from haggler.probe.spec import UnlearnEvalSpec, check_unlearn_spec, load_unlearn_spec

__all__ = [
    "Judge",
    "ProbeRun",
    "UnlearnEvalRun",
    "UnlearnEvalSpec",
    "UnlearnReport",
    "check_unlearn_spec",
    "load_unlearn_spec",
    "probe_agent",
    "render_report",
    "run_id_of",
    "secret_from_text",
    "unlearn_eval",
    "unlearn_report",
]
