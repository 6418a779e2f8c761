"""haggler_mediation: a worked haggler plug-in package.

- `mediator.py`: a mediator role in one file (`SplitTheDifference`), registered as
  `role:split-the-difference`.
- `tactic.py`: a concession tactic that moves towards the mediator's suggestions,
  registered as `rule:toward-mediator`.
- `game.py`: `mediated-balloon`, the balloon game with a mediator at the table (seller,
  mediator, buyer, mediator, ...).

Nothing here is imported until haggler asks for one of those names.
"""
