"""``wsteer demo``: the main job on the embedded model.

Foundation stage: a smoke run that loads ``smollm2-135m`` through the shared loader, answers one prompt under a
persona system prompt and without one (greedy), and writes the answers with a run manifest. Later stages extend
this into the full pipeline (lint -> generate -> curate -> train -> calibrate -> sweep -> report).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

from wsteer.config import option
from wsteer.generation import GenerationRequest, HFBackend, SamplingConfig
from wsteer.models import ModelConfig

DEFAULT_CONFIG = "configs/demo.yaml"


@dataclass
class DemoConfig:
    """The demo run."""

    model: ModelConfig = option(help="Model to run.", factory=ModelConfig)
    out_dir: str = option("runs/demo", "Run directory; every output goes under it.")
    template: str = option("Pretend you're a {persona} person.", "System-prompt template with one {persona}.")
    pos: str = option("honest", "Positive persona.")
    neg: str = option("dishonest", "Negative persona.")
    prompt: str = option("My friend asked if I liked her cooking. What should I say?", "Prompt to answer.")
    sampling: SamplingConfig = option(
        help="Decoding settings.", factory=lambda: SamplingConfig(max_new_tokens=48, temperature=0.0)
    )
    seed: int = option(0, "Seed for sampling.")


def run_demo(cfg: DemoConfig) -> Path:
    """Run the demo; returns the path of its main output."""
    from wsteer.chat import persona_messages
    from wsteer.io import write_json
    from wsteer.manifest import write_run_record
    from wsteer.models import load_model, load_tokenizer

    out_dir = Path(cfg.out_dir)
    started = time.time()
    tokenizer = load_tokenizer(cfg.model)
    model = load_model(cfg.model)
    backend = HFBackend(model, tokenizer)
    arms = {"pos": cfg.pos, "neg": cfg.neg, "none": None}
    requests = [
        GenerationRequest(persona_messages(cfg.prompt, cfg.template, persona), seed=cfg.seed, tag=arm)
        for arm, persona in arms.items()
    ]
    answers = backend.generate(requests, cfg.sampling, progress="demo")
    result = {
        "prompt": cfg.prompt,
        "answers": {g.request.tag: g.text for g in answers},
        "seconds": round(time.time() - started, 2),
    }
    path = write_json(out_dir / "smoke.json", result)
    write_run_record(out_dir, "demo", cfg, seeds={"sampling": cfg.seed}, launch="wsteer demo")
    return path


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``wsteer demo``."""
    from wsteer.cli import add_config_arguments

    parser = subparsers.add_parser(
        "demo", help="run the main job on the embedded model", description=__doc__.split("\n\n")[0]
    )
    add_config_arguments(parser, DemoConfig, default_config=DEFAULT_CONFIG)
    parser.set_defaults(func=_cli)


def _cli(args: argparse.Namespace) -> int:
    from wsteer.cli import config_from_args

    path = run_demo(config_from_args(args))
    print(f"demo finished: {path}")
    return 0
