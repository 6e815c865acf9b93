"""The model card (``README.md``) of an adapter directory, generated from ``steering.json`` and the adapter config.

peft writes a blank template; wsteer replaces it with a card that says what the adapter steers (pair, template,
objective, data size), the calibrated α⁺/α⁻ when known, the evaluation figures when known (held-out margins from
training, the α sweep's headline figures once :func:`sweep_headline` stored them in ``steering.json``), and how to
load, steer, export and merge it. The metadata block (``base_model``, ``library_name: peft``, tags) is built with
``huggingface_hub.ModelCardData``, so the Hub links the adapter to its base.

The card is regenerated whenever steering.json changes (training, calibration, ``wsteer adapters card``).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

from wsteer.errors import DataError
from wsteer.hub import is_portable
from wsteer.io import atomic_write_text, read_json
from wsteer.lora import ADAPTER_CONFIG
from wsteer.records import STEERING_FILE, SteeringInfo, read_steering_info

CARD_FILE = "README.md"
TAGS = ["wsteer", "steering", "weight-steering", "lora", "peft"]


def sweep_headline(summary: dict) -> dict:
    """The headline figures of an ``eval sweep`` summary.json: trait mean per α, Spearman ρ, standardised slope,
    nuisance flags. Stored in ``steering.json``'s ``metrics.sweep`` so every regenerated card keeps them."""
    dose = summary.get("dose_response") or {}
    trait = dose.get("trait") or "trait"
    per_alpha = [
        {"alpha": arm["alpha"], **{k: arm["metrics"][trait].get(k) for k in ("mean", "lo", "hi", "n")}}
        for arm in sorted((a for a in summary.get("arms", []) if a.get("kind") == "adapter"), key=lambda a: a["alpha"])
        if trait in arm.get("metrics", {})
    ]
    return {
        "trait_metric": trait,
        "n_prompts": summary.get("n_prompts"),
        "per_alpha": per_alpha,
        "spearman": dose.get("spearman"),
        "std_slope": (dose.get("trait_slope") or {}).get("std_slope"),
        "flags": dose.get("flags") or [],
    }


def _num(value, spec: str = ".3g") -> str:
    return "n/a" if value is None else format(value, spec)


def _slug(text: str) -> str:
    """A Hub-style tag word: lower case, runs of other characters as one hyphen."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def card_metadata(base_id: str | None, info: SteeringInfo) -> str:
    """The YAML metadata block (without the ``---`` fences)."""
    from huggingface_hub import ModelCardData

    personas = [] if info.objective == "combined" else [_slug(p) for p in (info.pos, info.neg) if p]
    tags = [*TAGS, *(f"persona:{name}" for name in personas if name)]
    data = ModelCardData(
        base_model=base_id if is_portable(base_id) else None,
        library_name="peft",
        pipeline_tag="text-generation",
        tags=tags,
    )
    return data.to_yaml()


def _training_section(info: SteeringInfo, base_id: str | None, config: dict) -> list[str]:
    provenance = info.provenance or {}
    base = provenance.get("base") or {}
    data = "not recorded"
    if "train_pairs" in provenance:
        data = f"{provenance['train_pairs']} training pairs, {provenance.get('heldout_pairs', 0)} held out"
    if info.data_sha256:
        data += f" (data sha256 `{info.data_sha256[:12]}…`)"
    targets = config.get("target_modules") or []
    targets = targets if isinstance(targets, str) else ", ".join(sorted(targets))  # peft keeps "all-linear" as is
    base_line = f"`{base_id}`" if base_id else "unknown"
    if not is_portable(base_id):
        base_line += " (a local directory: not loadable elsewhere)"
    rows = [
        ("trait", f"**{info.pos}** (α > 0) ↔ **{info.neg}** (α < 0)"),
        ("persona template", f"`{info.template}`"),
        ("objective", f"`{info.objective}`"),
        ("data", data),
        ("base model", base_line),
        ("LoRA", f"r = {config.get('r')}, lora_alpha = {config.get('lora_alpha')}, targets {targets}"),
    ]
    lines = ["## Training", "", "| | |", "|---|---|", *[f"| {k} | {v} |" for k, v in rows], ""]
    if base.get("weights"):
        lines += [f"Base weights: {base['weights']}.", ""]  # the embedded model is not the hub checkpoint
    return lines


def _calibration_section(info: SteeringInfo) -> list[str]:
    calibrated = info.calibrated_alpha
    lines = ["## Calibrated α", ""]
    if not calibrated:
        return [*lines, "Not calibrated yet: run `wsteer adapters calibrate ADAPTER`.", ""]
    return [
        *lines,
        f"- α⁺ = **{_num(calibrated.get('plus'), '.4g')}** (toward {info.pos}), "
        f"α⁻ = **{_num(calibrated.get('minus'), '.4g')}** (toward {info.neg})",
        f"- calibration target {_num(calibrated.get('target_kl'))} for the "
        f"{calibrated.get('statistic', 'calibration statistic')}",
        f"- base-model perplexity of the steered answers: {_num(calibrated.get('base_perplexity_plus'))} at α⁺, "
        f"{_num(calibrated.get('base_perplexity_minus'))} at α⁻, "
        f"{_num(calibrated.get('base_perplexity_unsteered'))} unsteered",
        "",
    ]


def _evaluation_section(info: SteeringInfo) -> list[str]:
    metrics = info.metrics or {}
    heldout, sweep = metrics.get("heldout") or {}, metrics.get("sweep")
    lines = ["## Evaluation", ""]
    if heldout.get("n"):
        lines.append(
            f"- held-out preference margin (mean log p {info.pos} − {info.neg} answer, {heldout['n']} pairs): "
            f"{_num(heldout.get('margin_base'))} at α = 0, shift {_num(heldout.get('shift_plus'), '+.3g')} at "
            f"α = +1 and {_num(heldout.get('shift_minus'), '+.3g')} at α = −1"
        )
    if sweep:
        rho = sweep.get("spearman") or {}
        lines.append(
            f"- α sweep ({sweep.get('n_prompts')} prompts): Spearman ρ({sweep['trait_metric']}, α) = "
            f"{_num(rho.get('rho'), '.3f')} (p = {_num(rho.get('p'), '.2g')}), standardised slope "
            f"{_num(sweep.get('std_slope'))} per unit α"
        )
        lines += ["", f"| α | {sweep['trait_metric']} (95% CI) |", "|---|---|"]
        lines += [
            f"| {p['alpha']:+g} | {_num(p['mean'])} ({_num(p['lo'])}, {_num(p['hi'])}) |" for p in sweep["per_alpha"]
        ]
        lines += [f"- ⚠ {flag}" for flag in sweep.get("flags", [])]
    if len(lines) == 2:
        lines.append(
            "No evaluation recorded yet: run `wsteer eval sweep`, then `wsteer adapters card ADAPTER sweep=…`."
        )
    return [*lines, ""]


def _export_section(info: SteeringInfo) -> list[str]:
    export = (info.provenance or {}).get("export")
    if not export:
        return []
    return [
        "## α folded in",
        "",
        f"This is an export: α = {export['alpha']:+.4g} ({export['requested']}) is folded into `lora_B`, so stock "
        "peft, vLLM and lm-eval run it at that α with their default scaling. Do not scale it again; to steer at "
        "other α, use the source adapter.",
        "",
    ]


def _usage_section(base_id: str | None, revision: str | None, where: str, exported: bool) -> list[str]:
    base = base_id or "BASE"
    pinned = f', revision="{revision}"' if revision else ""
    python = [
        "```python",
        "from peft import PeftModel",
        "from transformers import AutoModelForCausalLM, AutoTokenizer",
        "",
        f'base = AutoModelForCausalLM.from_pretrained("{base}"{pinned})',
        f'model = PeftModel.from_pretrained(base, "{where}")',
        f'tokenizer = AutoTokenizer.from_pretrained("{base}"{pinned})',
        "```",
        "",
    ]
    if exported:
        return ["## Use", "", *python]
    return [
        "## Use",
        "",
        "Stock peft (and vLLM, lm-eval) run the adapter at α = +1:",
        "",
        *python,
        "At the calibrated α without wsteer: export a plain peft adapter with α folded into its weights,",
        "",
        "```bash",
        f"wsteer adapters export {where} alpha=calibrated out=ADAPTER_PLUS     # α⁺",
        f"wsteer adapters export {where} alpha=calibrated- out=ADAPTER_MINUS   # α⁻",
        "```",
        "",
        "Steer at any α, or merge one α into a full checkpoint, with wsteer:",
        "",
        "```bash",
        f"wsteer adapters steer {where} 'alphas=[-1,0,1]' 'prompts=[\"Tell me about your day.\"]'",
        f"wsteer adapters merge {where} alpha=calibrated out=MERGED",
        "```",
        "",
    ]


def render_model_card(info: SteeringInfo, adapter_config: dict, repo_id: str | None = None) -> str:
    """The card's text: Hub metadata, then what the adapter steers, its calibration, evaluation and usage.

    ``repo_id``: where the adapter is published (used in the usage snippets; default ``path/to/adapter``).
    """
    base_id = adapter_config.get("base_model_name_or_path")
    exported = bool((info.provenance or {}).get("export"))
    metadata = card_metadata(base_id, info)
    # Pairs without persona names (e.g. standard preference data) still have a chosen and a rejected side.
    info = dataclasses.replace(info, pos=info.pos or "chosen-side", neg=info.neg or "rejected-side")
    title = f"# Steering adapter: {info.pos} ↔ {info.neg}"
    intro = (
        f"A LoRA adapter made with wsteer that steers `{base_id}` along one trait. Scaled by α > 0 it moves the "
        f"model toward the **{info.pos}** persona, by α < 0 toward **{info.neg}**; α = 0 is the base model. The "
        "persona never appears in the prompt: the trait lives in the weights."
    )
    lines = [
        "---",
        metadata.rstrip("\n"),
        "---",
        "",
        title,
        "",
        intro,
        "",
        *_export_section(info),
        *_training_section(info, base_id, adapter_config),
        *_calibration_section(info),
        *_evaluation_section(info),
        *_usage_section(base_id, adapter_config.get("revision"), repo_id or "path/to/adapter", exported),
        f"`{STEERING_FILE}` beside the adapter holds the full record (training config, metrics, versions).",
    ]
    return "\n".join(lines) + "\n"


def write_model_card(adapter_dir: str | Path, repo_id: str | None = None) -> Path:
    """(Re)write ``README.md`` in ``adapter_dir`` from its ``steering.json`` and ``adapter_config.json``.

    ``repo_id`` names the adapter in the usage snippets; default: the repo it was pushed to, if any.
    """
    adapter_dir = Path(adapter_dir)
    info = read_steering_info(adapter_dir)
    if info is None:
        raise DataError(
            f"no {STEERING_FILE} to build a model card from",
            where=str(adapter_dir),
            fix="pass an adapter directory written by `wsteer train`",
        )
    config = read_json(adapter_dir / ADAPTER_CONFIG)
    repo_id = repo_id or ((info.provenance or {}).get("hub") or {}).get("repo_id")
    return atomic_write_text(adapter_dir / CARD_FILE, render_model_card(info, config, repo_id=repo_id))
