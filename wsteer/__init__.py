"""wsteer: weight steering from mirrored persona pairs.

One import namespace in three layers, imports pointing down only:

- core: ``wsteer.config``, ``io``, ``models``, ``chat``, ``scoring``, ``records``, ``generation``, ``textstats``,
  ``stats``, ``leak``, ``manifest`` …
- stages: ``wsteer.pairs``, ``wsteer.train``, ``wsteer.adapters``, ``wsteer.eval`` (in the repository they are the
  top-level folders ``pairs/``, ``train/``, ``adapters/``, ``eval/``, mapped into this namespace at install);
- pipeline and CLI on top: ``wsteer.pipeline`` (the demo, the config reference) and ``wsteer.cli``.

The public API is re-exported here lazily (``import wsteer`` stays cheap): ``wsteer.Adapter`` is
:class:`wsteer.adapters.adapter.Adapter`.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["Adapter", "__version__"]


def __getattr__(name: str):
    """Import the public API on first use."""
    if name == "Adapter":
        from wsteer.adapters.adapter import Adapter

        return Adapter
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
