"""``train_adapter(cfg)``: curated pairs -> a steering LoRA adapter directory.

The same function runs in one process (``wsteer train``) and under ``accelerate launch`` / ``torchrun`` (one copy
per process; TRL/transformers shard the data and synchronise the gradients). Only the main process writes
outputs. Layout:

    <output_dir>/          the adapter: adapter_config.json + adapter_model.safetensors (plain peft, base recorded by
                           its hub id), steering.json, README.md (model card), metrics.json, config.yaml +
                           manifest.json (the run record); built under a temp name and renamed when complete
    <output_dir>.work/     checkpoints (a rerun resumes from the last complete one), prepared data, tracker logs;
                           removed after success unless keep_checkpoints
"""

from __future__ import annotations

import gc
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from wsteer.train.config import TrainConfig
from wsteer.train.data import (
    PairSet,
    completion_rows,
    load_pair_set,
    preference_rows,
    prompt_messages,
    to_dataset,
)
from wsteer.train.objectives import (
    cpu_only,
    dpo_arguments,
    lora_config,
    make_sft_trainer_class,
    make_trainer_classes,
    score_completion_tokens_only_on_cpu,
    sft_arguments,
)

from wsteer.config import config_to_dict
from wsteer.errors import ConfigError, DataError, WsteerError
from wsteer.io import read_json, write_json

WORK_STATE = "work_state.json"
# Keys that change where things go or how they are logged, not what is trained: a rerun may change them freely.
_NOT_TRAINING = {
    "output_dir",
    "checkpoint_dir",
    "resume",
    "keep_checkpoints",
    "report_to",
    "logging_steps",
    "progress",
    "run_name",
    "eval_batch_size",
    "save_steps",
    "save_total_limit",
    "dataloader_workers",
    "num_threads",
    "pair",  # only recorded in steering.json
}
# Per-step log keys aggregated per epoch in metrics.json.
_EPOCH_KEYS = (
    "loss",
    "rewards/margins",
    "rewards/accuracies",
    "rewards/chosen",
    "rewards/rejected",
    "rewards/margins_plus",
    "rewards/accuracies_plus",
    "rewards/margins_minus",
    "rewards/accuracies_minus",
    "kl_to_base",
    "mean_token_accuracy",
    "grad_norm",
)


@dataclass
class TrainResult:
    """What a training run produced. ``model`` is the live peft model (adapter ``default`` = the steering adapter)."""

    output_dir: Path
    metrics: dict = field(default_factory=dict)
    model: Any = None
    tokenizer: Any = None


# --------------------------------------------------------------------------------------------- work directory
def work_dir(cfg: TrainConfig) -> Path:
    """Checkpoints and prepared data of a run: ``checkpoint_dir`` or ``<output_dir>.work``."""
    return Path(cfg.checkpoint_dir) if cfg.checkpoint_dir else Path(f"{cfg.output_dir}.work")


def training_identity(cfg: TrainConfig, data_sha: str, heldout_sha: str | None) -> dict:
    """Everything that determines the trained weights; checkpoints are only resumed under the same identity."""
    config = {k: v for k, v in config_to_dict(cfg).items() if k not in _NOT_TRAINING}
    config.pop("data", None)
    config.pop("heldout", None)
    return {"config": config, "data_sha256": data_sha, "heldout_sha256": heldout_sha}


def _differences(old: Any, new: Any, prefix: str = "") -> list[str]:
    if isinstance(old, dict) and isinstance(new, dict):
        keys = sorted(set(old) | set(new))
        return [d for k in keys for d in _differences(old.get(k), new.get(k), f"{prefix}{k}.")]
    return [] if old == new else [prefix.rstrip(".")]


def check_resumable(cfg: TrainConfig, identity: dict) -> None:
    """Refuse a work dir whose checkpoints were made with other settings (reads only; nothing to resume is fine)."""
    work = work_dir(cfg)
    state_file = work / WORK_STATE
    if not cfg.resume or not state_file.is_file():
        return
    changed = _differences(read_json(state_file).get("identity"), identity)
    if changed:
        raise WsteerError(
            f"the checkpoints there were made with different settings ({', '.join(changed[:6])})",
            where=str(work),
            fix=f"rerun with the original settings to resume, or delete {work} (or pass resume=false) to start over",
        )


def prepare_work_dir(cfg: TrainConfig, identity: dict) -> Path:
    """Create the work dir, or check that its checkpoints belong to this config and data (main process only)."""
    work = work_dir(cfg)
    state_file = work / WORK_STATE
    if work.exists() and not cfg.resume:
        shutil.rmtree(work)
    check_resumable(cfg, identity)
    work.mkdir(parents=True, exist_ok=True)
    if not state_file.is_file():
        write_json(state_file, {"identity": identity})
    return work


def last_complete_checkpoint(directory: Path) -> str | None:
    """The newest ``checkpoint-N`` whose trainer state was written (the last file a checkpoint save writes).

    A kill in the middle of a save leaves a checkpoint without ``trainer_state.json``; it is skipped (and removed,
    so checkpoint rotation does not count it).
    """
    if not directory.is_dir():
        return None
    complete = []
    for path in directory.glob("checkpoint-*"):
        suffix = path.name.split("-", 1)[1]
        if not (path.is_dir() and suffix.isdigit()):
            continue
        if (path / "trainer_state.json").is_file():
            complete.append((int(suffix), path))
        else:
            shutil.rmtree(path, ignore_errors=True)
    return str(max(complete)[1]) if complete else None


# --------------------------------------------------------------------------------------------- metrics
def per_epoch(log_history: list[dict]) -> list[dict]:
    """Mean of each logged training metric per epoch (log entries are assigned to epoch ceil(epoch))."""
    buckets: dict[int, list[dict]] = {}
    for entry in log_history:
        if "loss" not in entry or "epoch" not in entry:
            continue
        epoch = max(1, math.ceil(round(entry["epoch"], 6)))
        buckets.setdefault(epoch, []).append(entry)
    summary = []
    for epoch in sorted(buckets):
        entries = buckets[epoch]
        row: dict[str, Any] = {"epoch": epoch, "steps": [e["step"] for e in entries][-1]}
        for key in _EPOCH_KEYS:
            values = [e[key] for e in entries if key in e and e[key] is not None]
            if values:
                row[key] = sum(values) / len(values)
        summary.append(row)
    return summary


def heldout_margins(model, tokenizer, records: list[dict], batch_size: int, steerable: bool = True) -> dict:
    """Length-normalised preference margins (mean logp cho - mean logp rej) on held-out pairs at α = 0, +1, -1.

    ``shift_plus`` > 0 means the adapter at +1 moved held-out pairs toward cho; ``shift_minus`` < 0 means -1 moved
    them toward rej.
    """
    import contextlib

    from wsteer.lora import scaled_adapter

    if not records:
        return {"n": 0}
    conversations = [prompt_messages(r) for r in records]  # as trained: no persona, the record's own turns
    cho, rej = [r["cho"] for r in records], [r["rej"] for r in records]
    was_training = model.training
    model.eval()
    result: dict[str, Any] = {"n": len(records)}
    arms = {"base": 0.0, "plus": 1.0, "minus": -1.0} if steerable else {"base": 0.0, "plus": None}
    for arm, alpha in arms.items():
        if alpha is None:
            context = contextlib.nullcontext()
        elif not steerable:
            context = model.disable_adapter()
        else:
            context = scaled_adapter(model, alpha)
        with context:
            margins = _margins(model, tokenizer, conversations, cho, rej, batch_size)
        result[f"margin_{arm}"] = sum(margins) / len(margins)
        result[f"per_pair_{arm}"] = margins
    result["shift_plus"] = result["margin_plus"] - result["margin_base"]
    if "margin_minus" in result:
        result["shift_minus"] = result["margin_minus"] - result["margin_base"]
    model.train(was_training)
    return result


def _margins(model, tokenizer, conversations: list, cho: list[str], rej: list[str], batch_size: int) -> list[float]:
    """Per pair: mean token logp of cho minus that of rej after the same conversation (length-normalised)."""
    from wsteer.scoring import completion_logprobs, mean_logprob

    both = completion_logprobs(model, tokenizer, conversations + conversations, cho + rej, batch_size)
    n = len(conversations)
    return [mean_logprob(c) - mean_logprob(r) for c, r in zip(both[:n], both[n:])]


# --------------------------------------------------------------------------------------------- objectives
def _train_preference(cfg: TrainConfig, model, tokenizer, pairs: PairSet, work: Path, state, callbacks: Sequence):
    """dpo / bidirectional: returns (peft model, {"train": log_history})."""
    preference_trainer, bidirectional_trainer = make_trainer_classes()
    with state.main_process_first():
        dataset = to_dataset(preference_rows(pairs.train), work / "data" / "preference")
    kwargs: dict[str, Any] = {"reference_is_initial_adapter": cfg.lora.is_pissa, "kl_coef": cfg.kl_coef}
    trainer_cls = bidirectional_trainer if cfg.objective == "bidirectional" else preference_trainer
    if cfg.objective == "bidirectional":
        kwargs["pole_scales"] = tuple(cfg.pole_scales)
    trainer = trainer_cls(
        model=model,
        ref_model=None,
        args=dpo_arguments(cfg, str(work / "checkpoints")),
        train_dataset=dataset,
        processing_class=tokenizer,
        peft_config=lora_config(cfg),
        callbacks=list(callbacks),
        **kwargs,
    )
    assert trainer.ref_model is None, "the reference must be the adapter-disabled model, not a second copy"
    if cfg.lora.is_pissa:
        _save_initial_adapter(trainer.model, work, state)
    resume = last_complete_checkpoint(work / "checkpoints") if cfg.resume else None
    trainer.train(resume_from_checkpoint=resume)
    adapter_state = gather_adapter_state(trainer)
    return (
        trained_model(trainer),
        adapter_state,
        {
            "train": trainer.state.log_history,
            "resumed_from": resume,
            "distributed_type": str(trainer.accelerator.distributed_type.value),
        },
    )


def trained_model(trainer):
    """The trained peft model as a plain module: without DDP wrapping and without the autocast wrapper accelerate
    put around its forward for mixed-precision training (held-out metrics and callers get full precision)."""
    return trainer.accelerator.unwrap_model(trainer.model, keep_fp32_wrapper=False)


def gather_adapter_state(trainer) -> dict:
    """The trained LoRA tensors, full size, on every rank (a collective: every rank must call it).

    Single process and DDP: the parameters as they are. FSDP2: each DTensor shard is gathered with
    ``full_tensor()``. FSDP1 and DeepSpeed: accelerate's ``get_state_dict`` (what Trainer.save_model uses).
    Keys are the peft model's parameter names, as ``save_pretrained(state_dict=…)`` expects.
    """
    from accelerate.utils import DistributedType

    accelerator = trainer.accelerator
    model = accelerator.unwrap_model(trainer.model)
    fsdp_version = getattr(getattr(accelerator.state, "fsdp_plugin", None), "fsdp_version", None)
    if accelerator.distributed_type == DistributedType.DEEPSPEED or (
        accelerator.distributed_type == DistributedType.FSDP and fsdp_version == 1
    ):
        full = accelerator.get_state_dict(trainer.model_wrapped)
        return {k: v for k, v in (full or {}).items() if "lora_" in k}
    state = {}
    for name, param in model.named_parameters():
        if "lora_" in name:
            tensor = param.full_tensor() if hasattr(param, "full_tensor") else param
            state[name] = tensor.detach().cpu().clone()
    return state


def _save_initial_adapter(peft_model, work: Path, state) -> None:
    """PiSSA: keep the untrained adapter so the result can be saved as a plain LoRA delta against the base."""
    if state.is_main_process and not (work / "initial_adapter" / "adapter_config.json").is_file():
        from wsteer.io import atomic_directory

        with atomic_directory(work / "initial_adapter") as tmp:
            peft_model.save_pretrained(str(tmp))
    state.wait_for_everyone()


def _train_contrastive(cfg: TrainConfig, model, tokenizer, pairs: PairSet, work: Path, state, callbacks: Sequence):
    """contrastive_sft: SFT a LoRA on cho (pos) and one on rej (neg); the steering adapter is pos - neg."""
    from peft import PeftModel

    from wsteer.io import atomic_directory
    from wsteer.lora import combine_adapters, read_adapter, write_adapter

    score_completion_tokens_only_on_cpu()
    logs: dict[str, Any] = {}
    base = model
    for side, key in (("pos", "cho"), ("neg", "rej")):
        with state.main_process_first():
            dataset = to_dataset(completion_rows(pairs.train, key), work / "data" / side)
        # SFTTrainer seeds before wrapping, so both sides start from the same adapter initialisation.
        trainer = make_sft_trainer_class()(
            model=base,
            kl_coef=cfg.kl_coef,
            args=sft_arguments(cfg, str(work / side)),
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=lora_config(cfg),
            callbacks=list(callbacks),
        )
        resume = last_complete_checkpoint(work / side) if cfg.resume else None
        trainer.train(resume_from_checkpoint=resume)
        logs[side] = trainer.state.log_history
        logs[f"{side}_resumed_from"] = resume
        logs["distributed_type"] = str(trainer.accelerator.distributed_type.value)
        adapter_state = gather_adapter_state(trainer)
        if state.is_main_process:
            with atomic_directory(work / f"{side}_adapter") as tmp:
                trainer.model.save_pretrained(str(tmp), state_dict=adapter_state)
        state.wait_for_everyone()
        base = trained_model(trainer).unload()  # the base, LoRA layers removed
        base.__dict__.pop("forward", None)  # drop TRL's fused-LM-head patch; the next trainer adds its own
        del trainer
        gc.collect()
    if state.is_main_process:
        combined = combine_adapters(
            [(read_adapter(work / "pos_adapter"), 1.0), (read_adapter(work / "neg_adapter"), -1.0)]
        )
        write_adapter(combined, work / "steer")
    state.wait_for_everyone()
    return PeftModel.from_pretrained(base, str(work / "steer")), None, logs


# --------------------------------------------------------------------------------------------- outputs
def _save_adapter(cfg: TrainConfig, model, adapter_state: dict | None, work: Path, target: Path) -> None:
    """The steering adapter as a plain peft directory in ``target`` (``adapter_state``: the gathered tensors)."""
    if cfg.objective == "contrastive_sft":
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            shutil.copy2(work / "steer" / name, target / name)
        for side in ("pos", "neg"):
            shutil.copytree(work / f"{side}_adapter", target / "components" / side)
    elif cfg.lora.is_pissa:  # one process or DDP only (check_launch), so the live parameters are complete
        model.save_pretrained(str(target), path_initial_model_for_weight_conversion=str(work / "initial_adapter"))
    else:
        model.save_pretrained(str(target), state_dict=adapter_state)


def persona_note(pairs: PairSet) -> str:
    """Where steering.json's pos/neg/template came from, or that they are missing and how to supply them."""
    if pairs.persona_source == "data":
        return "from the training data"
    if pairs.persona_source == "config":
        return "from the pair.* keys of the train config (the data names none)"
    return (
        "missing: the training data names no personas, so pos/neg/template are null. eval sweep and eval ab need "
        "them for the prompt baselines and the trait score (PLR): pass pos=… neg=… template=… there, or retrain "
        "with pair.pos=… pair.neg=… pair.template=…"
    )


def _final_epoch(epochs) -> dict:
    """The last epoch's metrics: one dict, or one per side (contrastive SFT logs each side's run)."""
    if isinstance(epochs, dict):
        return {side: rows[-1] for side, rows in epochs.items() if rows}
    return epochs[-1] if epochs else {}


def steering_info_for(cfg: TrainConfig, model, pairs: PairSet, metrics: dict, world_size: int):
    """The adapter's steering.json: the pair, the base it was trained on (with its fingerprint), data, metrics."""
    from wsteer.hub import base_provenance
    from wsteer.manifest import package_versions
    from wsteer.models import weights_fingerprint
    from wsteer.records import SteeringInfo

    source = getattr(model.get_base_model(), "wsteer_source", None) or {}
    base_path = source.get("path")
    heldout = {k: v for k, v in metrics.get("heldout", {}).items() if not k.startswith("per_pair")}
    return SteeringInfo(
        pos=pairs.pos,
        neg=pairs.neg,
        template=pairs.template,
        objective=cfg.objective,
        base_model=cfg.model.name,
        base_hash=weights_fingerprint(base_path) if base_path else None,
        data_sha256=pairs.data_sha256,
        train_config=config_to_dict(cfg),
        metrics={
            "heldout": heldout,
            "final_epoch": _final_epoch(metrics.get("epochs") or []),
            "steps": metrics.get("steps"),
        },
        calibrated_alpha=None,
        versions=package_versions(),
        provenance={
            "data": str(cfg.data),
            "heldout": cfg.heldout,
            "train_pairs": len(pairs.train),
            "heldout_pairs": len(pairs.heldout),
            "templates": pairs.templates,
            "world_size": world_size,
            "persona": persona_note(pairs),
            "base": base_provenance(cfg.model.name, base_path),
        },
    )


def write_outputs(
    cfg: TrainConfig,
    model,
    adapter_state: dict | None,
    pairs: PairSet,
    work: Path,
    metrics: dict,
    launch: str | None,
    world_size: int,
) -> Path:
    """Write the adapter directory atomically: adapter files, steering.json, metrics.json, run record."""
    from wsteer.card import write_model_card
    from wsteer.hub import set_adapter_base
    from wsteer.io import atomic_directory
    from wsteer.manifest import write_run_record
    from wsteer.records import write_steering_info

    info = steering_info_for(cfg, model, pairs, metrics, world_size)
    inputs = {"data": cfg.data, **({"heldout": cfg.heldout} if cfg.heldout else {})}
    with atomic_directory(cfg.output_dir) as tmp:
        _save_adapter(cfg, model, adapter_state, work, tmp)
        # Portable: peft recorded the local checkpoint directory; record the hub id (steering.json keeps the name).
        set_adapter_base(tmp, info.provenance["base"]["id"], info.provenance["base"]["revision"])
        write_steering_info(tmp, info)
        write_model_card(tmp)
        write_json(tmp / "metrics.json", metrics)
        write_run_record(
            tmp,
            "train",
            cfg,
            seeds={"seed": cfg.seed},
            inputs=inputs,
            launch=launch,
            extra={
                "world_size": world_size,
                "distributed_type": metrics.get("distributed_type"),
                "written_by_process": 0,
            },
        )
        if (work / "checkpoints" / "runs").is_dir():  # tensorboard event files
            shutil.copytree(work / "checkpoints" / "runs", tmp / "logs")
    return Path(cfg.output_dir)


# --------------------------------------------------------------------------------------------- entry
def _env_flag(name: str) -> bool:
    import os

    return os.environ.get(name, "false").strip().lower() in ("1", "true", "yes")


_TRACKER_PACKAGES = {
    "tensorboard": ("tensorboard", "tensorboardX"),
    "wandb": ("wandb",),
    "mlflow": ("mlflow",),
    "trackio": ("trackio",),
    "comet_ml": ("comet_ml",),
}


def check_trackers(cfg: TrainConfig) -> None:
    """Fail before loading anything when a tracker named in ``report_to`` is not installed."""
    import importlib.util

    for tracker in cfg.report_to:
        modules = _TRACKER_PACKAGES.get(tracker)
        if modules and not any(importlib.util.find_spec(m) for m in modules):
            raise WsteerError(
                f"report_to names {tracker!r}, which is not installed",
                where="report_to",
                fix=f"pip install {modules[0]}, or drop it from report_to",
            )


def check_launch(cfg: TrainConfig) -> TrainConfig:
    """Settings that a sharded launch (FSDP, DeepSpeed ZeRO-3; read from accelerate's environment) cannot honour.

    * contrastive_sft trains two adapters one after the other on one base, unloading the first: not supported
      on a sharded model (use DDP or one process).
    * PiSSA rewrites the (sharded) base weights and converts the adapter at save time: one process or DDP only.
    * With ``fsdp_cpu_ram_efficient_loading`` only rank 0 holds real weights until the trainer shards the model,
      so reference log-probs cannot be precomputed before training; they are computed per step instead (same
      values, one extra no-grad forward per step).
    * The base is loaded to CPU memory (``device_map: cpu``, as TRL does for distributed runs) so that FSDP /
      DeepSpeed place the shards; wsteer's default would put a whole copy on every rank's GPU first.
    """
    import dataclasses
    import os

    sharded = _env_flag("ACCELERATE_USE_FSDP") or (
        _env_flag("ACCELERATE_USE_DEEPSPEED") and os.environ.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") == "3"
    )
    if sharded and cfg.objective == "contrastive_sft":
        raise WsteerError(
            "objective contrastive_sft does not run on a sharded model (FSDP / ZeRO-3)",
            where="objective",
            fix="launch it with configs/accelerate/ddp.yaml or in one process",
        )
    if sharded and cfg.lora.is_pissa:
        raise WsteerError(
            "PiSSA initialisation does not run on a sharded model (FSDP / ZeRO-3)",
            where="lora.init",
            fix="use lora.init=default, or launch with configs/accelerate/ddp.yaml",
        )
    if _env_flag("ACCELERATE_USE_FSDP") and _env_flag("FSDP_CPU_RAM_EFFICIENT_LOADING") and cfg.precompute_ref:
        print(
            "wsteer train: fsdp_cpu_ram_efficient_loading is on, so reference log-probs are computed per step "
            "(precompute_ref=false)"
        )
        cfg = dataclasses.replace(cfg, precompute_ref=False)
    if sharded and cfg.model.device_map is None:
        cfg = dataclasses.replace(cfg, model=dataclasses.replace(cfg.model, device_map="cpu"))
    return cfg


def check_prompt_lengths(records: list[dict], tokenizer, max_length: int | None) -> None:
    """Refuse a pair whose prompt alone fills ``max_length`` tokens: TRL would truncate its answers away."""
    from wsteer.chat import encode_prompt

    if max_length is None:
        return
    for record in records:
        n_tokens = len(encode_prompt(tokenizer, prompt_messages(record)))
        if n_tokens >= max_length:
            raise DataError(
                f"the prompt is {n_tokens} tokens, which leaves no room for an answer within max_length={max_length}",
                where=record["_where"],
                fix="shorten or drop that prompt, or raise max_length",
            )


@dataclass
class _Prepared:
    """What a run needs once its inputs are checked: the (possibly adjusted) config, process state, pairs, model,
    tokenizer and work directory."""

    cfg: TrainConfig
    state: Any
    pairs: PairSet
    model: Any
    tokenizer: Any
    work: Path


def prepare_run(cfg: TrainConfig) -> _Prepared:
    """Check the settings, read the pairs, load tokenizer and model, and create (or reuse) the work directory.

    Everything that can refuse the run (settings changed since the checkpoints, model, tokenizer, prompt lengths)
    comes before the work dir is created.
    """
    from accelerate import PartialState

    from wsteer.chat import require_chat_template
    from wsteer.models import load_model, load_tokenizer

    if not cfg.data:
        raise ConfigError(
            "no training data given", where="data", fix="set data: CURATED.jsonl in the config or pass data=FILE"
        )
    check_trackers(cfg)
    cfg = check_launch(cfg)
    if cfg.num_threads > 0:
        import torch

        torch.set_num_threads(cfg.num_threads)
    state = PartialState(cpu=cpu_only())  # the same process group settings the trainer will use
    pairs = load_pair_set(
        cfg.data, cfg.heldout, cfg.heldout_fraction, cfg.seed, cfg.data_split, cfg.heldout_split, cfg.pair
    )
    identity = training_identity(cfg, pairs.data_sha256, pairs.heldout_sha256)
    if state.is_main_process:
        check_resumable(cfg, identity)
    tokenizer = load_tokenizer(cfg.model)
    require_chat_template(tokenizer)
    check_prompt_lengths(pairs.train + pairs.heldout, tokenizer, cfg.max_length)
    model = load_model(cfg.model)
    with state.main_process_first():
        work = prepare_work_dir(cfg, identity) if state.is_main_process else work_dir(cfg)
    return _Prepared(cfg, state, pairs, model, tokenizer, work)


def train_adapter(cfg: TrainConfig, callbacks: Sequence = (), launch: str | None = None) -> TrainResult:
    """Train the steering adapter described by ``cfg``; returns where it went and its metrics.

    Runs the same way in one process and under ``accelerate launch`` / ``torchrun``; only the main process writes.
    ``callbacks`` are extra ``transformers.TrainerCallback`` objects.
    """
    started = time.time()
    run = prepare_run(cfg)
    cfg, state, pairs, tokenizer, work = run.cfg, run.state, run.pairs, run.tokenizer, run.work
    train = _train_contrastive if cfg.objective == "contrastive_sft" else _train_preference
    peft_model, adapter_state, logs = train(cfg, run.model, tokenizer, pairs, work, state, callbacks)
    if cfg.objective == "contrastive_sft":
        epochs = {side: per_epoch(logs[side]) for side in ("pos", "neg")}
        steps = {side: max([e.get("step", 0) for e in logs[side]] or [0]) for side in ("pos", "neg")}
    else:
        epochs = per_epoch(logs["train"])
        steps = max([e.get("step", 0) for e in logs["train"]] or [0])

    result = TrainResult(output_dir=Path(cfg.output_dir), model=peft_model, tokenizer=tokenizer)
    # Every rank evaluates (under FSDP a forward is a collective); only the main process writes.
    heldout = heldout_margins(
        peft_model, tokenizer, pairs.heldout, cfg.eval_batch_size, steerable=not cfg.lora.use_dora
    )
    if state.is_main_process:
        metrics = {
            "objective": cfg.objective,
            "train_pairs": len(pairs.train),
            "heldout_pairs": len(pairs.heldout),
            "steps": steps,
            "epochs": epochs,
            "heldout": heldout,
            "resumed_from": {k: v for k, v in logs.items() if k.endswith("resumed_from")},
            "world_size": state.num_processes,
            "distributed_type": logs["distributed_type"],
            "wall_s": round(time.time() - started, 2),
        }
        write_outputs(cfg, peft_model, adapter_state, pairs, work, metrics, launch, state.num_processes)
        result.metrics = metrics
        if not cfg.keep_checkpoints:
            shutil.rmtree(work, ignore_errors=True)
    state.wait_for_everyone()
    return result
