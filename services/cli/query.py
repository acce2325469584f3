"""`synth query`: one query through the running gateway (POST /v1/synthesize over HTTP), its result shown
stage by stage."""

from __future__ import annotations

import json
from typing import Any

import httpx


def _bar(value: float, width: int = 10) -> str:
    filled = round(max(0.0, min(1.0, value)) * width)
    return "#" * filled + "." * (width - filled)


def render(result: dict[str, Any], show_rejected: int = 5) -> str:
    lines = [
        f"query: {result['query']!r}   pipeline {result['pipeline_version']}   cached: {result['cached']}",
        "",
    ]
    lines.append(f"rewrites ({len(result['rewrites'])}):")
    for r in result["rewrites"]:
        rw = r["rewards"]
        mark = "+" if r["accepted"] else "-"
        lines.append(
            f"  {r['rank']:>2} {mark} {r['text']!r:<40} [{r['source']}] reward {r['reward']:.2f}: "
            f"relevance {rw['relevance']:.2f} increment {rw['increment']:.2f} "
            f"alignment {rw['alignment']:.2f} diversity {rw['diversity']:.2f}"
        )
        if not r["accepted"]:
            lines.append(f"      rejected: {r['reason']}")
    for f in result.get("diagnostics", {}).get("rewriter_failures", []):
        lines.append(f"  ! engine {f['engine']} failed: {f['error']}")
    for d in result.get("dropped_candidates", []):
        lines.append(f"  x {d['text'][:60]!r}: dropped ({d['reason']})")
    accepted = [p for p in result["pairs"] if p["accepted"]]
    rejected = [p for p in result["pairs"] if not p["accepted"]]
    lines += ["", f"products: {len(result['pairs'])} judged, {len(accepted)} accepted"]
    for p in accepted + rejected[:show_rejected]:
        mark = "ACCEPT" if p["accepted"] else "reject"
        by = "query" if p["found_by_query"] else "rewrite"
        extra = f" (+{len(p['retrieved_by']) - 1})" if len(p["retrieved_by"]) > 1 else ""
        lines.append(
            f"  {mark} {_bar(p['score'])} {p['score']:.2f} {p['label']:<10} {p['title'][:60]:<60} via {by}{extra}"
        )
        if not p["accepted"]:
            lines.append(f"         {p['reason']}")
    if len(rejected) > show_rejected:
        lines.append(f"  ... {len(rejected) - show_rejected} more rejected")
    lines += ["", "timings (ms): " + ", ".join(f"{k} {v:.0f}" for k, v in result["timings_ms"].items())]
    return "\n".join(lines)


def run_query(
    url: str,
    query: str,
    num_rewrites: int,
    top_k: int,
    use_cache: bool,
    as_json: bool,
    api_key: str | None = None,
) -> int:
    body = {"query": query, "num_rewrites": num_rewrites, "top_k": top_k, "use_cache": use_cache}
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        response = httpx.post(f"{url.rstrip('/')}/v1/synthesize", json=body, headers=headers, timeout=300)
    except httpx.HTTPError as error:
        print(f"cannot reach the gateway at {url}: {error}. Is `synth up` running?")
        return 2
    if response.status_code != 200:
        print(f"error {response.status_code}: {response.text}")
        return 1
    print(json.dumps(response.json(), indent=2) if as_json else render(response.json()))
    return 0
