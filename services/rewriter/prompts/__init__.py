"""Versioned rewrite prompts (TOML files beside this module, read by services.core.prompts): a system text,
few-shot turns and the user turn's template."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from services.core.prompts import load_prompt_file

PROMPTS_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class PromptTemplate:
    name: str
    system: str
    user: str
    shots: tuple[tuple[str, str], ...]
    version: str  # name + hash of the file: any edit gives a new version
    # rewrite: the user turn is a shopper's query; product: a product's text, to write shopper queries for
    task: str = "rewrite"

    def messages(self, query: str) -> list[dict[str, str]]:
        """Chat messages for one query: system, few-shot turns, then the query."""
        messages = [{"role": "system", "content": self.system}]
        for shopper, rewrite in self.shots:
            messages += [{"role": "user", "content": self.user.format(query=shopper)}]
            messages += [{"role": "assistant", "content": rewrite}]
        messages.append({"role": "user", "content": self.user.format(query=query)})
        return messages

    def text(self, query: str) -> str:
        """The same conversation as plain text, for completion (non-chat) APIs."""
        return messages_as_text(self.messages(query))


TASKS = ("rewrite", "product")
TEXT_LABELS = {"user": "Query:", "assistant": "Rewrite:"}


def messages_as_text(messages: list[dict[str, str]]) -> str:
    """System text, then one "Query:"/"Rewrite:" pair per turn, ending with an open "Rewrite:".

    A completion model continues after the last "Rewrite:"; stop it at the first newline.
    """
    parts = [m["content"].strip() + "\n" for m in messages if m["role"] == "system"]
    for message in messages:
        label = TEXT_LABELS.get(message["role"])
        if label is not None:
            parts.append(f"{label} {message['content'].strip()}")
    return "\n".join(parts) + f"\n{TEXT_LABELS['assistant']}"


@lru_cache(maxsize=16)
def load_prompt(name: str) -> PromptTemplate:
    return load_prompt_file(PROMPTS_DIR, name, "prompt", _template)


def _template(data: dict[str, Any], version: str) -> PromptTemplate:
    template = PromptTemplate(
        name=str(data["name"]),
        system=str(data["system"]),
        user=str(data.get("user", "{query}")),
        shots=tuple((str(a), str(b)) for a, b in data.get("shots", [])),
        version=version,
        task=str(data.get("task", "rewrite")),
    )
    if template.task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, not {template.task!r}")
    template.messages("probe")  # a bad placeholder fails here, at load, not per request
    return template
