"""``python -m wsteer.pairs …`` runs ``wsteer pairs …``
(the same code, e.g. under ``accelerate launch -m wsteer.pairs``)."""

from wsteer.cli import stage_main

stage_main("pairs")
