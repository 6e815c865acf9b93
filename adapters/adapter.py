"""An adapter as a value: load it, negate, scale, add, steer a model with it in a ``with`` block, merge, save.

    from wsteer import Adapter

    honest = Adapter.load("runs/honest/adapter")
    authority = Adapter.load("runs/authority/adapter")
    model, tokenizer = honest.load_base()
    with (1.5 * honest - 0.5 * authority).steer(model) as steered:
        steered.generate(...)
    (-honest).merge(1.0, "runs/dishonest-merged")

An :class:`Adapter` is a signed sum of adapter directories, ``Σ w_i · adapter_i``; arithmetic only changes the
weights, so nothing is computed until it is used. Using it calls the existing functions, which stay the only
implementation of the arithmetic: one adapter of weight ``w`` steers and merges at ``α · w`` through
:func:`wsteer.adapters.steer.steer` and :func:`wsteer.adapters.merge.merge_adapter` (so ``-a`` *is* steering at
α = -1 and ``a * 1.5`` *is* α = 1.5), and a sum is first written as the exact combination of
:func:`wsteer.adapters.combine.write_combination` (rank concatenation, the same bytes as ``wsteer adapters combine``).
"""

from __future__ import annotations

import contextlib
import math
import numbers
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from wsteer.adapters.combine import check_same_base, combined_info, write_combination
from wsteer.adapters.loading import AdapterSource, base_name, open_adapter
from wsteer.adapters.steer import check_alpha

from wsteer.errors import WsteerError
from wsteer.records import SteeringInfo


@dataclass(frozen=True, eq=False)  # eq=False: comparing would compare tensors; an Adapter is used, not compared
class Adapter:
    """A signed sum ``Σ w_i · adapter_i`` of LoRA adapter directories of one base (see the module docstring).

    Build one with :meth:`load` or :meth:`combine`; then ``-a``, ``a * 1.5``, ``1.5 * a``, ``a / 2``, ``a + b``,
    ``a - b`` and ``sum([...])`` give new values (the operands are unchanged).
    """

    terms: tuple[tuple[AdapterSource, float], ...]
    allow_unverified_base: bool = False

    # ----------------------------------------------------------------------------------------- building
    @classmethod
    def load(cls, path: str | Path) -> Adapter:
        """Read an adapter directory (safetensors only) and its steering.json, at weight 1."""
        return cls(((open_adapter(path), 1.0),))

    @classmethod
    def combine(
        cls, parts: Sequence[tuple[Adapter | str | Path, float]], allow_unverified_base: bool = False
    ) -> Adapter:
        """``Σ w_i · part_i`` of adapters or adapter directories; ``allow_unverified_base`` as in ``wsteer adapters
        combine`` (combine even when base hashes are missing and the recorded base names differ)."""
        if not parts:
            raise WsteerError("nothing to combine", where="combine", fix="pass at least one ADAPTER:WEIGHT")
        terms: list[tuple[AdapterSource, float]] = []
        for part, weight in parts:
            adapter = part if isinstance(part, Adapter) else cls.load(part)
            terms += [(source, w * _weight(weight)) for source, w in adapter.terms]
        return cls._checked(tuple(terms), allow_unverified_base)

    @classmethod
    def _checked(cls, terms: tuple[tuple[AdapterSource, float], ...], allow_unverified_base: bool) -> Adapter:
        """A new value; refuses adapters of different bases now rather than when it is used."""
        check_same_base([source for source, _ in terms], allow_unverified_base)
        return cls(terms, allow_unverified_base)

    # ----------------------------------------------------------------------------------------- arithmetic
    def __neg__(self) -> Adapter:
        return self * -1.0

    def __mul__(self, weight: float) -> Adapter:
        if not isinstance(weight, numbers.Real) or isinstance(weight, bool):
            return NotImplemented
        factor = _weight(weight)
        return Adapter(tuple((source, w * factor) for source, w in self.terms), self.allow_unverified_base)

    __rmul__ = __mul__

    def __truediv__(self, divisor: float) -> Adapter:
        if not isinstance(divisor, numbers.Real) or isinstance(divisor, bool):
            return NotImplemented
        if divisor == 0:
            raise WsteerError("cannot divide an adapter by 0", where="adapter / 0", fix="divide by a non-zero number")
        return self * (1.0 / float(divisor))

    def __add__(self, other: Adapter) -> Adapter:
        if not isinstance(other, Adapter):
            return NotImplemented
        allow = self.allow_unverified_base or other.allow_unverified_base
        return Adapter._checked(self.terms + other.terms, allow)

    def __radd__(self, other: object) -> Adapter:
        if isinstance(other, numbers.Number) and other == 0:  # sum([a, b, c]) starts from 0
            return self
        return NotImplemented

    def __sub__(self, other: Adapter) -> Adapter:
        if not isinstance(other, Adapter):
            return NotImplemented
        return self + (-other)

    def __repr__(self) -> str:
        return "Adapter(" + " ".join(f"{w:+g}·{source.path}" for source, w in self.terms) + ")"

    # ----------------------------------------------------------------------------------------- what it is
    @property
    def weights(self) -> list[float]:
        """The weight of each term, in order."""
        return [w for _, w in self.terms]

    @property
    def path(self) -> Path | None:
        """The adapter directory when this is one adapter at weight 1 (as loaded); None for any other value."""
        (source, weight), *rest = self.terms
        return source.path if not rest and weight == 1.0 else None

    @property
    def info(self) -> SteeringInfo | None:
        """steering.json as :meth:`save` would write it (None when no term has one)."""
        if self.path is not None:
            return self.terms[0][0].info
        return combined_info([s for s, _ in self.terms], self.weights)

    def base_name(self, base: str | None = None) -> str:
        """The base model this adapter applies to: ``base`` if given, else the one the first term records."""
        return base_name(self.terms[0][0], base)

    def load_base(self, base: str | None = None, dtype: str = "float32"):
        """Load the base model (checked against every recorded base hash) and its tokenizer: ``(model, tokenizer)``.

        The model is a plain transformers model; :meth:`steer` puts the adapter on it for a ``with`` block.
        """
        from wsteer.adapters.loading import resolve_base

        from wsteer.models import ModelConfig, load_model, load_tokenizer

        name, path = resolve_base(self.terms[0][0], self.base_name(base))
        for source, _ in self.terms[1:]:
            resolve_base(source, str(path))  # every term's recorded hash must match the base
        model_config = ModelConfig(name=str(path), dtype=dtype)
        model = load_model(model_config)
        model.wsteer_source = {"name": name, "path": str(path)}
        return model, load_tokenizer(model_config)

    # ----------------------------------------------------------------------------------------- using it
    @contextlib.contextmanager
    def _on_disk(self) -> Iterator[tuple[Path, float]]:
        """(adapter directory, weight) to hand the existing functions: the adapter itself for one term, else its
        exact combination written to a temporary directory (weight 1) that is removed after the block."""
        if len(self.terms) == 1:
            source, weight = self.terms[0]
            yield source.path, weight
            return
        with tempfile.TemporaryDirectory(prefix="wsteer-adapter-") as tmp:
            sources = [source for source, _ in self.terms]
            combined = write_combination(sources, self.weights, Path(tmp) / "adapter", self.allow_unverified_base)
            yield combined, 1.0

    @contextlib.contextmanager
    def steer(self, model, alpha: float = 1.0) -> Iterator[object]:
        """Run ``model`` with this adapter's delta times ``alpha`` inside the block; yields the model to call.

        ``model`` is the loaded base (e.g. from :meth:`load_base`) or a peft model of it. The adapter is loaded for
        the block and taken off afterwards, also when the block raises, so ``model`` computes what it computed
        before. See :func:`wsteer.adapters.steer.steer`.
        """
        from wsteer.adapters.steer import steer

        alpha = check_alpha(alpha)
        with self._on_disk() as (path, weight), steer(model, path, alpha * weight) as steered:
            yield steered

    def generate(
        self,
        prompts: Sequence[str],
        alphas: Sequence[float] = (1.0,),
        sampling=None,
        seed: int = 0,
        base: str | None = None,
        batch_size: int = 16,
        placement=None,
    ) -> list[dict]:
        """Answer each prompt at each α (loading the base); one dict per answer, ``alpha`` as given here.

        ``placement`` (a :class:`wsteer.models.Placement`) shards or quantises the base.

        See :func:`wsteer.adapters.steer.steer_generate` (shared batches, one α per row, same seed for every α).
        """
        from wsteer.adapters.steer import steer_generate

        alphas = [check_alpha(a, where="alphas") for a in alphas]
        with self._on_disk() as (path, weight):
            rows = steer_generate(
                path, [a * weight for a in alphas], prompts, sampling, seed, base, batch_size, placement
            )
        for row, alpha in zip(rows, [a for a in alphas for _ in prompts]):  # rows come back in request order
            row["alpha"] = alpha
        return rows

    def merge(self, alpha: float, out: str | Path, base: str | None = None, overwrite: bool = False, progress=True):
        """Write the base checkpoint plus ``alpha`` times this adapter's delta to ``out``; returns the MergeResult.

        One adapter of weight ``w`` is merged at ``alpha · w`` by :func:`wsteer.adapters.merge.merge_adapter` (the
        merged steering.json records that α); a sum is merged from its exact combination.
        """
        from wsteer.adapters.merge import merge_adapter

        alpha = check_alpha(alpha)
        with self._on_disk() as (path, weight):
            return merge_adapter(path, alpha * weight, out, base=base, overwrite=overwrite, progress=progress)

    def save(self, out: str | Path, overwrite: bool = False) -> Path:
        """Write this value as a peft adapter directory (with steering.json), atomically; returns ``out``.

        An adapter as loaded is written as it is (config, weights, steering.json); any other value is written as
        the exact combination ``wsteer adapters combine`` writes (rank concatenation, scalings folded into B).
        """
        out = Path(out)
        if out.exists() and not overwrite:
            raise WsteerError(
                f"output directory already exists: {out}", where="out", fix="choose another out or pass overwrite"
            )
        if self.path is None:
            sources = [source for source, _ in self.terms]
            return write_combination(sources, self.weights, out, self.allow_unverified_base, overwrite)
        return _copy_adapter(self.terms[0][0], out)


def _weight(value: float) -> float:
    """``value`` as a finite float; NaN and ±inf are refused."""
    weight = float(value)
    if not math.isfinite(weight):
        raise WsteerError(f"weight {value} is not finite", where="adapter weight", fix="use a finite weight")
    return weight


def _copy_adapter(source: AdapterSource, out: Path) -> Path:
    """Write ``source`` unchanged: its config and tensors, and its steering.json and model card when it has one."""
    import dataclasses

    from wsteer.card import CARD_FILE, render_model_card
    from wsteer.io import to_json
    from wsteer.lora import write_adapter
    from wsteer.records import STEERING_FILE

    extra = {}
    if source.info is not None:
        extra[STEERING_FILE] = to_json(dataclasses.asdict(source.info), indent=2) + "\n"
        extra[CARD_FILE] = render_model_card(source.info, source.files.config)
    return write_adapter(source.files, out, extra_files=extra)
