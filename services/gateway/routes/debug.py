"""GET /debug: the interactive debugging page (only when TAILSYNTH_GATEWAY_DEBUG_PAGE is on)."""

from __future__ import annotations

from functools import cache
from importlib import resources

from fastapi import APIRouter
from fastapi.responses import HTMLResponse

from services.pipeline import models

router = APIRouter()


@cache
def _page() -> str:
    """The page with the request defaults and bounds of services.pipeline.models filled in."""
    page = resources.files("services.gateway").joinpath("static/debug.html").read_text(encoding="utf-8")
    for name in ("DEFAULT_NUM_REWRITES", "MAX_NUM_REWRITES", "DEFAULT_TOP_K", "MAX_TOP_K"):
        page = page.replace("{{" + name + "}}", str(getattr(models, name)))
    return page


@router.get("/debug", response_class=HTMLResponse, include_in_schema=False)
async def debug_page() -> HTMLResponse:
    """One query at a time, each stage shown as it arrives; `?q=...&n=...&k=...` is a permalink."""
    return HTMLResponse(_page(), headers={"Cache-Control": "no-cache"})
