"""The shared prompt-file loader: versions follow the bytes, unknown names list the known ones, a bad file is
a ConfigError naming it (each service's own checks are tested with the service)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.core.errors import ConfigError
from services.core.prompts import load_prompt_file


def build(data: dict[str, Any], version: str) -> tuple[str, str]:
    return str(data["text"]).format(query="q"), version


def test_the_version_is_the_name_and_a_hash_of_the_bytes(tmp_path: Path) -> None:
    (tmp_path / "p_v1.toml").write_text('text = "find {query}"\n')
    text, first = load_prompt_file(tmp_path, "p_v1", "prompt", build)
    assert text == "find q" and first.startswith("p_v1@") and len(first) == len("p_v1@") + 8
    (tmp_path / "p_v1.toml").write_text('text = "find {query}"  # edited\n')
    assert load_prompt_file(tmp_path, "p_v1", "prompt", build)[1] != first


def test_unknown_and_malformed_files_are_config_errors(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('text = "{query}"\n')
    (tmp_path / "bad.toml").write_text('text = "{nope}"\n')
    (tmp_path / "broken.toml").write_text("text = \n")
    with pytest.raises(ConfigError, match=r"^unknown judge prompt 'zz'; available: a, bad, broken$"):
        load_prompt_file(tmp_path, "zz", "judge prompt", build)
    with pytest.raises(ConfigError, match=r"^prompt bad.toml is malformed: KeyError\('nope'\)$"):
        load_prompt_file(tmp_path, "bad", "prompt", build)
    with pytest.raises(ConfigError, match=r"^prompt broken.toml is malformed"):
        load_prompt_file(tmp_path, "broken", "prompt", build)
