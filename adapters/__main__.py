"""``python -m adapters …`` runs ``wsteer adapters …`` (same code, e.g. under ``accelerate launch -m adapters``)."""

from wsteer.cli import stage_main

stage_main("adapters")
