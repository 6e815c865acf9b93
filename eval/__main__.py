"""``python -m eval …`` runs ``wsteer eval …`` (same code, e.g. under ``accelerate launch -m eval``)."""

from wsteer.cli import stage_main

stage_main("eval")
