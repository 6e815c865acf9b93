"""Inspecting an adapter: what it steers, how it was trained, and how large its delta is, layer by layer."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

from wsteer.adapters.loading import open_adapter

from wsteer.config import option
from wsteer.lora import module_delta

_LAYER = re.compile(r"\.(\d+)\.")


@dataclass
class InspectConfig:
    """``wsteer adapters inspect``: base, personas, rank, targets, per-layer ‖ΔW‖, calibration."""

    adapter: str | None = option(None, "Adapter directory (or give it as the positional ADAPTER).")
    json: bool = option(False, "Print the full report as JSON.")


def inspect_adapter(adapter: str | Path) -> dict:
    """A JSON-ready description of an adapter directory.

    Keys: adapter, base_model, base_hash, base_id (adapter_config's base_model_name_or_path), pos, neg, template,
    objective, rank, lora_alpha, use_rslora, target_modules, modules (per module: rank, scaling, shape, delta_norm =
    ‖ΔW‖_F at α = 1), delta_norm_by_layer and delta_norm_by_target (root-sum-square of the module norms),
    total_delta_norm, calibrated_alpha, metrics, train_config, data_sha256, provenance, has_steering_json.
    """
    source = open_adapter(adapter)
    files, info = source.files, source.info
    modules = []
    for module in files.modules():
        a, _ = files.factors(module)
        delta = module_delta(files, module)  # one module at a time: memory stays at one delta
        modules.append(
            {
                "module": module,
                "rank": int(a.shape[0]),
                "scaling": files.scaling(module),
                "shape": list(delta.shape),
                "delta_norm": float(delta.norm()),
            }
        )
    by_layer: dict[str, float] = {}
    by_target: dict[str, float] = {}
    for row in modules:
        layer = _LAYER.search(row["module"])
        for key, table in ((layer.group(1) if layer else "-", by_layer), (row["module"].rsplit(".", 1)[-1], by_target)):
            table[key] = table.get(key, 0.0) + row["delta_norm"] ** 2
    config = files.config
    return {
        "adapter": str(source.path),
        "has_steering_json": info is not None,
        "base_model": (info.base_model if info else None) or config.get("base_model_name_or_path"),
        "base_hash": source.base_hash,
        "base_id": config.get("base_model_name_or_path"),  # what peft, vLLM and the Hub load the base by
        "pos": info.pos if info else None,
        "neg": info.neg if info else None,
        "template": info.template if info else None,
        "objective": info.objective if info else None,
        "rank": config.get("r"),
        "lora_alpha": config.get("lora_alpha"),
        "use_rslora": bool(config.get("use_rslora")),
        "rank_pattern": config.get("rank_pattern") or {},
        "target_modules": sorted({row["module"].rsplit(".", 1)[-1] for row in modules}),
        "modules": modules,
        "delta_norm_by_layer": {k: math.sqrt(v) for k, v in sorted(by_layer.items(), key=_layer_order)},
        "delta_norm_by_target": {k: math.sqrt(v) for k, v in sorted(by_target.items())},
        "total_delta_norm": math.sqrt(sum(row["delta_norm"] ** 2 for row in modules)),
        "calibrated_alpha": info.calibrated_alpha if info else None,
        "metrics": info.metrics if info else {},
        "train_config": info.train_config if info else {},
        "data_sha256": info.data_sha256 if info else None,
        "provenance": info.provenance if info else {},
    }


def _layer_order(item: tuple[str, float]) -> tuple[int, str]:
    return (int(item[0]), "") if item[0].isdigit() else (1 << 30, item[0])


def format_report(report: dict) -> str:
    """Human-readable text of :func:`inspect_adapter`'s report: summary, then a layer × target ‖ΔW‖ table."""
    lines: list[str | None] = [f"adapter      {report['adapter']}"]
    if not report["has_steering_json"]:
        lines.append("             (plain peft adapter: no steering.json, so no personas or training record)")
    lines += [
        f"base model   {report['base_model']}"
        + (f"  (fingerprint {report['base_hash'][:12]}…)" if report["base_hash"] else ""),
        f"base id      {report['base_id']}  (adapter_config.json: what peft, vLLM and the Hub load)"
        if report["base_id"] and report["base_id"] != report["base_model"]
        else None,
        f"personas     pos: {report['pos']!r}   neg: {report['neg']!r}" if report["has_steering_json"] else None,
        f"template     {report['template']!r}" if report["template"] else None,
        f"objective    {report['objective']}" if report["objective"] else None,
        f"LoRA         r={report['rank']} lora_alpha={report['lora_alpha']} rsLoRA={report['use_rslora']}"
        + (f" rank_pattern={report['rank_pattern']}" if report["rank_pattern"] else ""),
        f"targets      {', '.join(report['target_modules'])} ({len(report['modules'])} modules)",
        f"‖ΔW‖_F       total {report['total_delta_norm']:.4g} at α = 1",
    ]
    calibrated = report["calibrated_alpha"]
    if calibrated:
        shown = ("plus", "minus", "target_kl", "quantile", "tokens", "kl_plus", "kl_minus")
        lines.append("calibrated α " + "  ".join(f"{k}={_fmt(calibrated[k])}" for k in shown if k in calibrated))
    else:
        lines.append("calibrated α (none: run `wsteer adapters calibrate`)")
    if report["metrics"]:
        lines.append(
            "metrics      "
            + "  ".join(f"{k}={_fmt(v)}" for k, v in report["metrics"].items() if not isinstance(v, (dict, list)))
        )
    lines.append("")
    lines.extend(_norm_table(report))
    return "\n".join(line for line in lines if line is not None)


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _norm_table(report: dict) -> list[str]:
    """Rows: layers; columns: target module names; cells: ‖ΔW‖_F; last column: the layer's root-sum-square."""
    targets = report["target_modules"]
    cells: dict[str, dict[str, float]] = {}
    for row in report["modules"]:
        layer = _LAYER.search(row["module"])
        cells.setdefault(layer.group(1) if layer else "-", {})[row["module"].rsplit(".", 1)[-1]] = row["delta_norm"]
    width = max(10, *(len(t) + 2 for t in targets))
    header = "layer".ljust(7) + "".join(t.rjust(width) for t in targets) + "layer ‖ΔW‖".rjust(width + 2)
    lines = [header]
    for layer, total in report["delta_norm_by_layer"].items():
        row = cells.get(layer, {})
        lines.append(
            layer.ljust(7)
            + "".join((f"{row[t]:.4g}" if t in row else "-").rjust(width) for t in targets)
            + f"{total:.4g}".rjust(width + 2)
        )
    return lines
