"""How a game is written into an agent's memory, and read back.

One message a line, `speaker: text`, the agent's own lines marked `speaker (you): text`; a
message that runs over several lines continues on lines indented by four spaces, so no text a
model writes can pose as another speaker's line. The last line says how the game ended:

    seller (you): This is a good balloon and its price is $20. [OFFER $20]
    buyer: Would you sell it for $10? [OFFER $10]
    Result: deal at $15.

Reading it back gives each message's place in the text, which is how a span of turns is found
for forgetting and how feedback is re-derived from a remembered (perhaps scrubbed) game.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["CONTINUATION", "RememberedLine", "read_transcript", "render_transcript"]

CONTINUATION = "    "
_RESULT = "Result: "
_HEAD = re.compile(r"^(?P<speaker>[^\s:][^:\n]*?)(?P<own> \(you\))?: ", re.UNICODE)


@dataclass(frozen=True, slots=True)
class RememberedLine:
    """One message of a remembered game: who said it, whether it was the agent itself, its text
    (continuation lines joined back with newlines), and where it stands in the content."""

    speaker: str
    own: bool
    text: str
    start: int
    end: int


def render_transcript(messages: Sequence[tuple[str, str]], me: str, ending: str) -> str:
    """The game of `messages` ((speaker, text), in order) as `me` remembers it."""
    lines = []
    for speaker, text in messages:
        head = f"{speaker}{' (you)' if speaker == me else ''}: "
        first, *rest = text.split("\n")
        lines.append(head + first)
        lines.extend(CONTINUATION + line for line in rest)
    lines.append(f"{_RESULT}{ending}.")
    return "\n".join(lines)


def read_transcript(content: str) -> tuple[list[RememberedLine], str | None]:
    """The messages of a remembered game and how it ended (None if the line is missing)."""
    messages: list[RememberedLine] = []
    result: str | None = None
    at = 0
    current: dict[str, object] | None = None
    texts: list[str] = []

    def close(end: int) -> None:
        nonlocal current
        if current is not None:
            messages.append(
                RememberedLine(
                    speaker=str(current["speaker"]),
                    own=bool(current["own"]),
                    text="\n".join(texts),
                    start=int(str(current["start"])),
                    end=end,
                )
            )
            current = None

    previous_end = 0
    for line in content.split("\n"):
        start, end = at, at + len(line)
        at = end + 1
        if line.startswith(CONTINUATION) and current is not None:
            texts.append(line[len(CONTINUATION) :])
            previous_end = end
            continue
        close(previous_end)
        if line.startswith(_RESULT):
            result = line[len(_RESULT) :].removesuffix(".")
            previous_end = end
            continue
        head = _HEAD.match(line)
        if head is None:
            previous_end = end
            continue
        current = {"speaker": head["speaker"], "own": bool(head["own"]), "start": start}
        texts = [line[head.end() :]]
        previous_end = end
    close(previous_end)
    return messages, result
