"""wsteer: weight steering from mirrored persona pairs.

The shared core lives here (config, models, chat, io, manifest, generation, scoring, textstats, stats); the
stages are the top-level packages ``pairs``, ``train``, ``adapters`` and ``eval``, in that one-way order.
"""

__version__ = "0.1.0"
