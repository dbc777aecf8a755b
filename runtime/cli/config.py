"""Server profiles: where ``trellis login`` keeps a server's URL and API token.

One JSON file in the user's config directory (``typer.get_app_dir``: on Linux
``$XDG_CONFIG_HOME/trellis``), readable by its owner only (0600): it holds tokens.
``TRELLIS_URL`` and ``TRELLIS_TOKEN`` override the stored profile (CI sets them).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

DEFAULT_PROFILE = "default"


class NotLoggedIn(Exception):
    pass


@dataclass(frozen=True)
class Profile:
    name: str
    url: str
    token: str


def config_path() -> Path:
    return Path(typer.get_app_dir("trellis")) / "config.json"


def _read() -> dict[str, Any]:
    path = config_path()
    if not path.exists():
        return {"profiles": {}}
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or not isinstance(data.get("profiles"), dict):
        return {"profiles": {}}
    return data


def _write(data: dict[str, Any]) -> None:
    path = config_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Created 0600 from the start (no window where another user could read a token),
    # and chmod'ed in case an older, wider file was there.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(data, out, indent=2, sort_keys=True)
        out.write("\n")
    path.chmod(0o600)


def profile_save(name: str, url: str, token: str) -> Path:
    data = _read()
    data["profiles"][name] = {"url": url.rstrip("/"), "token": token}
    _write(data)
    return config_path()


def profile_remove(name: str) -> bool:
    data = _read()
    if data["profiles"].pop(name, None) is None:
        return False
    _write(data)
    return True


def profile_get(name: str | None = None) -> Profile:
    """The profile to use: TRELLIS_URL/TRELLIS_TOKEN win over what is stored."""
    name = name or os.environ.get("TRELLIS_PROFILE") or DEFAULT_PROFILE
    stored = _read()["profiles"].get(name) or {}
    url = os.environ.get("TRELLIS_URL") or stored.get("url") or ""
    token = os.environ.get("TRELLIS_TOKEN") or stored.get("token") or ""
    if not url or not token:
        raise NotLoggedIn(
            f"no server for profile {name!r}: run `trellis login URL` "
            "or set TRELLIS_URL and TRELLIS_TOKEN"
        )
    return Profile(name=name, url=url.rstrip("/"), token=token)
