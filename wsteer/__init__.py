"""wsteer: weight steering from mirrored persona pairs.

One import namespace in three layers, imports pointing down only:

- core: ``wsteer.config``, ``io``, ``models``, ``chat``, ``scoring``, ``records``, ``generation``, ``textstats``,
  ``stats``, ``leak``, ``manifest`` …
- stages: ``wsteer.pairs``, ``wsteer.train``, ``wsteer.adapters``, ``wsteer.eval`` (in the repository they are the
  top-level folders ``pairs/``, ``train/``, ``adapters/``, ``eval/``, mapped into this namespace at install);
- pipeline and CLI on top: ``wsteer.pipeline`` (the demo, the config reference) and ``wsteer.cli``.
"""

__version__ = "0.1.0"
