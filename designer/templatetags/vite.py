"""``{% vite_assets %}``: the script and stylesheet tags of the built frontend.

Vite writes hashed file names into ``frontend/dist/.vite/manifest.json``; this tag reads
it (again whenever the file changes) so templates never hard-code a hash.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django import template
from django.conf import settings
from django.templatetags.static import static
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

register = template.Library()

# frontend/dist, unless the settings name another build (the tests' canvas benchmark).
DIST_DIR: Path = Path(
    getattr(settings, "TRELLIS_FRONTEND_DIST", Path(settings.BASE_DIR) / "frontend" / "dist")
)
_cache: dict[str, Any] = {"mtime": None, "manifest": None}


def manifest() -> dict[str, Any] | None:
    """The Vite manifest, or None when the frontend has not been built."""
    path = DIST_DIR / ".vite" / "manifest.json"
    try:
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    if _cache["mtime"] != mtime or _cache.get("path") != path:
        _cache.update(mtime=mtime, path=path, manifest=json.loads(path.read_text()))
    data: dict[str, Any] = _cache["manifest"]
    return data


@register.simple_tag
def vite_assets(entry: str = "src/main.tsx") -> SafeString:
    data = manifest()
    chunk = data.get(entry) if data else None
    if not chunk:
        return format_html(
            '<div class="build-missing">The frontend is not built: run <code>{}</code>.</div>',
            "make frontend",
        )
    styles = format_html_join(
        "", '<link rel="stylesheet" href="{}">', ((static(css),) for css in chunk.get("css", []))
    )
    script = format_html('<script type="module" src="{}"></script>', static(chunk["file"]))
    return format_html("{}{}", styles, script)
