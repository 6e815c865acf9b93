"""``python -m pairs …`` runs ``wsteer pairs …`` (same code, e.g. under ``accelerate launch -m pairs``)."""

from wsteer.cli import stage_main

stage_main("pairs")
