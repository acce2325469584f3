"""Versioned judge prompts (TOML files beside this module, read by services.core.prompts): a completion
template and graded labels.

The model's next token after the template is read, never generated: each label must be one token and
carries a grade in [0, 1]; the judge's raw score is the expected grade under the labels' distribution.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from services.core.errors import ConfigError
from services.core.prompts import load_prompt_file

PROMPTS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class JudgePrompt:
    name: str
    template: str  # {query} and {text} placeholders
    labels: tuple[str, ...]
    grades: tuple[float, ...]
    version: str  # name + hash of the file: any edit gives a new version

    def render(self, query: str, text: str) -> str:
        return self.template.format(query=query, text=text)


@lru_cache(maxsize=16)
def load_judge_prompt(name: str) -> JudgePrompt:
    prompt = load_prompt_file(PROMPTS_DIR, name, "judge prompt", _prompt)
    if len(prompt.labels) != len(prompt.grades) or len(prompt.labels) < 2:
        raise ConfigError(f"judge prompt {name}.toml: give one grade per label, at least two labels")
    if not all(0.0 <= grade <= 1.0 for grade in prompt.grades) or min(prompt.grades) == max(prompt.grades):
        raise ConfigError(f"judge prompt {name}.toml: grades must lie in [0, 1] and differ")
    return prompt


def _prompt(data: dict[str, Any], version: str) -> JudgePrompt:
    prompt = JudgePrompt(
        name=str(data["name"]),
        template=str(data["template"]),
        labels=tuple(str(label) for label in data["labels"]),
        grades=tuple(float(grade) for grade in data["grades"]),
        version=version,
    )
    prompt.render("probe", "probe")  # a bad placeholder fails here, at load, not per request
    return prompt
