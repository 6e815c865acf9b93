"""Sweep reports: one Markdown file and one self-contained HTML file (plots embedded as PNG data URIs).

The report answers the seed's last question — what moved when we steered? — so the trait plot sits next to the
nuisance panel, with the prompting baselines drawn as reference lines, and the generations are shown side by side
per α with persona echo highlighted.

When ``capability.json`` (``wsteer eval capability``: lm-eval task scores per α) sits beside the summary, the report
gets a capability section: the scores per α next to the trait, so the cost of steering shows where its effect does.

Input is the sweep summary (see ``wsteer.eval.sweep``): ``{"pair", "arms": [...], "dose_response", "leak", …}`` where
each arm is ``{"name", "kind": "adapter"|"prompt"|"vector", "alpha", "persona", "coefficient", "metrics":
{metric: {"mean","lo","hi","n"}}}``. With vector arms and a probe the report adds the equal-KL comparison:
adapter, vector and prompt side by side (:func:`equal_kl_rows`).
"""

from __future__ import annotations

import base64
import html
import io
import math
from pathlib import Path
from typing import Sequence

from wsteer.eval.metrics import METRIC_BY_NAME, METRIC_LABELS, NUISANCE_METRICS, TABLE_METRICS, TRAIT_METRIC

from wsteer.io import atomic_write_text, read_json, read_jsonl
from wsteer.textstats import find_persona_echo, persona_terms

CAPABILITY_FILE = "capability.json"  # written by `wsteer eval capability` beside the sweep's summary.json

BASELINE_STYLES = {
    "pos": ("tab:green", "pos persona prompt"),
    "neg": ("tab:red", "neg persona prompt"),
    "none": ("tab:gray", "no persona"),
}


# --------------------------------------------------------------------------------------------- plots
def _adapter_arms(summary: dict) -> list[dict]:
    return sorted((a for a in summary["arms"] if a["kind"] == "adapter"), key=lambda a: a["alpha"])


def _prompt_arms(summary: dict) -> list[dict]:
    return [a for a in summary["arms"] if a["kind"] == "prompt"]


def _vector_arms(summary: dict) -> list[dict]:
    return sorted((a for a in summary["arms"] if a["kind"] == "vector"), key=lambda a: a["coefficient"])


def _all_arms(summary: dict) -> list[dict]:
    return _adapter_arms(summary) + _prompt_arms(summary) + _vector_arms(summary)


def _png(fig) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def _f(value: float | None) -> float:
    """summary.json stores NaN as null: read it back as NaN."""
    return math.nan if value is None else float(value)


def _bar(high: float, low: float) -> float:
    """Length of one side of a CI bar; 0 where a bound is unknown (NaN)."""
    return max(0.0, high - low) if math.isfinite(high - low) else 0.0


def _draw_metric(ax, summary: dict, metric: str) -> None:
    """Metric vs α with 95% CI bars, and the prompt baselines as horizontal reference lines."""
    arms = [a for a in _adapter_arms(summary) if metric in a["metrics"]]
    xs = [a["alpha"] for a in arms]
    means = [_f(a["metrics"][metric]["mean"]) for a in arms]
    lower = [_bar(m, _f(a["metrics"][metric]["lo"])) for m, a in zip(means, arms)]
    upper = [_bar(_f(a["metrics"][metric]["hi"]), m) for m, a in zip(means, arms)]
    ax.errorbar(xs, means, yerr=[lower, upper], marker="o", capsize=3, color="tab:blue", label="adapter at α")
    for arm in _prompt_arms(summary):
        stats = arm["metrics"].get(metric)
        if stats is None or not math.isfinite(_f(stats["mean"])):
            continue
        color, label = BASELINE_STYLES.get(arm.get("persona") or "none", ("black", arm["name"]))
        ax.axhline(stats["mean"], color=color, linestyle="--", linewidth=1, label=label)
    ax.set_xlabel("α")
    ax.set_title(METRIC_LABELS.get(metric, metric), fontsize=9)
    ax.grid(alpha=0.3)


def trait_plot(summary: dict) -> str:
    """PNG (base64) of the trait score vs α with CIs and the prompting baselines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    _draw_metric(ax, summary, TRAIT_METRIC)
    ax.legend(fontsize=7, loc="best")
    try:
        return _png(fig)
    finally:
        plt.close(fig)


def nuisance_plot(summary: dict) -> str:
    """PNG (base64) of the nuisance panel: one small plot per nuisance metric vs α."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [m for m in NUISANCE_METRICS if any(m in a["metrics"] for a in summary["arms"])]
    columns = 3
    rows = max(1, math.ceil(len(metrics) / columns))
    fig, axes = plt.subplots(rows, columns, figsize=(11, 2.8 * rows), squeeze=False)
    for ax, metric in zip(axes.flat, metrics):
        _draw_metric(ax, summary, metric)
    for ax in list(axes.flat)[len(metrics) :]:
        ax.axis("off")
    fig.tight_layout()
    try:
        return _png(fig)
    finally:
        plt.close(fig)


# --------------------------------------------------------------------------------------------- tables
def _fmt(stats: dict | None) -> str:
    if not stats or stats.get("mean") is None or not math.isfinite(stats["mean"]):
        return "–"
    return f"{stats['mean']:.3g} [{_g(stats.get('lo'))}, {_g(stats.get('hi'))}]"


def _metric_rows(summary: dict) -> tuple[list[str], list[list[str]]]:
    metrics = [m for m in TABLE_METRICS if any(m in a["metrics"] for a in summary["arms"])]
    header = ["arm", "n", *metrics]
    rows = []
    for arm in _all_arms(summary):
        n = max((s.get("n", 0) for s in arm["metrics"].values()), default=0)
        rows.append([arm["name"], str(n), *(_fmt(arm["metrics"].get(m)) for m in metrics)])
    return header, rows


def _legend(metrics: Sequence[str]) -> str:
    """One line saying what each column is and what a higher value means (from the metric registry)."""
    known = [METRIC_BY_NAME[m] for m in metrics if m in METRIC_BY_NAME]
    return "Higher means: " + "; ".join(f"{m.name} ({m.label}): {m.higher}" for m in known) + "."


def _g(value: float | None, spec: str = ".3g") -> str:
    """A number for the report; NaN is stored as null in summary.json, and both read "n/a"."""
    return "n/a" if value is None or value != value else format(value, spec)


def _dose_lines(summary: dict) -> list[str]:
    dose = summary.get("dose_response") or {}
    lines = []
    rho = (dose.get("spearman") or {}).get("rho")
    if rho is not None:
        lines.append(
            f"Spearman ρ(trait, α) = {_g(rho, '.3f')} (p = {_g(dose['spearman'].get('p'), '.2g')}, "
            f"n = {dose['spearman'].get('n')})"
        )
    trait = dose.get("trait_slope")
    if trait:
        lines.append(f"trait: slope {_g(trait['slope'])} per unit α, standardised {_g(trait['std_slope'])}")
    for metric, info in (dose.get("slopes") or {}).items():
        lines.append(f"{metric}: slope {_g(info['slope'])} per unit α, standardised {_g(info['std_slope'])}")
    return lines


def _mean(arm: dict | None, metric: str) -> float | None:
    stats = (arm or {}).get("metrics", {}).get(metric)
    return stats["mean"] if stats and stats.get("mean") is not None and math.isfinite(stats["mean"]) else None


def _shift(arm: dict, base: dict | None, metric: str) -> str:
    value, reference = _mean(arm, metric), _mean(base, metric)
    return "–" if value is None or reference is None else f"{value - reference:+.3g}"


def _ratio(arm: dict, base: dict | None, metric: str) -> str:
    value, reference = _mean(arm, metric), _mean(base, metric)
    return "–" if value is None or not reference else f"×{value / reference:.3g}"


def equal_kl_rows(summary: dict) -> tuple[list[str], list[list[str]]]:
    """Adapter, vector and prompt side by side at each pole: the adapter at its calibrated α±, the vector at the
    c± that reach the same p95 KL, and the matching persona prompt. Trait shift (PLR, probe) and coherence cost
    (base-perplexity ratio) are against the base (α = 0). Empty without calibrated vector arms."""
    settings = (summary.get("vector") or {}).get("equal_kl")
    if not settings:
        return [], []
    by_name = {a["name"]: a for a in summary["arms"]}
    base = next((a for a in _adapter_arms(summary) if a["alpha"] == 0.0), None)
    header = ["pole", "arm", "p95 KL (calibration)", "KL to base", "Δ PLR", "Δ probe", "perplexity ratio"]
    rows = []
    for pole, sign, persona in (("pos", "plus", "pos"), ("neg", "minus", "neg")):
        alpha, coefficient = settings[f"alpha_{sign}"], settings[f"c_{sign}"]
        candidates = [
            (by_name.get(f"α={alpha:+g}"), _g(settings[f"kl_alpha_{sign}"])),
            (by_name.get(f"vector:c={coefficient:+g}"), _g(settings[f"kl_c_{sign}"])),
            (by_name.get(f"prompt:{persona}"), "–"),
        ]
        for arm, kl in candidates:
            if arm is None:
                continue
            rows.append(
                [
                    pole,
                    arm["name"],
                    kl,
                    _g(_mean(arm, "kl")),
                    _shift(arm, base, TRAIT_METRIC),
                    _shift(arm, base, "probe"),
                    _ratio(arm, base, "perplexity"),
                ]
            )
    return header, rows


def _comparison_lines(summary: dict) -> list[str]:
    """How the vector was built and how the probe agrees with PLR (Markdown bullet text)."""
    lines = []
    vector = summary.get("vector")
    if vector:
        lines.append(
            f"steering vector: mean difference of cho − rej at decoder block {vector['layer']} of "
            f"{vector['n_layers']} (rule: {vector['rule']}), from `{vector['pairs']}`"
        )
        settings = vector.get("equal_kl")
        if settings and settings.get("match_alpha") is not None:
            lines.append(
                f"equal KL: the vector at c = {_g(settings['c_plus'])} / {_g(settings['c_minus'])} reaches the "
                f"p{round(settings['quantile'] * 100)} per-token KL the adapter has at α = "
                f"{_g(settings['alpha_plus'])} / {_g(settings['alpha_minus'])} "
                f"({_g(settings['kl_alpha_plus'])} / {_g(settings['kl_alpha_minus'])} nat)"
            )
        elif settings:
            lines.append(
                f"equal KL: p{round(settings['quantile'] * 100)} per-token KL target {_g(settings['target_kl'])} "
                f"reached by the adapter at α = {_g(settings['alpha_plus'])} / {_g(settings['alpha_minus'])} and "
                f"by the vector at c = {_g(settings['c_plus'])} / {_g(settings['c_minus'])}"
            )
    probe, judge = summary.get("probe"), summary.get("judge")
    if probe:
        lines.append(_agreement(f"probe `{probe['suite']}` ({probe['items']} items)", probe["spearman_vs_trait"]))
    if judge:
        label = f"LLM judge ({judge['answers']} answers, each against the base's)"
        lines.append(_agreement(label, judge["spearman_vs_trait"]))
    return lines


def _agreement(label: str, rho: dict) -> str:
    """How a second trait measure agrees with PLR: Spearman ρ over the arm means."""
    return (
        f"{label} vs PLR: Spearman ρ over arm means = "
        f"{_g(rho.get('rho'), '.3f')} (p = {_g(rho.get('p'), '.2g')}, n = {rho.get('n')} arms)"
    )


def _markdown_table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(cell.replace("|", "\\|").replace("\n", " ") for cell in row) + " |" for row in rows]
    return "\n".join(out)


def generation_grid(generations: Sequence[dict], summary: dict, max_prompts: int = 6) -> tuple[list[str], list]:
    """Arm names and, per prompt (first seed only), the prompt and each arm's text."""
    arms = [a["name"] for a in _all_arms(summary)]
    by_prompt: dict[str, dict[str, str]] = {}
    order: list[str] = []
    for g in generations:
        if g.get("filtered") is False:  # the unfiltered leak-check rows are not the arms' outputs
            continue
        key = g["prompt"]
        if key not in by_prompt:
            if len(order) >= max_prompts:
                continue
            by_prompt[key] = {}
            order.append(key)
        by_prompt[key].setdefault(g["arm"], g["text"])
    return arms, [(prompt, [by_prompt[prompt].get(arm, "") for arm in arms]) for prompt in order]


# --------------------------------------------------------------------------------------------- writers
def _pipeline_markdown(pipeline: dict | None) -> list[str]:
    """The demo's checks and stage summaries (absent for a plain sweep)."""
    if not pipeline:
        return []
    checks = [
        [("✓ " if c["passed"] else "✗ ") + c["check"], c["target"], c["value"]] for c in pipeline.get("checks", [])
    ]
    stages = [[s["stage"], f"{s['seconds'] or 0:.0f} s", s["summary"] or ""] for s in pipeline.get("stages", [])]
    return [
        "## Checks",
        "",
        _markdown_table(["check", "target", "measured"], checks),
        "",
        "## Pipeline",
        "",
        _markdown_table(["stage", "time", "result"], stages),
        "",
    ]


def _pipeline_html(pipeline: dict | None) -> list[str]:
    if not pipeline:
        return []
    esc = html.escape
    parts = ["<h2>Checks</h2><table><tr><th>check</th><th>target</th><th>measured</th></tr>"]
    for c in pipeline.get("checks", []):
        css = "pass" if c["passed"] else "warn"
        mark = "✓" if c["passed"] else "✗"
        parts.append(
            f"<tr><td class='{css}'>{mark} {esc(c['check'])}</td><td>{esc(c['target'])}</td>"
            f"<td>{esc(c['value'])}</td></tr>"
        )
    parts.append("</table><h2>Pipeline</h2><table><tr><th>stage</th><th>time</th><th>result</th></tr>")
    for s in pipeline.get("stages", []):
        parts.append(
            f"<tr><td>{esc(s['stage'])}</td><td>{s['seconds'] or 0:.0f} s</td><td>{esc(s['summary'] or '')}</td></tr>"
        )
    return [*parts, "</table>"]


def render_markdown(summary: dict, generations: Sequence[dict], capability: dict | None = None) -> str:
    """The Markdown report (with a capability section when ``capability`` is given)."""
    pair = summary.get("pair", {})
    lines = [f"# Steering report: {pair.get('pos', '?')} ↔ {pair.get('neg', '?')}", ""]
    lines += [
        f"- adapter: `{summary.get('adapter')}`",
        f"- model: `{summary.get('model')}`",
        f"- template: `{pair.get('template')}`",
        f"- prompts: {summary.get('n_prompts')}, samples per prompt: {summary.get('samples_per_prompt')}",
        "",
    ]
    lines += _pipeline_markdown(summary.get("pipeline"))
    flags = (summary.get("dose_response") or {}).get("flags") or []
    lines += ["## Dose-response", "", *[f"- {line}" for line in _dose_lines(summary)], ""]
    lines += (
        ["**Warnings:**", *[f"- ⚠ {flag}" for flag in flags], ""]
        if flags
        else ["No nuisance axis moved more than the trait.", ""]
    )
    leak = summary.get("leak") or {}
    if leak:
        lines += [
            f"Persona-word leak rate: {_g(leak.get('filtered_rate'), '.3f')} with the vocabulary "
            f"filter, {_g(leak.get('unfiltered_rate'), '.3f')} without it "
            f"(n = {leak.get('n_unfiltered')}).",
            "",
        ]
    header, rows = _metric_rows(summary)
    lines += ["## Metrics per arm (mean [95% CI])", "", _markdown_table(header, rows), "", _legend(header[2:]), ""]
    comparison = _comparison_lines(summary)
    kl_header, kl_rows = equal_kl_rows(summary)
    if comparison or kl_rows:
        lines += ["## Adapter, vector and prompt at equal KL", "", *[f"- {line}" for line in comparison], ""]
    if kl_rows:
        lines += [_markdown_table(kl_header, kl_rows), "", EQUAL_KL_NOTE, ""]
    lines += _capability_markdown_section(capability, summary)
    arms, grid = generation_grid(generations, summary)
    lines += ["## Generations", ""]
    for prompt, texts in grid:
        lines += [f"### {prompt}", ""]
        lines += [f"- **{arm}**: {text}" for arm, text in zip(arms, texts)]
        lines += [""]
    return "\n".join(lines)


def _highlight_echo(text: str, terms: Sequence[str]) -> str:
    """HTML-escaped text with persona-echo sentences wrapped in <mark>."""
    pieces, cursor = [], 0
    for sentence in find_persona_echo(text, terms):
        pieces.append(html.escape(text[cursor : sentence.start]))
        pieces.append(f"<mark title='persona echo'>{html.escape(text[sentence.start : sentence.end])}</mark>")
        cursor = sentence.end
    pieces.append(html.escape(text[cursor:]))
    return "".join(pieces).replace("\n", "<br>")


_CSS = """
body { font-family: system-ui, sans-serif; margin: 2em; max-width: 1400px; color: #222; }
table { border-collapse: collapse; font-size: 12px; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 6px; vertical-align: top; text-align: left; }
th { background: #f4f4f4; }
td.gen { max-width: 260px; font-size: 11px; }
mark { background: #ffd54f; }
.warn { color: #b00020; font-weight: 600; }
.pass { color: #1b5e20; font-weight: 600; }
img.plot { max-width: 100%; border: 1px solid #eee; }
"""

# Counts the plots that actually decoded, so a headless browser test can check the report renders.
_RENDER_CHECK = """
window.addEventListener('load', function () {
  var ok = 0, imgs = document.querySelectorAll('img.plot');
  imgs.forEach(function (img) { if (img.complete && img.naturalWidth > 0) ok++; });
  document.body.setAttribute('data-plots-rendered', ok + '/' + imgs.length);
});
"""


EQUAL_KL_NOTE = (
    "Δ PLR and Δ probe: arm mean minus the base's (α = 0); perplexity ratio: the base model's perplexity of the "
    "arm's answers over that of the base's answers (coherence cost); KL to base: mean per-token KL on the arm's "
    "own answers."
)


def _comparison_html(summary: dict) -> list[str]:
    """The equal-KL table and the vector/probe lines, as HTML (nothing without vector arms or a probe)."""
    esc = html.escape
    comparison = _comparison_lines(summary)
    header, rows = equal_kl_rows(summary)
    if not comparison and not rows:
        return []
    parts = ["<h2>Adapter, vector and prompt at equal KL</h2><ul>", *[f"<li>{esc(x)}</li>" for x in comparison]]
    parts.append("</ul>")
    if rows:
        parts += ["<table><tr>", *[f"<th>{esc(h)}</th>" for h in header], "</tr>"]
        parts += ["<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in rows]
        parts += ["</table>", f"<p>{esc(EQUAL_KL_NOTE)}</p>"]
    return parts


def render_html(
    summary: dict, generations: Sequence[dict], terms: Sequence[str] = (), capability: dict | None = None
) -> str:
    """The self-contained HTML report (no external files or network; a capability section when given)."""
    pair = summary.get("pair", {})
    esc = html.escape
    parts = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>wsteer report: {esc(pair.get('pos', ''))}"
        f"</title><style>{_CSS}</style></head><body>",
        f"<h1>Steering report: {esc(pair.get('pos', '?'))} ↔ {esc(pair.get('neg', '?'))}</h1>",
        f"<p>adapter <code>{esc(str(summary.get('adapter')))}</code> · model "
        f"<code>{esc(str(summary.get('model')))}</code> · template <code>{esc(str(pair.get('template')))}"
        f"</code> · {summary.get('n_prompts')} prompts × {summary.get('samples_per_prompt')} samples</p>",
        *_pipeline_html(summary.get("pipeline")),
        "<h2>Trait vs α</h2>",
        f"<img class='plot' alt='trait vs alpha' src='data:image/png;base64,{trait_plot(summary)}'>",
        "<h2>Nuisance panel</h2>",
        f"<img class='plot' alt='nuisance metrics vs alpha' src='data:image/png;base64,{nuisance_plot(summary)}'>",
        "<h2>Dose-response</h2><ul>",
        *[f"<li>{esc(line)}</li>" for line in _dose_lines(summary)],
        "</ul>",
    ]
    flags = (summary.get("dose_response") or {}).get("flags") or []
    parts += [f"<p class='warn'>⚠ {esc(flag)}</p>" for flag in flags] or [
        "<p>No nuisance axis moved more than the trait.</p>"
    ]
    header, rows = _metric_rows(summary)
    parts += ["<h2>Metrics per arm (mean [95% CI])</h2><table><tr>", *[f"<th>{esc(h)}</th>" for h in header], "</tr>"]
    parts += ["<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in rows]
    parts += ["</table>", *_comparison_html(summary), *_capability_html(capability, summary)]
    arms, grid = generation_grid(generations, summary)
    parts += [
        "<h2>Generations (persona echo highlighted)</h2><table><tr><th>prompt</th>",
        *[f"<th>{esc(arm)}</th>" for arm in arms],
        "</tr>",
    ]
    for prompt, texts in grid:
        cells = "".join(f"<td class='gen'>{_highlight_echo(text, terms)}</td>" for text in texts)
        parts.append(f"<tr><td class='gen'>{esc(prompt)}</td>{cells}</tr>")
    parts += ["</table>", f"<script>{_RENDER_CHECK}</script></body></html>"]
    return "".join(parts)


def write_report(
    out_dir: str | Path,
    summary: dict,
    generations: Sequence[dict],
    terms: Sequence[str] = (),
    capability: dict | None = None,
) -> Path:
    """Write ``report.md`` and ``report.html`` into ``out_dir``; returns the HTML path. ``capability`` defaults to
    the ``capability.json`` in ``out_dir``, if there is one."""
    out_dir = Path(out_dir)
    capability = capability if capability is not None else read_capability(out_dir)
    atomic_write_text(out_dir / "report.md", render_markdown(summary, generations, capability))
    return atomic_write_text(out_dir / "report.html", render_html(summary, generations, terms, capability))


def refresh_report(out_dir: str | Path) -> Path:
    """Rewrite a finished sweep's report from its files (summary.json, generations.jsonl, capability.json), e.g.
    after ``wsteer eval capability`` added scores. Returns the HTML path."""
    out_dir = Path(out_dir)
    summary = read_json(out_dir / "summary.json")
    generations_file = out_dir / "generations.jsonl"
    generations = read_jsonl(generations_file) if generations_file.is_file() else []
    pair = summary.get("pair") or {}
    terms = persona_terms(pair["pos"], pair["neg"]) if pair.get("pos") and pair.get("neg") else []
    return write_report(out_dir, summary, generations, terms)


# --------------------------------------------------------------------------------------------- capability
def read_capability(out_dir: str | Path) -> dict | None:
    """``capability.json`` in ``out_dir``, or None."""
    path = Path(out_dir) / CAPABILITY_FILE
    return read_json(path) if path.is_file() else None


def capability_table(capability: dict) -> dict[tuple[str, str], dict[float, dict]]:
    """``{(task, metric): {alpha: row}}`` of a capability summary, in the order the rows came."""
    table: dict[tuple[str, str], dict[float, dict]] = {}
    for row in capability.get("rows", []):
        table.setdefault((row["task"], row["metric"]), {})[float(row["alpha"])] = row
    return table


def _trait_by_alpha(summary: dict | None) -> dict[float, dict]:
    if not summary:
        return {}
    return {float(a["alpha"]): a["metrics"].get(TRAIT_METRIC) for a in _adapter_arms(summary)}


def _score(row: dict | None) -> str:
    if row is None:
        return "–"
    stderr = row.get("stderr")
    return _g(row["value"]) + (f" ± {_g(stderr, '.2g')}" if stderr is not None else "")


def capability_rows(capability: dict, summary: dict | None = None) -> tuple[list[str], list[list[str]]]:
    """Header and one row per α: the trait (when the sweep summary is given) and each task metric (± stderr)."""
    table = capability_table(capability)
    trait = _trait_by_alpha(summary)
    alphas = sorted({float(a) for a in capability.get("alphas", [])} | {a for col in table.values() for a in col})
    header = ["α", *(["trait (PLR)"] if trait else []), *(f"{task}: {metric}" for task, metric in table)]
    rows = []
    for alpha in alphas:
        cells = [f"{alpha:+g}", *([_fmt(trait.get(alpha))] if trait else [])]
        rows.append(cells + [_score(column.get(alpha)) for column in table.values()])
    return header, rows


def _capability_note(capability: dict) -> str:
    shots = capability.get("num_fewshot")
    return (
        f"lm-eval tasks {', '.join(capability.get('tasks', []))} on the steered model at each α "
        f"({'task default' if shots is None else shots} shots"
        + (f", limit {capability['limit']}" if capability.get("limit") is not None else "")
        + "); value ± stderr. α = 0 is the base model."
    )


def _capability_markdown_section(capability: dict | None, summary: dict | None) -> list[str]:
    if not capability:
        return []
    header, rows = capability_rows(capability, summary)
    return ["## Capability per α", "", _capability_note(capability), "", _markdown_table(header, rows), ""]


def render_capability_markdown(capability: dict, summary: dict | None = None) -> str:
    """``capability.md``: the capability table on its own (with the trait when the sweep summary is given)."""
    lines = [f"# Capability cost: `{capability.get('adapter')}`", "", f"- model: `{capability.get('model')}`", ""]
    return "\n".join(lines + _capability_markdown_section(capability, summary))


def capability_plot(capability: dict) -> str:
    """PNG (base64): each task metric vs α with ± stderr bars."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.6))
    for (task, metric), column in capability_table(capability).items():
        alphas = sorted(column)
        values = [column[a]["value"] for a in alphas]
        errors = [column[a].get("stderr") or 0.0 for a in alphas]
        ax.errorbar(alphas, values, yerr=errors, marker="o", capsize=3, label=f"{task}: {metric}")
    ax.set_xlabel("α")
    ax.set_title("capability vs α (lm-eval)", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    try:
        return _png(fig)
    finally:
        plt.close(fig)


def _capability_html(capability: dict | None, summary: dict | None) -> list[str]:
    if not capability:
        return []
    esc = html.escape
    header, rows = capability_rows(capability, summary)
    parts = [
        "<h2>Capability per α</h2>",
        f"<p>{esc(_capability_note(capability))}</p>",
        f"<img class='plot' alt='capability vs alpha' src='data:image/png;base64,{capability_plot(capability)}'>",
        "<table><tr>",
        *[f"<th>{esc(h)}</th>" for h in header],
        "</tr>",
    ]
    parts += ["<tr>" + "".join(f"<td>{esc(cell)}</td>" for cell in row) + "</tr>" for row in rows]
    return [*parts, "</table>"]
