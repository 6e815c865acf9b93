"""The training objectives as TRL trainers.

* ``dpo``: TRL's :class:`~trl.DPOTrainer` with a peft LoRA config and ``ref_model=None``, so the reference is the
  same model with the adapter disabled (no second copy of the weights). Every TRL loss variant passes through.
* ``bidirectional``: :class:`BidirectionalDPOTrainer` subclasses it. Each step it mirrors the batch — the pairs
  as given with the adapter at scale +1, and the same pairs with cho and rej swapped at scale -1 — and runs
  TRL's own loss on that one doubled batch (one forward; per-row scales via :func:`wsteer.lora.per_row_adapter_scale`).
  So one adapter learns both poles: +1 prefers cho, -1 prefers rej. With ``pole_scales: [low, high]`` each pair's
  scale is drawn from that range every step, so the weaker strengths are trained too. An optional token-level
  KL(adapter at ±s || base) on completion tokens keeps both poles coherent.
* ``kl_coef > 0`` adds the same token-level KL(adapter || base) on the completion tokens to every objective
  (:class:`KLToBaseMixin`): dpo on cho and rej, contrastive_sft on each side's completions.
* ``contrastive_sft``: TRL's :class:`~trl.SFTTrainer` trains one LoRA on cho and one on rej (same seed, same
  initialisation); the steering adapter is their exact difference (see ``wsteer.train.run``).
"""

from __future__ import annotations

import contextlib
from typing import Any

from wsteer.train.config import TrainConfig, build_trl_config

from wsteer.lora import per_row_adapter_scale


# --------------------------------------------------------------------------------------------- shared settings
def lora_config(cfg: TrainConfig):
    """The ``peft.LoraConfig`` for ``cfg.lora``."""
    from peft import LoraConfig

    lora = cfg.lora
    targets: Any = lora.target_modules
    if targets == ["all-linear"]:
        targets = "all-linear"
    init: Any = True if lora.init == "default" else lora.init
    return LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        layers_to_transform=lora.layer_indices(),
        use_rslora=lora.use_rslora,
        use_dora=lora.use_dora,
        init_lora_weights=init,
        bias="none",
        task_type="CAUSAL_LM",
    )


def native_bf16() -> bool:
    """True when this machine runs bf16 matmuls natively: a bf16-capable GPU, or a CPU with AVX512-BF16 or AMX.

    On such CPUs a bf16 matmul is about twice as fast as fp32 (measured: 23 vs 48 ms for [960, 576] x [576, 1536]
    on the 2-core AMD EPYC dev box); without them bf16 is emulated and slower than fp32.
    """
    import torch

    if torch.cuda.is_available():
        return torch.cuda.is_bf16_supported()
    cpu = getattr(torch, "cpu", None)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(cpu, name, lambda: False)() for name in checks)


def mixed_precision_flags(cfg: TrainConfig) -> dict[str, bool]:
    """``bf16`` / ``fp16`` for the trainer (always explicit: TRL's own default is bf16 whatever the hardware)."""
    mode = cfg.mixed_precision
    if mode == "auto":
        mode = "bf16" if native_bf16() else "fp32"
    return {"bf16": mode == "bf16", "fp16": mode == "fp16"}


def cpu_only() -> bool:
    """True when no accelerator is visible. Then the trainer must be told ``use_cpu``: only that makes accelerate
    treat a torchrun / accelerate launch on CPU as multi-process (MULTI_CPU, gloo) instead of N independent runs."""
    import torch

    has_xpu = hasattr(torch, "xpu") and torch.xpu.is_available()
    has_mps = hasattr(torch.backends, "mps") and torch.backends.mps.is_available()
    return not (torch.cuda.is_available() or has_xpu or has_mps)


def common_arguments(cfg: TrainConfig, output_dir: str) -> dict[str, Any]:
    """TrainingArguments shared by the DPO and SFT configs (checkpoints, logging, optimisation, data loading)."""
    import torch

    return dict(
        output_dir=output_dir,
        learning_rate=cfg.learning_rate,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps,
        per_device_train_batch_size=cfg.micro_batch,
        gradient_accumulation_steps=cfg.batch_size // cfg.micro_batch,
        warmup_steps=cfg.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
        lr_scheduler_type=cfg.lr_scheduler,
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm,
        seed=cfg.seed,
        max_length=cfg.max_length,
        gradient_checkpointing=cfg.gradient_checkpointing,
        save_strategy="steps" if cfg.save_steps > 0 else "epoch",
        save_steps=cfg.save_steps if cfg.save_steps > 0 else 500,
        save_total_limit=cfg.save_total_limit,
        logging_strategy="steps",
        logging_steps=cfg.logging_steps,
        report_to=cfg.report_to,
        run_name=cfg.run_name,
        disable_tqdm=not cfg.progress,
        dataloader_num_workers=cfg.dataloader_workers,
        dataloader_pin_memory=torch.cuda.is_available(),
        use_cpu=cpu_only(),
        **mixed_precision_flags(cfg),
    )


def dpo_arguments(cfg: TrainConfig, output_dir: str):
    """The ``trl.DPOConfig`` of a preference run (wsteer's keys, then the ``trl:`` section as is)."""
    from trl import DPOConfig

    wsteer_arguments = dict(
        **common_arguments(cfg, output_dir),
        beta=cfg.beta,
        loss_type=list(cfg.loss_type),
        loss_weights=cfg.loss_weights,
        label_smoothing=cfg.label_smoothing,
        precompute_ref_log_probs=cfg.precompute_ref,
        disable_dropout=cfg.disable_dropout,
        precompute_ref_batch_size=cfg.batch_size,  # larger batches raise peak memory (LM-head tiles)
    )
    return build_trl_config(DPOConfig, wsteer_arguments, cfg.trl)


def sft_arguments(cfg: TrainConfig, output_dir: str):
    """The ``trl.SFTConfig`` of one contrastive-SFT side (loss on the completion only; then the ``trl:`` section)."""
    from trl import SFTConfig

    return build_trl_config(SFTConfig, {**common_arguments(cfg, output_dir), "completion_only_loss": True}, cfg.trl)


# --------------------------------------------------------------------------------------------- DPO
class WsteerDPOTrainer:
    """Mixin for TRL's DPOTrainer: with PiSSA, the reference is the *initial adapter*, not the disabled one.

    PiSSA rewrites each base weight to ``W - B0 A0``, so disabling the adapter no longer gives the base model;
    the initial adapter does (``W - B0 A0 + B0 A0 = W``). The reference log-probs are precomputed before the first
    step, so during that pass the adapter stays enabled. Every other setup uses TRL's path unchanged.
    """

    def __init__(self, *args, reference_is_initial_adapter: bool = False, **kwargs):
        self.reference_is_initial_adapter = reference_is_initial_adapter
        super().__init__(*args, **kwargs)

    def compute_ref_log_probs(self, model, inputs):
        if not self.reference_is_initial_adapter:
            return super().compute_ref_log_probs(model, inputs)
        peft_model = self.accelerator.unwrap_model(self.model)
        peft_model.disable_adapter = contextlib.nullcontext  # shadows the method for this pass only
        try:
            return super().compute_ref_log_probs(model, inputs)
        finally:
            del peft_model.disable_adapter


def _causal_lm(trainer):
    """The transformers CausalLM inside the (possibly wrapped) peft model: the module TRL patched."""
    model = trainer.accelerator.unwrap_model(trainer.model)
    return model.get_base_model() if hasattr(model, "get_base_model") else model


class _Capture:
    """Forward hooks that keep the outputs of the CausalLM (per-token log-probs) and its backbone (hidden states)."""

    def __init__(self, causal_lm, hidden: bool):
        self.log_probs: list = []
        self.hidden: list = []
        self._handles = [causal_lm.register_forward_hook(self._on_lm)]
        if hidden:
            self._handles.append(causal_lm.base_model.register_forward_hook(self._on_backbone))

    def _on_lm(self, module, args, output):
        if getattr(output, "log_probs", None) is not None:
            self.log_probs.append(output.log_probs)

    def _on_backbone(self, module, args, output):
        self.hidden.append(output.last_hidden_state)

    def close(self) -> None:
        for handle in self._handles:
            handle.remove()


def mirrored_batch(inputs: dict, magnitudes: list[float] | None = None) -> tuple[dict, list[float]]:
    """The bidirectional batch and its per-row adapter scales.

    TRL's preference batch is ``[cho_1..cho_B, rej_1..rej_B]`` (chosen half, then rejected half). The mirrored
    batch has chosen half ``[cho (+s), rej (-s)]`` and rejected half ``[rej (+s), cho (-s)]``: 2B pairs whose
    first B ask for cho > rej at scale +s and whose last B ask for rej > cho at scale -s. ``magnitudes``: pair
    b's s (B values; default 1 for every pair).
    """
    import torch

    mirrored = {}
    for key in ("input_ids", "attention_mask", "completion_mask"):
        cho, rej = inputs[key].chunk(2, dim=0)  # [B, T] each
        mirrored[key] = torch.cat([cho, rej, rej, cho], dim=0)  # [4B, T]
    if "ref_chosen_logps" in inputs:
        ref_cho, ref_rej = inputs["ref_chosen_logps"], inputs["ref_rejected_logps"]  # [B]
        mirrored["ref_chosen_logps"] = torch.cat([ref_cho, ref_rej])  # [2B]
        mirrored["ref_rejected_logps"] = torch.cat([ref_rej, ref_cho])  # [2B]
    batch = inputs["input_ids"].shape[0] // 2
    scales = [1.0] * batch if magnitudes is None else [float(m) for m in magnitudes]
    if len(scales) != batch:
        raise ValueError(f"{len(scales)} pole magnitudes for a batch of {batch} pairs")
    alphas = (scales + [-m for m in scales]) * 2  # [4B]: chosen half, then rejected half
    return mirrored, alphas


class PoleScaleSampler:
    """Each training step's pole magnitudes: one per pair, uniform in [low, high], from a stream seeded once.

    A run with the same seed draws the same magnitudes; a run resumed from a checkpoint draws afresh (the stream
    is not checkpointed). ``low == high`` draws nothing and returns that value for every pair.
    """

    def __init__(self, low: float, high: float, seed: int):
        import torch

        self.low, self.high = float(low), float(high)
        self._generator = torch.Generator(device="cpu").manual_seed(seed)

    def __call__(self, pairs: int) -> list[float]:
        import torch

        if self.low == self.high:
            return [self.low] * pairs
        uniform = torch.rand(pairs, generator=self._generator)  # [B] in [0, 1)
        return (self.low + (self.high - self.low) * uniform).tolist()


def token_kl_to_base(hidden_policy, hidden_base, lm_head, mask, chunk_size: int = 256):
    """Mean over masked positions of KL(policy || base) of the next-token distributions.

    ``hidden_*``: [N, T, H] final hidden states (policy with grad, base without); ``mask``: [N, T] bool, the
    positions whose next token is a completion token. Logits are formed chunk by chunk under activation
    checkpointing, so the [positions, vocab] tensors are never all alive at once.
    """
    import torch
    import torch.nn.functional as F
    from torch.utils.checkpoint import checkpoint

    from wsteer.scoring import token_kl

    h_pol = hidden_policy[mask]  # [P, H]
    h_base = hidden_base[mask].to(h_pol.dtype)  # [P, H]
    weight, bias = lm_head.weight, lm_head.bias
    if hasattr(weight, "full_tensor"):  # FSDP2 shards the head as a DTensor
        weight = weight.full_tensor()
        bias = bias.full_tensor() if bias is not None else None

    def chunk_kl(hp, hb):
        logp = F.log_softmax(F.linear(hp, weight, bias).float(), dim=-1)  # [C, V]
        with torch.no_grad():
            logq = F.log_softmax(F.linear(hb, weight, bias).float(), dim=-1)  # [C, V]
        return token_kl(logp, logq).sum()  # summed over the chunk's positions

    total = h_pol.new_zeros((), dtype=torch.float32)
    for start in range(0, h_pol.shape[0], chunk_size):
        total = total + checkpoint(
            chunk_kl, h_pol[start : start + chunk_size], h_base[start : start + chunk_size], use_reentrant=False
        )
    return total / max(h_pol.shape[0], 1)


def score_completion_tokens_only_on_cpu() -> None:
    """Let TRL's fused LM head project only the completion positions on CPU, as it already does on CUDA.

    TRL scores every position on devices without Triton because a compiled backend (Neuron) would recompile for
    each new number of positions; eager CPU has no such cost, and prompt positions (chat template + system prompt)
    are often half the sequence, so projecting them through the [hidden, vocab] head is wasted work. The only
    thing changed is that decision (``trl.trainer.utils._use_triton`` as read by the fused forward); the kernel
    module keeps its own copy, so the CPU arithmetic is TRL's torch path unchanged.
    """
    import trl.trainer.utils as trl_utils

    original = getattr(trl_utils, "_use_triton", None)
    if original is None or getattr(original, "wsteer_cpu_compact", False):
        return

    def use_compact_positions(device) -> bool:
        return device.type == "cpu" or original(device)

    use_compact_positions.wsteer_cpu_compact = True
    trl_utils._use_triton = use_compact_positions


def pole_margins(capture: _Capture, mirrored: dict, beta: float):
    """β-scaled reward margins [B] of each pole of the mirrored batch: +1 (cho > rej), then -1 (rej > cho).

    The policy log-probs come from the first captured forward; the reference from the precomputed log-probs in
    the batch, or else from the second captured forward (TRL runs the reference right after the policy).
    """
    import torch

    shift_mask = mirrored["completion_mask"][:, 1:]  # [4B, T-1]
    seq_len = shift_mask.shape[1]
    with torch.no_grad():
        logps = (capture.log_probs[0][:, -seq_len:] * shift_mask).sum(dim=1)  # [4B]
        if "ref_chosen_logps" in mirrored:
            ref = torch.cat([mirrored["ref_chosen_logps"], mirrored["ref_rejected_logps"]]).to(logps)
        else:
            ref = (capture.log_probs[1][:, -seq_len:] * shift_mask).sum(dim=1)
        chosen, rejected = (logps - ref).chunk(2)  # [2B] each
        margins = beta * (chosen - rejected)  # [2B]: pole +1 first, then pole -1
    return margins.chunk(2)


def kl_to_base(trainer, causal_lm, policy_hidden, rows: dict, mask, reorder=None):
    """Token KL(policy ‖ base) at the ``mask`` positions ([N, T-1] bool: the next token is a completion token).

    ``policy_hidden`` [N, T, H] are the final hidden states of the step's own forward (with grad); the base's come
    from one no-grad forward of ``rows`` (input_ids, attention_mask) with the adapter disabled, put in the policy's
    row order by ``reorder`` when the policy batch repeats rows (the bidirectional mirror).
    """
    import torch

    peft_model = trainer.accelerator.unwrap_model(trainer.model)
    with torch.no_grad(), peft_model.disable_adapter():
        inputs = {k: rows[k] for k in ("input_ids", "attention_mask")}
        base_hidden = causal_lm.base_model(**inputs, use_cache=False).last_hidden_state  # [rows, T, H]
    if reorder is not None:
        base_hidden = reorder(base_hidden)  # [N, T, H]
    return token_kl_to_base(policy_hidden[:, :-1], base_hidden[:, :-1], causal_lm.get_output_embeddings(), mask)


def mirrored_kl_to_base(trainer, causal_lm, capture: _Capture, inputs: dict, mirrored: dict):
    """Token KL(adapter at ±1 ‖ base) on the completion tokens of the mirrored batch (one base forward of the
    2B distinct rows, repeated into the mirrored order)."""
    import torch

    def mirror(hidden):  # [2B, T, H] -> [4B, T, H], rows as in `mirrored`
        cho, rej = hidden.chunk(2, dim=0)
        return torch.cat([cho, rej, rej, cho], dim=0)

    mask = mirrored["completion_mask"][:, 1:].bool()  # [4B, T-1]
    return kl_to_base(trainer, causal_lm, capture.hidden[0], inputs, mask, reorder=mirror)


class KLToBaseMixin:
    """Adds ``kl_coef`` × token KL(adapter ‖ base) on the completion tokens to a TRL trainer's loss.

    The KL is taken on the step's own forward (its final hidden states, caught by a hook) against one extra
    no-grad forward with the adapter disabled; it is logged as ``kl_to_base``. ``kl_coef = 0`` is TRL's loss
    unchanged. Subclasses call :meth:`_with_kl` around the parent's loss.
    """

    def __init__(self, *args, kl_coef: float = 0.0, **kwargs):
        self.kl_coef = kl_coef
        super().__init__(*args, **kwargs)

    def _with_kl(self, compute_loss, inputs: dict, mask, return_outputs: bool):
        causal_lm = _causal_lm(self)
        capture = _Capture(causal_lm, hidden=True)
        try:
            result = compute_loss()
        finally:
            capture.close()
        loss = result[0] if return_outputs else result
        kl = kl_to_base(self, causal_lm, capture.hidden[0], inputs, mask)
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["kl_to_base"].append(self.accelerator.gather(kl.detach()).mean().item())
        loss = loss + self.kl_coef * kl
        return (loss, result[1]) if return_outputs else loss


def make_sft_trainer_class():
    """TRL's SFTTrainer with the optional KL-to-base term (contrastive_sft trains each side with it)."""
    from trl import SFTTrainer

    class RegularisedSFTTrainer(KLToBaseMixin, SFTTrainer):
        """SFT on one side's completions; with ``kl_coef > 0`` each side also stays close to the base."""

        def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
            parent = super().compute_loss
            if self.kl_coef <= 0:
                return parent(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch)
            mask = inputs["labels"][:, 1:] != -100  # [N, T-1]: the next token is a completion token
            return self._with_kl(
                lambda: parent(model, inputs, return_outputs=return_outputs, num_items_in_batch=num_items_in_batch),
                inputs,
                mask,
                return_outputs,
            )

    return RegularisedSFTTrainer


def make_trainer_classes():
    """Build the trainer classes (TRL is imported lazily so `wsteer --help` stays fast)."""
    from trl import DPOTrainer

    score_completion_tokens_only_on_cpu()

    class PreferenceTrainer(KLToBaseMixin, WsteerDPOTrainer, DPOTrainer):
        """TRL's DPOTrainer (+ the PiSSA reference fix, + the optional KL-to-base term on cho and rej)."""

        def _compute_loss(self, model, inputs, return_outputs):
            parent = super()._compute_loss
            if self.kl_coef <= 0:
                return parent(model, inputs, return_outputs)
            mask = inputs["completion_mask"][:, 1:].bool()  # [2B, T-1]
            return self._with_kl(lambda: parent(model, inputs, return_outputs), inputs, mask, return_outputs)

    class BidirectionalDPOTrainer(KLToBaseMixin, WsteerDPOTrainer, DPOTrainer):
        """One adapter, both poles: TRL's DPO loss on the mirrored batch with per-row adapter scales ±s (its KL
        term is taken at the same scales on the mirrored batch, so it overrides the loss rather than calling
        ``_with_kl``). s is 1, or drawn per pair from ``pole_scales`` = (low, high) in training steps; evaluation
        steps stay at ±1."""

        def __init__(self, *args, pole_scales: tuple[float, float] = (1.0, 1.0), **kwargs):
            super().__init__(*args, **kwargs)
            self.pole_scales = PoleScaleSampler(*pole_scales, seed=self.args.seed)

        def _compute_loss(self, model, inputs, return_outputs):
            pairs = inputs["input_ids"].shape[0] // 2
            magnitudes = self.pole_scales(pairs) if self.model.training else None
            mirrored, alphas = mirrored_batch(inputs, magnitudes)
            causal_lm = _causal_lm(self)
            capture = _Capture(causal_lm, hidden=self.kl_coef > 0)
            try:
                with per_row_adapter_scale(model, alphas):
                    result = super()._compute_loss(model, mirrored, return_outputs)
            finally:
                capture.close()
            loss = result[0] if return_outputs else result
            mode = "train" if self.model.training else "eval"
            self._log_pole_metrics(capture, mirrored, mode)
            if self.kl_coef > 0:
                kl = mirrored_kl_to_base(self, causal_lm, capture, inputs, mirrored)
                self._metrics[mode]["kl_to_base"].append(self.accelerator.gather(kl.detach()).mean().item())
                loss = loss + self.kl_coef * kl
            return (loss, result[1]) if return_outputs else loss

        def _log_pole_metrics(self, capture: _Capture, mirrored: dict, mode: str) -> None:
            """Reward margin and accuracy of each pole: +1 (cho > rej) and -1 (rej > cho)."""
            plus, minus = pole_margins(capture, mirrored, self.beta)
            for name, values in (("plus", plus), ("minus", minus)):
                values = self.accelerator.gather(values)
                self._metrics[mode][f"rewards/margins_{name}"].append(values.mean().item())
                self._metrics[mode][f"rewards/accuracies_{name}"].append((values > 0).float().mean().item())

    return PreferenceTrainer, BidirectionalDPOTrainer
