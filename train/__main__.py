"""``python -m wsteer.train …`` runs ``wsteer train …``
(the same code, e.g. under ``accelerate launch -m wsteer.train``)."""

from wsteer.cli import stage_main

stage_main("train")
