"""A weights-level guard for local models, in the manner of GUARD-IT: the model's weights are
untouched; one decoder layer's output is turned away from what should stay forgotten, and only
for prompts that look like they reach for it.

Calibration (from prompts, through `haggler.llm.whitebox.WhiteBox.calibrate_guard`):

- a prompt is represented by the output of the guard's layer at its last position (the gate
  reads its last few), centred on the mean of the **neutral** prompts (those the guard must
  leave alone);
- each **cluster** of forget prompts (one topic, one forgotten fact) gets a centroid and a unit
  steering vector `v` (the direction from the neutral mean to the cluster's mean) and a
  coefficient `a`: `strength` times the cluster's mean projection on `v` (1 takes that
  component out, 2 mirrors it, the default 4 pushes well past it);
- the gate's threshold is the cosine similarity that at most `target_fpr` of the neutral
  prompts reach.

In use, a forward hook on the layer computes, when it reads a prompt, the cosine similarity of
the prompt's last few positions to every centroid and, when the best reaches the threshold,
rotates that row's hidden states at every position, the prompt's and those generated after it:

    h' = (h - a v) * |h| / |h - a v|

a rotation, not a shift: the norm the next layer expects is kept. The hook can be switched on
and off (`enabled`) and attached to and detached from a model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from haggler.llm.model_insides import layer_output, with_layer_output

if TYPE_CHECKING:
    import torch

__all__ = ["ActivationGuard", "GuardCluster", "threshold_for"]


@dataclass
class GuardCluster:
    """One cluster of forget data: its centroid (centred), steering direction and coefficient."""

    name: str
    centroid: torch.Tensor
    direction: torch.Tensor
    coefficient: float


@dataclass
class ActivationGuard:
    """A gated, norm-preserving steering guard on decoder layer `layer` (1-based)."""

    layer: int
    neutral_mean: torch.Tensor
    clusters: list[GuardCluster]
    threshold: float
    # The share of the calibration's neutral prompts the gate let through (its measured false
    # positive rate there), and the target it was calibrated for.
    calibrated_fpr: float = 0.0
    target_fpr: float = 0.05
    enabled: bool = True
    # The gate reads the best of a prompt's last `window` positions: the question's end, and
    # any few tokens forced after it (an answer's first words) that would otherwise hide it.
    window: int = 8
    # The gate's decision for each row of the sequences in flight (a cluster's index or -1),
    # and how many prompts it has steered and let pass since it was made.
    last_decision: list[int] = field(default_factory=list)
    steered: int = 0
    passed: int = 0
    # Set by a white-box read that appends an answer to a prompt (teacher forcing): where the
    # prompt ends, so the gate decides on the prompt as it would before generating.
    prompt_length: int | None = None
    _mask: Any = None
    _handles: list[Any] = field(default_factory=list)

    # --- the gate ---

    def similarities(self, representation: torch.Tensor) -> torch.Tensor:
        """Cosine similarity of each vector of `representation` ([..., hidden]: the layer's
        output at some positions) to each cluster's centroid, both centred on the neutral
        mean: [..., clusters]."""
        import torch

        normalize = torch.nn.functional.normalize
        centred = representation.float() - self.neutral_mean.to(representation.device)
        centroids = torch.stack([c.centroid for c in self.clusters]).to(representation.device)
        return normalize(centred, dim=-1) @ normalize(centroids, dim=-1).T

    def score(
        self, hidden: torch.Tensor, real: torch.Tensor | None = None
    ) -> list[tuple[float, int]]:
        """For each row of `hidden` ([rows, positions, hidden], a prompt's outputs up to its
        end), the best similarity to a cluster over its last `window` positions that are
        `real` (not padding; all when None), and that cluster's index."""
        similarity = self.similarities(hidden[:, -self.window :])
        if real is not None:
            similarity = similarity.masked_fill(~real[:, -self.window :, None], float("-inf"))
        best, cluster = similarity.max(dim=2)
        value, position = best.max(dim=1)
        return [
            (float(v), int(cluster[row, p]))
            for row, (v, p) in enumerate(zip(value, position, strict=True))
        ]

    def decide(self, hidden: torch.Tensor, real: torch.Tensor | None = None) -> list[int]:
        """For each row of `hidden` ([rows, positions, hidden]), the cluster whose guard fires
        (the most similar, when it reaches the threshold), or -1."""
        return [c if v >= self.threshold else -1 for v, c in self.score(hidden, real)]

    # --- the hooks ---

    def attach(
        self, layers: Sequence[torch.nn.Module], model: torch.nn.Module | None = None
    ) -> ActivationGuard:
        """Hook the guard onto `layers[layer - 1]` (the decoder layers of `model`, whose
        attention mask then tells the gate a batch's padding from its prompts); once only."""
        if self._handles:
            raise RuntimeError("this activation guard is attached already; detach() it first")
        if not 1 <= self.layer <= len(layers):
            raise ValueError(f"guard layer {self.layer} is outside the model's 1..{len(layers)}")
        self._handles = [layers[self.layer - 1].register_forward_hook(self._hook)]
        if model is not None:
            self._handles.append(
                model.register_forward_pre_hook(self._remember_mask, with_kwargs=True)
            )
        return self

    def detach(self) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles = []
        self.last_decision = []
        self._mask = None

    @property
    def attached(self) -> bool:
        return bool(self._handles)

    def _remember_mask(self, _module: Any, _args: Any, kwargs: dict[str, Any]) -> None:
        mask = kwargs.get("attention_mask")
        self._mask = mask if mask is not None and getattr(mask, "ndim", 0) == 2 else None

    def _hook(self, _module: Any, _args: Any, output: Any) -> Any:
        if not self.enabled:
            return None
        hidden = layer_output(output)
        rows, width = hidden.shape[0], hidden.shape[1]
        # A pass over several positions reads a new prompt; generation then feeds one position
        # at a time from the cache, and each row keeps its prompt's decision.
        if width > 1 or len(self.last_decision) != rows:
            end = width
            if self.prompt_length is not None and 0 < self.prompt_length <= width:
                end = self.prompt_length
            real = None
            if self._mask is not None and self._mask.shape[0] == rows:
                real = self._mask[:, -width:][:, :end].to(hidden.device).bool()
            self.last_decision = self.decide(hidden[:, :end], real)
            fired = sum(d >= 0 for d in self.last_decision)
            self.steered += fired
            self.passed += rows - fired
        if all(d < 0 for d in self.last_decision):
            return None
        return with_layer_output(output, self.rotate(hidden, self.last_decision))

    def rotate(self, hidden: torch.Tensor, decision: Sequence[int]) -> torch.Tensor:
        """`hidden` ([rows, positions, hidden]) with each row whose decision is a cluster turned
        away from that cluster's direction, norms kept."""
        rotated = hidden.clone()
        for row, chosen in enumerate(decision):
            if chosen < 0:
                continue
            cluster = self.clusters[chosen]
            h = hidden[row].float()
            v = cluster.direction.to(h.device)
            moved = h - cluster.coefficient * v
            scale = h.norm(dim=-1, keepdim=True) / moved.norm(dim=-1, keepdim=True).clamp_min(1e-6)
            rotated[row] = (moved * scale).to(hidden.dtype)
        return rotated

    # --- calibration ---

    @classmethod
    def from_representations(
        cls,
        layer: int,
        forget: dict[str, torch.Tensor],
        neutral: Sequence[torch.Tensor],
        *,
        strength: float = 4.0,
        target_fpr: float = 0.05,
        window: int = 8,
    ) -> ActivationGuard:
        """A guard from the outputs of `layer`: `forget` maps each cluster's name to its
        prompts' outputs at their last position [prompts, hidden]; `neutral` holds, for each
        prompt to leave alone, its outputs at its last positions [positions, hidden]."""
        import torch

        if not forget or any(len(r) == 0 for r in forget.values()):
            raise ValueError("an activation guard needs at least one prompt in every cluster")
        if len(neutral) < 2:
            raise ValueError("an activation guard needs at least two neutral prompts to calibrate")
        if not 0 <= target_fpr < 1:
            raise ValueError(f"target_fpr must be in [0, 1), got {target_fpr}")
        mean = torch.stack([n[-1].float() for n in neutral]).mean(dim=0)
        clusters = []
        for name, reps in forget.items():
            reps = reps.float()
            centroid = reps.mean(dim=0) - mean
            direction = centroid / centroid.norm().clamp_min(1e-6)
            projection = float((reps @ direction).mean())
            clusters.append(GuardCluster(name, centroid, direction, strength * abs(projection)))
        guard = cls(layer=layer, neutral_mean=mean, clusters=clusters, threshold=1.0, window=window)
        scores = [guard.score(n.float()[None])[0][0] for n in neutral]
        guard.threshold = threshold_for(scores, target_fpr)
        guard.calibrated_fpr = sum(s >= guard.threshold for s in scores) / len(scores)
        guard.target_fpr = target_fpr
        return guard

    def describe(self) -> dict[str, object]:
        return {
            "layer": self.layer,
            "clusters": [c.name for c in self.clusters],
            "threshold": round(self.threshold, 4),
            "target_fpr": self.target_fpr,
            "calibrated_fpr": round(self.calibrated_fpr, 4),
            "steered": self.steered,
            "passed": self.passed,
        }


def threshold_for(scores: Sequence[float], target_fpr: float) -> float:
    """The lowest threshold that at most `target_fpr` of `scores` reach (a score fires when it
    is at least the threshold)."""
    ordered = sorted(scores, reverse=True)
    allowed = int(target_fpr * len(ordered))
    if allowed >= len(ordered):
        return min(ordered)
    # Just above the first score that must not fire; halfway to the one above it, if any.
    blocked = ordered[allowed]
    above = ordered[allowed - 1] if allowed > 0 else blocked + 2e-3
    return blocked + max((above - blocked) / 2, 1e-6) if above > blocked else blocked + 1e-6
