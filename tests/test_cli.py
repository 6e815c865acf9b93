import pytest
from conftest import run_module


def test_every_stage_has_a_subcommand(cli, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli("--help")
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for verb in ("pairs", "templates", "train", "adapters", "eval", "demo"):
        assert verb in out


@pytest.mark.parametrize("stage", ["train", "adapters", "eval", "pairs"])
def test_python_m_stage_runs_the_same_cli(stage):
    result = run_module("-m", f"wsteer.{stage}", "--help", timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"wsteer {stage}" in result.stdout


def test_unknown_config_key_exits_nonzero_with_key_file_and_suggestion(cli, tmp_path):
    config = tmp_path / "demo.yaml"
    config.write_text("model:\n  name: smollm2-135m\nrun_dri: x\n")
    result = cli("demo", "--config", config)
    assert result.code != 0
    assert f"{config}:3" in result.err and "'run_dri'" in result.err and "'run_dir'" in result.err
    assert "Traceback" not in result.err


def test_bad_override_is_one_line(cli):
    result = cli("demo", "generate.sampling.temperature=hot")
    assert result.code == 2
    assert result.err.count("\n") == 1 and "generate.sampling.temperature must be a number" in result.err
