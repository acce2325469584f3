"""Versioned judge prompts (TOML files beside this module): a completion template and graded labels.

The model's next token after the template is read, never generated: each label must be one token and
carries a grade in [0, 1]; the judge's raw score is the expected grade under the labels' distribution.
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from services.core.errors import ConfigError

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
    path = PROMPTS_DIR / f"{name}.toml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in PROMPTS_DIR.glob("*.toml")))
        raise ConfigError(f"unknown judge prompt {name!r}; available: {known}")
    raw = path.read_bytes()
    try:
        data = tomllib.loads(raw.decode())
        prompt = JudgePrompt(
            name=str(data["name"]),
            template=str(data["template"]),
            labels=tuple(str(label) for label in data["labels"]),
            grades=tuple(float(grade) for grade in data["grades"]),
            version=f"{name}@{hashlib.sha256(raw).hexdigest()[:8]}",
        )
        prompt.render("probe", "probe")  # a bad placeholder fails here, at load, not per request
    except (KeyError, ValueError, IndexError, TypeError, tomllib.TOMLDecodeError) as error:
        raise ConfigError(f"judge prompt {path.name} is malformed: {error!r}") from None
    if len(prompt.labels) != len(prompt.grades) or len(prompt.labels) < 2:
        raise ConfigError(f"judge prompt {path.name}: give one grade per label, at least two labels")
    if not all(0.0 <= grade <= 1.0 for grade in prompt.grades) or min(prompt.grades) == max(prompt.grades):
        raise ConfigError(f"judge prompt {path.name}: grades must lie in [0, 1] and differ")
    return prompt
