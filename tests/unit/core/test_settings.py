import re
from pathlib import Path

import pytest

from services.cli.main import main as synth_main
from services.core.settings import load_settings
from services.gateway.config import GatewaySettings
from services.judge.config import JudgeSettings
from services.retriever.config import RetrieverSettings
from services.rewriter.config import RewriterSettings
from services.store.config import StoreSettings

ROOT = Path(__file__).resolve().parents[3]


def test_values_come_from_prefixed_environment_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAILSYNTH_STATE_DIR", "/srv/state")
    monkeypatch.setenv("TAILSYNTH_REWRITER_BIND", "0.0.0.0:6001")
    monkeypatch.setenv("TAILSYNTH_REDIS_URL", "redis://cache:6379/0")
    rewriter = load_settings(RewriterSettings)
    assert rewriter.bind == "0.0.0.0:6001"
    assert rewriter.state_dir == Path("/srv/state")
    assert load_settings(StoreSettings).redis_url == "redis://cache:6379/0"
    assert load_settings(GatewaySettings).redis_url == "redis://cache:6379/0"


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TAILSYNTH_RETRIEVER_BIND", "no-port"),
        ("TAILSYNTH_RETRIEVER_BIND", "host:99999"),
        ("TAILSYNTH_GATEWAY_PORT", "eighty"),
        ("TAILSYNTH_JUDGE_PRODUCT_THRESHOLD", "1.5"),
        ("TAILSYNTH_LOG_LEVEL", "LOUD"),
        ("TAILSYNTH_REWRITER_DEVICE", "tpu"),
        ("TAILSYNTH_REWRITER_PROMPT", "../../etc/passwd"),
    ],
)
def test_bad_values_name_the_variable_and_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    cls = {"RETRIEVER": RetrieverSettings, "GATEWAY": GatewaySettings, "JUDGE": JudgeSettings}.get(
        variable.split("_")[1], RewriterSettings
    )
    with pytest.raises(SystemExit) as exit_info:
        load_settings(cls)
    assert exit_info.value.code == 2
    assert variable in capsys.readouterr().err


def test_inconsistent_judge_grades_are_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TAILSYNTH_JUDGE_PARTIAL_AT", "0.9")
    monkeypatch.setenv("TAILSYNTH_JUDGE_EXACT_AT", "0.8")
    with pytest.raises(SystemExit):
        load_settings(JudgeSettings)


def test_readme_documents_every_variable(capsys: pytest.CaptureFixture[str]) -> None:
    assert synth_main(["config"]) == 0
    variables = set(re.findall(r"`(TAILSYNTH_[A-Z_]+)`", capsys.readouterr().out))
    assert len(variables) > 20
    documented = set(re.findall(r"TAILSYNTH_[A-Z_]+", (ROOT / "README.md").read_text()))
    assert sorted(variables - documented) == []
