"""``python -m wsteer.adapters …`` runs ``wsteer adapters …``
(the same code, e.g. under ``accelerate launch -m wsteer.adapters``)."""

from wsteer.cli import stage_main

stage_main("adapters")
