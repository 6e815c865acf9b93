"""``python -m wsteer.eval …`` runs ``wsteer eval …``
(the same code, e.g. under ``accelerate launch -m wsteer.eval``)."""

from wsteer.cli import stage_main

stage_main("eval")
