"""The sweep report: Markdown + self-contained HTML that renders with its plots in headless Chromium."""

import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from wsteer.eval.report import render_markdown, write_report

from wsteer.textstats import persona_terms

ALPHAS = [-2.0, -1.0, 0.0, 1.0, 2.0]
TERMS = persona_terms("honest", "dishonest")


def stats(mean, half=0.1, n=8):
    return {"mean": mean, "lo": mean - half, "hi": mean + half, "n": n}


def synthetic_sweep():
    arms = [
        {
            "name": f"α={a:+g}",
            "kind": "adapter",
            "alpha": a,
            "persona": None,
            "metrics": {"plr": stats(0.1 * a), "tokens": stats(40 + a), "refusal": stats(0.0, 0.0)},
        }
        for a in ALPHAS
    ]
    arms += [
        {
            "name": f"prompt:{p}",
            "kind": "prompt",
            "alpha": None,
            "persona": p,
            "metrics": {"plr": stats(v), "tokens": stats(41), "refusal": stats(0.0, 0.0)},
        }
        for p, v in (("pos", 0.25), ("neg", -0.25), ("none", 0.0))
    ]
    summary = {
        "pair": {"pos": "honest", "neg": "dishonest", "template": "Pretend you're a {persona} person."},
        "adapter": "runs/x/adapter",
        "model": "smollm2-135m",
        "n_prompts": 2,
        "samples_per_prompt": 1,
        "arms": arms,
        "dose_response": {
            "trait": "plr",
            "spearman": {"rho": 1.0, "p": 0.0, "n": 40},
            "slopes": {"tokens": {"slope": 1.0, "std_slope": 0.2}},
            "flags": ["length moves more than the trait"],
        },
        "leak": {"filtered_rate": 0.0, "unfiltered_rate": 0.2, "n_unfiltered": 5},
    }
    generations = [
        {
            "arm": arm["name"],
            "prompt": f"Question {i} <b>?",
            "text": "As an honest person, I tell the truth. The sky is blue."
            if arm["name"] == "α=+2"
            else "The sky is blue.",
            "filtered": True,
        }
        for i in range(2)
        for arm in arms
    ]
    return summary, generations


def test_markdown_has_tables_flags_and_generations():
    summary, generations = synthetic_sweep()
    text = render_markdown(summary, generations)
    assert "Spearman ρ(trait, α) = 1.000" in text
    assert "⚠ length moves more than the trait" in text
    assert "| α=-2 | 8 | -0.2 [-0.3, -0.1]" in text
    assert text.count("### Question") == 2


def test_html_is_self_contained_and_highlights_echo(tmp_path):
    summary, generations = synthetic_sweep()
    path = write_report(tmp_path, summary, generations, TERMS)
    page = path.read_text()
    assert (tmp_path / "report.md").is_file()
    assert page.count("data:image/png;base64,") == 2
    assert not re.search(r"(src|href)=['\"]https?:", page), "the report must not load anything from the network"
    assert "<mark title='persona echo'>As an honest person, I tell the truth.</mark>" in page
    assert "Question 0 &lt;b&gt;?" in page  # prompts are escaped


def chromium_binary():
    return shutil.which("chromium") or shutil.which("chromium-browser")


def test_report_renders_with_its_plots_in_headless_chromium(tmp_path):
    browser = chromium_binary()
    if browser is None:
        if os.environ.get("WSTEER_REQUIRE_BROWSER") == "1":
            pytest.fail("chromium is required here (WSTEER_REQUIRE_BROWSER=1) but not installed")
        pytest.skip("chromium not installed (.ci/run installs it)")
    summary, generations = synthetic_sweep()
    path = write_report(tmp_path, summary, generations, TERMS)
    with tempfile.TemporaryDirectory() as profile:
        flags = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--virtual-time-budget=5000",
        ]
        dom = subprocess.run(
            [browser, *flags, "--dump-dom", Path(path).as_uri()],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        ).stdout
        shot = tmp_path / "shot.png"
        subprocess.run(
            [browser, *flags, f"--screenshot={shot}", "--window-size=1200,1600", Path(path).as_uri()],
            capture_output=True,
            timeout=120,
            check=False,
        )
    assert 'data-plots-rendered="2/2"' in dom, dom[-500:]
    assert "Steering report: honest ↔ dishonest" in dom
    from PIL import Image

    image = Image.open(shot).convert("L")
    assert len(set(image.getdata())) > 20, "the screenshot is blank"


def test_report_renders_a_summary_read_back_from_json_where_nan_became_null(tmp_path):
    import json
    import math

    summary, generations = synthetic_sweep()
    summary["dose_response"]["slopes"]["refusal"] = {"slope": math.nan, "std_slope": math.nan}
    summary["leak"]["unfiltered_rate"] = math.nan
    summary["arms"][0]["metrics"]["tokens"] = {"mean": 40.0, "lo": math.nan, "hi": math.nan, "n": 1}
    (tmp_path / "summary.json").write_text(json.dumps(summary).replace("NaN", "null"))
    read_back = json.loads((tmp_path / "summary.json").read_text())
    text = render_markdown(read_back, generations)
    assert "refusal: slope n/a per unit α, standardised n/a" in text
    assert "40 [n/a, n/a]" in text and "n/a without it" in text
    write_report(tmp_path, read_back, generations, TERMS)


def test_markdown_legend_says_what_higher_means_for_every_column():
    summary, generations = synthetic_sweep()
    text = render_markdown(summary, generations)
    header = next(line for line in text.splitlines() if line.startswith("| arm | n |"))
    legend = next(line for line in text.splitlines() if line.startswith("Higher means: "))
    columns = [c.strip() for c in header.strip("|").split("|")][2:]
    assert columns and all(f"{c} (" in legend for c in columns)
    assert "plr (trait: persona log-likelihood ratio (pos − neg)): reads more like pos" in legend
