"""The LLM second opinion against a fake OpenAI-compatible server on localhost; the key never leaks."""

import json

import pytest
from fake_llm import FakeChatServer as FakeServer
from wsteer.pairs.lint import lint_pair
from wsteer.pairs.second_opinion import SecondOpinionConfig, add_second_opinions, parse_verdict

from wsteer.errors import WsteerError
from wsteer.llm import ask_local

SECRET = "sk-test-DO-NOT-LEAK-4242"
KEY_ENV = "WSTEER_TEST_SECOND_OPINION_KEY"


def mirror_verdict(body: dict) -> str:
    """'fail' for pairs mentioning vim, 'pass' otherwise."""
    if "vim" in body["messages"][-1]["content"]:
        return json.dumps(
            {
                "verdict": "fail",
                "unmirrored": ["because modal editing is faster"],
                "reason": "the two rationales differ",
            }
        )
    return json.dumps({"verdict": "pass", "unmirrored": [], "reason": "only the pole flips"})


def FakeChatServer(echo_key: bool = False, status: int = 200) -> FakeServer:
    """The fake server answering the mirror test."""
    return FakeServer(mirror_verdict, echo_key=echo_key, status=status)


@pytest.fixture
def key(monkeypatch):
    monkeypatch.setenv(KEY_ENV, SECRET)
    return SECRET


def _config_file(tmp_path, url):
    path = tmp_path / "second.yaml"
    path.write_text(f"backend: openai\nbase_url: {url}\nmodel: fake-judge\napi_key_env: {KEY_ENV}\n")
    return path


def test_second_opinion_adds_finding_on_fail_and_sends_key_as_bearer(key):
    reports = [
        lint_pair("prefers vim because modal editing is faster", "prefers emacs because one scheme is simpler"),
        lint_pair("honest", "dishonest"),
    ]
    with FakeChatServer() as server:
        add_second_opinions(reports, SecondOpinionConfig(base_url=server.url, model="fake-judge", api_key_env=KEY_ENV))
    assert [r["path"] for r in server.requests] == ["/v1/chat/completions"] * 2
    assert all(r["auth"] == f"Bearer {SECRET}" for r in server.requests)
    assert server.requests[0]["body"]["model"] == "fake-judge"
    failed, passed = reports
    assert failed.second_opinion["verdict"] == "fail" and "second-opinion" in failed.rules
    assert passed.second_opinion["verdict"] == "pass" and not passed.findings


def test_cli_with_second_opinion_never_writes_the_key(cli, tmp_path, key):
    with FakeChatServer(echo_key=True) as server:
        config = _config_file(tmp_path, server.url)
        result = cli("pairs", "lint", "pos=honest", "neg=dishonest", "json=true", f"second_opinion={config}")
    assert server.requests and server.requests[0]["auth"] == f"Bearer {SECRET}"
    assert result.code == 0, result
    data = json.loads(result.out)
    assert data["pairs"][0]["second_opinion"]["verdict"] == "pass"
    assert SECRET not in result.out and SECRET not in result.err
    assert SECRET not in config.read_text()
    assert "[redacted]" in data["pairs"][0]["second_opinion"]["raw"]


def test_second_opinion_error_severity_fails_the_lint(cli, tmp_path, key):
    with FakeChatServer() as server:
        config = _config_file(tmp_path, server.url)
        config.write_text(config.read_text() + "severity: error\n")
        result = cli("pairs", "lint", "pos=prefers vim", "neg=prefers emacs", f"second_opinion={config}")
    assert result.code == 1 and "second-opinion" in result.out and SECRET not in result.out


def test_http_error_is_one_line_without_the_key(cli, tmp_path, key):
    with FakeChatServer(status=401) as server:
        result = cli(
            "pairs", "lint", "pos=honest", "neg=dishonest", f"second_opinion={_config_file(tmp_path, server.url)}"
        )
    assert result.code == 2 and "HTTP 401" in result.err and SECRET not in result.err + result.out


def test_missing_key_variable_names_the_variable_only(monkeypatch):
    monkeypatch.delenv(KEY_ENV, raising=False)
    with pytest.raises(WsteerError, match=KEY_ENV):
        add_second_opinions(
            [lint_pair("honest", "dishonest")],
            SecondOpinionConfig(base_url="http://127.0.0.1:9/v1", api_key_env=KEY_ENV),
        )


@pytest.mark.parametrize(
    "reply, verdict",
    [
        ('Sure! {"verdict": "FAIL", "unmirrored": ["x"], "reason": "r"}', "fail"),
        ('{"verdict": "pass"}', "pass"),
        ("The pair should pass.", "pass"),
        ("I cannot tell whether this should pass or fail.", "unclear"),
        ("", "unclear"),
    ],
)
def test_parse_verdict(reply, verdict):
    assert parse_verdict(reply)["verdict"] == verdict


def test_local_backend_runs_through_the_shared_generator(tiny):
    model, tokenizer = tiny
    cfg = SecondOpinionConfig(backend="hf", max_tokens=4)
    replies = ask_local([[{"role": "user", "content": "hi"}]], cfg, model, tokenizer)
    assert len(replies) == 1 and isinstance(replies[0], str)
    report = lint_pair("honest", "dishonest")
    add_second_opinions([report], cfg, model, tokenizer)  # a random tiny model gives no readable verdict
    assert report.second_opinion["source"].startswith("hf:") and report.second_opinion["verdict"] in (
        "unclear",
        "pass",
        "fail",
    )
