"""The settings every arm comparison shares: who judges, which pair, which prompts, how arms answer and are scored.

:class:`ArmSettings` is the base of :class:`wsteer.eval.sweep.SweepConfig` and :class:`wsteer.eval.ab.ABConfig`,
so both commands read these keys from the top level of their YAML files under the same names, with the same types,
defaults and help.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from wsteer.chat import fill_template
from wsteer.config import option
from wsteer.errors import WsteerError
from wsteer.generation import SamplingConfig
from wsteer.leak import VocabularyFilter
from wsteer.models import Placement
from wsteer.prompts import PromptSource
from wsteer.vllm_engine import Engine, VLLMOptions


@dataclass
class ArmSettings:
    """Base model, persona pair, prompts, sampling, vocabulary filter and scoring shared by sweep and A/B."""

    base: str | None = option(
        None,
        "Base model that judges every arm (PLR, perplexity, KL); default: the one the adapter (or merged "
        "checkpoint) records, checked against its hash.",
    )
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = option("float32", "Base model dtype.")
    placement: Placement = option(help="Sharding (device_map, max_memory) and 4/8-bit loading.", factory=Placement)
    pos: str | None = option(None, "Positive persona; default: steering.json's.")
    neg: str | None = option(None, "Negative persona; default: steering.json's.")
    template: str | None = option(None, "System-prompt template; default: steering.json's.")
    prompts: PromptSource = option(
        help="Eval prompts (default: the held-out split of the built-in suite).",
        factory=lambda: PromptSource(split="heldout", limit=24),
    )
    samples_per_prompt: int = option(1, "Answers per prompt and arm, each with its own seed.")
    seed: int = option(0, "Base seed; every arm answers a (prompt, sample) with the same derived seed.")
    sampling: SamplingConfig = option(
        help="Decoding settings, identical for every arm.",
        factory=lambda: SamplingConfig(max_new_tokens=64, temperature=0.7),
    )
    vocabulary: VocabularyFilter = option(
        help="Persona-vocabulary filter applied to every arm.", factory=lambda: VocabularyFilter(mode="ban")
    )
    kl: bool = option(True, "Score KL to the base model (two extra forward passes per answer).")
    batch_size: int = option(16, "Rows per generate / scoring batch.")
    engine: Engine = option("hf", "Generation engine: 'hf' (transformers) or 'vllm' (scoring stays on transformers).")
    vllm: VLLMOptions = option(help="vLLM engine settings (engine: vllm; docs/vllm.md).", factory=VLLMOptions)
    out_dir: str = option("runs/eval", "Output directory.")

    def __post_init__(self) -> None:
        if self.samples_per_prompt < 1:
            raise ValueError(f"samples_per_prompt must be >= 1, got {self.samples_per_prompt}")

    def resolve_pair(self, info, where: str, missing_from: str, retrain_hint: str = "") -> dict:
        """``{"pos", "neg", "template"}``: each from this config when set, else from ``info`` (a steering.json's
        :class:`~wsteer.records.SteeringInfo`, or None). The error for missing keys names them, says why
        (``missing_from``) and how to pass them; the template's {persona} slot is checked."""
        pair = {
            "pos": self.pos or (info.pos if info else None),
            "neg": self.neg or (info.neg if info else None),
            "template": self.template or (info.template if info else None),
        }
        missing = [k for k, v in pair.items() if not v]
        if missing:
            raise WsteerError(
                f"the prompt baselines and the trait score (PLR) need {', '.join(missing)}, and {missing_from}",
                where=where,
                fix=" ".join(f"{k}=…" for k in missing) + " on the command line or in the config" + retrain_hint,
            )
        fill_template(pair["template"], pair["pos"])  # validates the {persona} slot
        return pair
