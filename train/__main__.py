"""``python -m train …`` runs ``wsteer train …`` (same code, e.g. under ``accelerate launch -m train``)."""

from wsteer.cli import stage_main

stage_main("train")
