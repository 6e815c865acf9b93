"""The equal-KL table of the sweep report, from a hand-written summary: shifts and ratios against the base arm."""

from wsteer.eval.report import equal_kl_rows, render_markdown


def arm(name, kind, plr, probe, ppl, kl, **extra):
    stats = {"plr": plr, "probe": probe, "perplexity": ppl, "kl": kl}
    return {
        "name": name,
        "kind": kind,
        **extra,
        "metrics": {k: {"mean": v, "lo": v, "hi": v, "n": 4} for k, v in stats.items()},
    }


SUMMARY = {
    "pair": {"pos": "honest", "neg": "dishonest", "template": "{persona}"},
    "arms": [
        arm("α=-1.5", "adapter", -0.3, -1.0, 3.0, 0.4, alpha=-1.5, persona=None, coefficient=None),
        arm("α=+0", "adapter", 0.1, 2.0, 2.0, 0.0, alpha=0.0, persona=None, coefficient=None),
        arm("α=+2", "adapter", 0.5, 3.0, 2.4, 0.5, alpha=2.0, persona=None, coefficient=None),
        arm("prompt:pos", "prompt", 0.2, 2.5, 2.2, 0.1, alpha=None, persona="pos", coefficient=None),
        arm("vector:c=-3", "vector", 0.0, 1.5, 3.2, 0.5, alpha=None, persona=None, coefficient=-3.0),
        arm("vector:c=+4", "vector", 0.15, 2.1, 4.0, 0.5, alpha=None, persona=None, coefficient=4.0),
    ],
    "vector": {
        "layer": 15,
        "n_layers": 30,
        "rule": "middle",
        "pairs": "curated.jsonl",
        "equal_kl": {
            "target_kl": 1.0,
            "quantile": 0.95,
            "alpha_plus": 2.0,
            "alpha_minus": -1.5,
            "c_plus": 4.0,
            "c_minus": -3.0,
            "kl_alpha_plus": 1.01,
            "kl_alpha_minus": 0.99,
            "kl_c_plus": 1.0,
            "kl_c_minus": 1.02,
        },
    },
    "probe": {"suite": "honesty", "items": 40, "spearman_vs_trait": {"rho": 0.9, "p": 0.01, "n": 6}},
}


def test_equal_kl_rows_put_adapter_vector_and_prompt_side_by_side_against_the_base():
    header, rows = equal_kl_rows(SUMMARY)
    assert header[1:] == ["arm", "p95 KL (calibration)", "KL to base", "Δ PLR", "Δ probe", "perplexity ratio"]
    by_arm = {row[1]: row for row in rows}
    assert [row[1] for row in rows] == ["α=+2", "vector:c=+4", "prompt:pos", "α=-1.5", "vector:c=-3"]  # no prompt:neg
    assert by_arm["α=+2"] == ["pos", "α=+2", "1.01", "0.5", "+0.4", "+1", "×1.2"]
    assert by_arm["vector:c=+4"] == ["pos", "vector:c=+4", "1", "0.5", "+0.05", "+0.1", "×2"]
    assert by_arm["vector:c=-3"][4:] == ["-0.1", "-0.5", "×1.6"]
    assert by_arm["prompt:pos"][2] == "–"


def test_report_has_the_section_only_with_vector_arms():
    report = render_markdown(SUMMARY, [])
    assert "## Adapter, vector and prompt at equal KL" in report and "| vector:c=+4 |" in report
    assert "decoder block 15 of 30 (rule: middle)" in report and "Spearman ρ over arm means = 0.900" in report
    plain = {**SUMMARY, "arms": SUMMARY["arms"][:4], "vector": None, "probe": None}
    assert "equal KL" not in render_markdown(plain, [])
