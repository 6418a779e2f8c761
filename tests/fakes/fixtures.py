"""Shared pytest fixtures; each fake lives in its own module beside this one."""

from __future__ import annotations
