"""Adapters: steer at any alpha, merge, combine, calibrate, inspect.

Modules: ``adapter`` (:class:`Adapter`, an adapter as a value: load, negate, scale, add, steer, merge, save),
``loading`` (find and check the base, load an adapter onto it), ``steer`` (the ``steer`` context manager),
``merge`` (streaming merge into a new checkpoint), ``combine`` (signed sums of adapters), ``calibrate`` (α⁺/α⁻ at a
target KL), ``inspect`` (what an adapter is), ``cli`` (the ``wsteer adapters`` verbs). The LoRA arithmetic itself
lives in :mod:`wsteer.lora`.
"""

from __future__ import annotations

__all__ = ["Adapter"]


def __getattr__(name: str):
    """``wsteer.adapters.Adapter``, imported on first use (importing a submodule stays light)."""
    if name == "Adapter":
        from wsteer.adapters.adapter import Adapter

        return Adapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
