"""GET /debug: the interactive debugging page (only when TAILSYNTH_GATEWAY_DEBUG_PAGE is on)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

router = APIRouter()


@cache
def _page() -> str:
    return resources.files("services.gateway").joinpath("static/debug.html").read_text(encoding="utf-8")


@router.get("/debug", response_class=HTMLResponse, include_in_schema=False)
async def debug_page() -> HTMLResponse:
    """One query at a time, each stage shown as it arrives; `?q=...&n=...&k=...` is a permalink."""
    return HTMLResponse(_page(), headers={"Cache-Control": "no-cache"})
