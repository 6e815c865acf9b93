"""``TrainConfig``: the typed schema of ``wsteer train`` (and of ``configs/train*.yaml``).

Defaults were chosen from measurements on ``smollm2-135m`` (see docs/training.md, "Defaults"); fields
that map 1:1 onto a TRL / peft / transformers argument say so in their help.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from wsteer.config import option
from wsteer.errors import ConfigError
from wsteer.models import ModelConfig

Objective = Literal["dpo", "bidirectional", "contrastive_sft"]
OBJECTIVES = ("dpo", "bidirectional", "contrastive_sft")

# Every linear layer of a Llama-style block (SmolLM2, Llama, Qwen, Mistral, Gemma use these names).
ALL_LINEAR = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


@dataclass
class LoraSettings:
    """The LoRA adapter that carries the steering delta (passed to ``peft.LoraConfig``)."""

    r: int = option(16, "LoRA rank (peft `r`).")
    alpha: float = option(
        32.0, "LoRA alpha (peft `lora_alpha`); the delta is scaled by alpha/r (alpha/sqrt(r) with rsLoRA)."
    )
    dropout: float = option(
        0.0,
        "Dropout on the LoRA branch (peft `lora_dropout`). TRL's DPO disables dropout "
        "anyway unless disable_dropout=false.",
    )
    target_modules: list[str] = option(
        help="Module names to adapt (peft `target_modules`); 'all-linear' as the "
        "only entry adapts every linear layer except the LM head.",
        factory=lambda: list(ALL_LINEAR),
    )
    layers: list[int] | str | None = option(
        None,
        "Layers to adapt: a list of indices, or an inclusive range 'FIRST-LAST' (e.g. '8-20'); None = all "
        "layers (peft `layers_to_transform`).",
    )
    use_rslora: bool = option(False, "Rank-stabilised LoRA: scale by alpha/sqrt(r) (peft `use_rslora`).")
    use_dora: bool = option(
        False,
        "DoRA (peft `use_dora`). Its delta is not linear in the steering coefficient, so "
        "only objective 'dpo' accepts it and the adapter cannot be steered by α.",
    )
    init: str = option(
        "default",
        "Initialisation (peft `init_lora_weights`): 'default' (B = 0), 'gaussian', "
        "'pissa' or 'pissa_niter_N'. PiSSA adapters are saved converted to plain LoRA "
        "against the original base, so α = 0 is still the base model.",
    )

    def __post_init__(self) -> None:
        if self.r < 1:
            raise ValueError(f"lora.r must be >= 1, got {self.r}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"lora.dropout must be in [0, 1), got {self.dropout}")
        if not self.target_modules:
            raise ValueError("lora.target_modules is empty")
        if not (self.init in ("default", "gaussian", "pissa") or self.init.startswith("pissa_niter_")):
            raise ValueError(f"lora.init must be 'default', 'gaussian', 'pissa' or 'pissa_niter_N', got {self.init!r}")
        self.layer_indices()  # validate the layer spec early

    @property
    def is_pissa(self) -> bool:
        """True for PiSSA initialisation (which rewrites the base weights to W - B0 A0)."""
        return self.init.startswith("pissa")

    def layer_indices(self) -> list[int] | None:
        """The layer spec as a sorted list of indices (None = all layers)."""
        if self.layers is None:
            return None
        if isinstance(self.layers, str):
            first, sep, last = self.layers.partition("-")
            if not sep or not first.strip().isdigit() or not last.strip().isdigit() or int(first) > int(last):
                raise ValueError(f"lora.layers must be a list of indices or 'FIRST-LAST', got {self.layers!r}")
            return list(range(int(first), int(last) + 1))
        if not self.layers or any(i < 0 for i in self.layers):
            raise ValueError(f"lora.layers must be non-negative layer indices, got {self.layers!r}")
        return sorted(set(self.layers))


@dataclass
class PairLabels:
    """What the pairs steer, for data that does not say (TRL-format rows, Hugging Face datasets).

    Recorded in steering.json, where eval sweep / ab read the personas for their prompt baselines and the
    persona log-likelihood ratio. Pairs that carry their own ``pos``/``neg``/``template`` must agree with these.
    """

    pos: str | None = option(None, "Positive persona (the +α pole), e.g. 'optimistic'; default: the data's.")
    neg: str | None = option(None, "Negative persona (the -α pole), e.g. 'pessimistic'; default: the data's.")
    template: str | None = option(
        None, "System-prompt template with one {persona} slot; default: the data's (most common)."
    )

    def __post_init__(self) -> None:
        if self.template is not None and self.template.count("{persona}") != 1:
            raise ValueError(f"pair.template must contain exactly one {{persona}} slot, got {self.template!r}")


# TRL / transformers arguments that wsteer sets from its own keys (or itself): the `trl:` section may not set them
# too, so one value never silently overrides the other. Value: the wsteer key to use instead.
TRL_ARGUMENTS_SET_BY_WSTEER = {
    "output_dir": "checkpoint_dir",
    "learning_rate": "learning_rate",
    "num_train_epochs": "epochs",
    "max_steps": "max_steps",
    "per_device_train_batch_size": "micro_batch_size",
    "gradient_accumulation_steps": "batch_size (and micro_batch_size)",
    "warmup_steps": "warmup_ratio",
    "warmup_ratio": "warmup_ratio",
    "lr_scheduler_type": "lr_scheduler",
    "weight_decay": "weight_decay",
    "max_grad_norm": "max_grad_norm",
    "seed": "seed",
    "max_length": "max_length",
    "gradient_checkpointing": "gradient_checkpointing",
    "save_strategy": "save_steps",
    "save_steps": "save_steps",
    "save_total_limit": "save_total_limit",
    "logging_strategy": "logging_steps",
    "logging_steps": "logging_steps",
    "report_to": "report_to",
    "run_name": "run_name",
    "disable_tqdm": "progress",
    "dataloader_num_workers": "dataloader_workers",
    "dataloader_pin_memory": "(set by wsteer: on with a GPU)",
    "use_cpu": "(set by wsteer: on when no accelerator is visible)",
    "bf16": "mixed_precision",
    "fp16": "mixed_precision",
    "beta": "beta",
    "loss_type": "loss_type",
    "loss_weights": "loss_weights",
    "label_smoothing": "label_smoothing",
    "precompute_ref_log_probs": "precompute_ref",
    "precompute_ref_batch_size": "batch_size",
    "disable_dropout": "disable_dropout",
    "completion_only_loss": "(set by wsteer: contrastive_sft trains on the answers only)",
    "resume_from_checkpoint": "resume",
}


def trl_config_class(objective: str) -> type:
    """TRL's config class for ``objective``: ``DPOConfig`` (dpo, bidirectional) or ``SFTConfig`` (contrastive_sft)."""
    from trl import DPOConfig, SFTConfig

    return SFTConfig if objective == "contrastive_sft" else DPOConfig


def build_trl_config(config_class: type, wsteer_arguments: dict[str, Any], trl: dict[str, Any]):
    """``config_class(**wsteer_arguments, **trl)``: TRL validates every key and value itself; what it refuses is
    re-raised as a ConfigError naming the ``trl.`` key."""
    try:
        return config_class(**wsteer_arguments, **trl)
    except TypeError as exc:
        match = re.search(r"unexpected keyword argument '([^']+)'", str(exc))
        key = match.group(1) if match else "?"
        raise ConfigError(
            f"trl.{key} is not a {config_class.__name__} argument (TRL: {exc})",
            where=f"trl.{key}",
            fix=f"check the name against trl.{config_class.__name__} / transformers.TrainingArguments, or drop it",
        ) from None
    except ValueError as exc:
        raise ConfigError(
            f"TRL refused the trl: section {sorted(trl)}: {exc}",
            where="trl",
            fix="correct the trl: value TRL names above",
        ) from None


def check_trl_section(trl: dict[str, Any], objective: str) -> None:
    """Refuse ``trl:`` keys that wsteer sets itself, then let TRL check the rest (names and values)."""
    clashes = sorted(set(trl) & set(TRL_ARGUMENTS_SET_BY_WSTEER))
    if clashes:
        key = clashes[0]
        raise ConfigError(
            f"trl.{key} is set by wsteer from {TRL_ARGUMENTS_SET_BY_WSTEER[key]}; the trl: section only takes "
            "arguments wsteer does not set",
            where=f"trl.{key}",
            fix=f"set {TRL_ARGUMENTS_SET_BY_WSTEER[key]} instead of trl.{key}",
        )
    build_trl_config(trl_config_class(objective), {"output_dir": "unused", "use_cpu": True}, trl)


@dataclass
class TrainConfig:
    """``wsteer train``: curated cho/rej pairs -> a steering LoRA adapter (+ steering.json)."""

    data: str | None = option(
        None,
        "Training pairs: a JSONL file of wsteer PairRecords (e.g. runs/x/pairs/curated.jsonl) or of TRL "
        "preference rows (prompt/chosen/rejected, plain or conversational), a datasets save_to_disk directory, "
        "or a Hugging Face dataset id (datasets.load_dataset; offline it reads the local cache).",
    )
    data_split: str = option("train", "Split of `data` when it is a dataset directory or hub id.")
    output_dir: str = option(
        "runs/train/adapter",
        "Where the adapter directory goes (written atomically: built under a temp name, renamed on success).",
    )
    checkpoint_dir: str | None = option(
        None,
        "Checkpoints, trainer logs and the prepared-data cache; a rerun "
        "resumes from the last complete checkpoint here. Default: "
        "<output_dir>.work",
    )
    objective: Objective = option(
        "dpo",
        "dpo: TRL DPOTrainer, reference = base (adapter disabled). "
        "bidirectional: one adapter learns cho>rej at scale +1 and rej>cho at "
        "scale -1 in the same step. contrastive_sft: SFT one LoRA on cho and one "
        "on rej; the steering adapter is pos - neg.",
    )
    pair: PairLabels = option(
        help="Personas and template recorded in steering.json when the data has none.", factory=PairLabels
    )
    model: ModelConfig = option(help="Base model (quantization: 4bit/8bit = QLoRA).", factory=ModelConfig)
    lora: LoraSettings = option(help="The LoRA adapter.", factory=LoraSettings)

    # --- preference loss
    beta: float = option(0.1, "DPO beta (TRL `beta`): higher = stay closer to the reference.")
    loss_type: list[str] = option(
        help="TRL DPO loss variant(s), passed through (sigmoid, ipo, hinge, robust, "
        "apo_zero, sigmoid_norm, …); several are summed with loss_weights.",
        factory=lambda: ["sigmoid"],
    )
    loss_weights: list[float] | None = option(None, "Weights of the loss_type entries (TRL `loss_weights`).")
    label_smoothing: float = option(0.0, "TRL `label_smoothing` (robust / exo_pair losses).")
    pole_scales: list[float] = option(
        help="bidirectional only: the adapter scales each pole is trained at, [low, high] with 0 < low <= high. "
        "Each step draws every pair's scale uniformly from the range (seeded) and trains cho > rej at +scale and "
        "rej > cho at -scale, so the strengths the adapter is used at between low and high are trained too, "
        "not only interpolated. [1, 1] = only ±1.",
        factory=lambda: [1.0, 1.0],
    )
    kl_coef: float = option(
        0.0,
        "Weight of a token-level KL(adapter || base) on the completion tokens added to the loss (bidirectional: "
        "at the trained ±scale; dpo: on cho and rej; contrastive_sft: on each side), which keeps the answers close "
        "to the base model's; 0 = off (TRL's loss unchanged).",
    )

    # --- optimisation
    learning_rate: float = option(5e-4, "Peak learning rate (AdamW).")
    epochs: float = option(3.0, "Passes over the training pairs.")
    max_steps: int = option(-1, "Stop after this many optimizer steps (-1 = run all epochs).")
    batch_size: int = option(4, "Pairs per optimizer step, per device.")
    micro_batch_size: int | None = option(
        None,
        "Pairs per forward pass (TRL `per_device_train_batch_size`); batch_size must be a multiple, the rest "
        "is gradient accumulation. None = 1 without a GPU (measured on CPU: same speed as 4, and peak memory "
        "below TRL's defaults without gradient checkpointing), batch_size on a GPU.",
    )
    warmup_ratio: float = option(0.1, "Fraction of steps with a linear learning-rate warmup.")
    lr_scheduler: str = option("linear", "transformers scheduler name: linear, cosine, constant_with_warmup, …")
    weight_decay: float = option(0.0, "AdamW weight decay.")
    max_grad_norm: float = option(1.0, "Gradient clipping norm.")
    seed: int = option(0, "Seed for the adapter initialisation, data order and the held-out split.")
    max_length: int | None = option(1024, "Truncate prompt+completion to this many tokens (TRL `max_length`).")
    gradient_checkpointing: bool = option(
        False,
        "Recompute activations in the backward pass: saves memory on "
        "large models, costs ~30% time. TRL turns it on by default; off "
        "here because LoRA on small models is compute-bound.",
    )
    precompute_ref: bool = option(
        True,
        "Compute the reference log-probs once before training (adapter "
        "disabled) instead of a reference forward every step "
        "(TRL `precompute_ref_log_probs`).",
    )
    mixed_precision: Literal["auto", "fp32", "bf16", "fp16"] = option(
        "auto",
        "Autocast precision (the fp32 LoRA weights stay the optimizer's masters): auto = bf16 where bf16 "
        "matmuls are native (a bf16 GPU, or a CPU with AVX512-BF16 / AMX: about 2x fp32 speed), else fp32 "
        "(no autocast).",
    )
    dataloader_workers: int = option(
        0, "DataLoader worker processes (tokenisation is done up front, so 0 is fastest on small data)."
    )
    num_threads: int = option(
        0,
        "torch CPU threads (0 = torch's default, one per core). On a machine shared with "
        "other jobs, fewer threads avoid oversubscription, which can cost 5x.",
    )
    disable_dropout: bool = option(True, "Set every dropout to 0 during training (TRL `disable_dropout`).")

    # --- held-out data
    heldout: str | None = option(
        None,
        "Held-out pairs (any form `data` takes). None: split heldout_fraction off the training data (by prompt, "
        "seeded).",
    )
    heldout_split: str = option("test", "Split of `heldout` when it is a dataset directory or hub id.")
    heldout_fraction: float = option(0.2, "Fraction of pairs held out when `heldout` is not given (0 = none).")
    eval_batch_size: int = option(
        4,
        "Batch size for the held-out preference margins (they build full "
        "[batch, tokens, vocab] logits, so larger batches raise peak memory).",
    )

    # --- checkpoints and logging
    save_steps: int = option(0, "Checkpoint every N optimizer steps (0 = at the end of every epoch).")
    save_total_limit: int = option(2, "Keep at most this many checkpoints.")
    resume: bool = option(True, "Resume from the last complete checkpoint in checkpoint_dir when there is one.")
    keep_checkpoints: bool = option(False, "Keep checkpoint_dir after a successful run (default: delete it).")
    report_to: list[str] = option(
        help="Experiment trackers (TRL/transformers `report_to`): none, tensorboard, wandb, …", factory=lambda: ["none"]
    )
    logging_steps: int = option(1, "Log loss/rewards every N optimizer steps.")
    progress: bool = option(True, "Show progress bars.")
    run_name: str | None = option(None, "Run name for trackers (default: the output directory's name).")
    trl: dict[str, Any] = option(
        help="Any other TRL DPOConfig / SFTConfig (transformers TrainingArguments) argument, passed as is, e.g. "
        "{push_to_hub: true, adam_beta2: 0.95}. TRL checks names and values. Arguments wsteer sets from its own "
        "keys (num_train_epochs = epochs, max_grad_norm, logging_steps, …) are refused here: set the wsteer key.",
        factory=dict,
    )

    @property
    def micro_batch(self) -> int:
        """Pairs per forward pass: micro_batch_size (at most batch_size); by default 1 on CPU, batch_size on GPU."""
        if self.micro_batch_size is None:
            import torch

            return self.batch_size if torch.cuda.is_available() else 1
        return min(self.micro_batch_size, self.batch_size)

    def __post_init__(self) -> None:
        for name in ("batch_size", "micro_batch_size", "eval_batch_size"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.batch_size % self.micro_batch:
            raise ValueError(
                f"batch_size ({self.batch_size}) must be a multiple of micro_batch_size ({self.micro_batch_size})"
            )
        if self.epochs <= 0 and self.max_steps <= 0:
            raise ValueError("set epochs > 0 or max_steps > 0")
        if not 0.0 <= self.heldout_fraction < 1.0:
            raise ValueError(f"heldout_fraction must be in [0, 1), got {self.heldout_fraction}")
        if self.kl_coef < 0:
            raise ValueError(f"kl_coef must be >= 0, got {self.kl_coef}")
        if len(self.pole_scales) != 2 or not 0 < self.pole_scales[0] <= self.pole_scales[1]:
            raise ValueError(
                f"pole_scales must be [low, high] with 0 < low <= high, got {self.pole_scales}; e.g. [0.5, 1.0] "
                "trains every strength from half to full, [1.0, 1.0] only ±1"
            )
        if self.pole_scales != [1.0, 1.0] and self.objective != "bidirectional":
            raise ValueError(
                f"pole_scales applies to objective 'bidirectional' only (got objective {self.objective!r}); "
                "leave it at [1, 1]"
            )
        if self.kl_coef > 0 and self.lora.is_pissa:
            raise ValueError(
                "kl_coef needs the adapter-disabled model to be the base, which PiSSA's rewritten weights are not; "
                "set kl_coef=0 or lora.init=default"
            )
        if self.lora.use_dora and self.objective != "dpo":
            raise ValueError(
                f"objective {self.objective!r} needs a linear LoRA delta; DoRA has none (set lora.use_dora=false)"
            )
        if self.lora.is_pissa and self.objective == "dpo" and not self.precompute_ref:
            raise ValueError(
                "PiSSA's reference is the initial adapter, which is only available before the first "
                "step: set precompute_ref=true"
            )
        if self.trl:
            check_trl_section(self.trl, self.objective)  # load_config adds the config file to its ConfigError
        if self.lora.is_pissa and self.objective == "bidirectional":
            raise ValueError(
                "objective 'bidirectional' scales the adapter by -1 during training, which PiSSA's "
                "rewritten base does not allow (use lora.init=default or gaussian)"
            )
