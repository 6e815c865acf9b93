"""Adapters: steer at any alpha, merge, combine, calibrate, inspect.

Modules: ``loading`` (find and check the base, load an adapter onto it), ``steer`` (the ``steer`` context manager),
``merge`` (streaming merge into a new checkpoint), ``combine`` (signed sums of adapters), ``calibrate`` (α⁺/α⁻ at a
target KL), ``inspect`` (what an adapter is), ``cli`` (the ``wsteer adapters`` verbs). The LoRA arithmetic itself
lives in :mod:`wsteer.lora`.
"""
