"""A product as a directory of YAML files, and the same files read from a server.

Layout (every path relative to the directory)::

    product.yaml              slug, name, description
    environments.yaml         environments: {slug: {name, order, is_production, allowed_hosts}}
    components/<tag>.yaml     kind, name, description, events,
                              environments: {slug: {config, variables, constants, secrets}}
    workflows/<tag>.yaml      name, description, source, spec (the draft, else the latest
                              published version)
    activations.yaml          activations: {workflow: {env: {active, version?}}}

Secrets appear as their names only: their values never leave the server. ``version`` in an
activation is there only when the version is pinned. A directory is a mapping of these
relative paths to their data ("files"), which is what the diff compares.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from runtime.cli import yamlio
from runtime.cli.client import Client, seg

ENV_FIELDS = ("name", "order", "is_production", "allowed_hosts")
PRODUCT_FILE = "product.yaml"
ENVIRONMENTS_FILE = "environments.yaml"
ACTIVATIONS_FILE = "activations.yaml"

Files = dict[str, Any]


def server_files(client: Client, product: str) -> Files | None:
    """The product on the server as files; None when it does not exist (or is hidden)."""
    base = f"products/{seg(product)}/"
    found = client.get(base, ok_missing=True)
    if found is None:
        return None
    files: Files = {
        PRODUCT_FILE: {k: found[k] for k in ("slug", "name", "description")},
    }
    environments = client.get(base + "environments/")
    env_slugs = [e["slug"] for e in environments]
    files[ENVIRONMENTS_FILE] = {
        "environments": {e["slug"]: {k: e[k] for k in ENV_FIELDS} for e in environments}
    }
    for component in client.get(base + "components/"):
        tag = component["tag"]
        configs = {}
        for env in env_slugs:
            row = client.get(f"{base}components/{seg(tag)}/config/{seg(env)}")
            configs[env] = {
                "config": row["config"],
                "variables": row["variables"],
                "constants": row["constants"],
                "secrets": sorted(row["secrets"]),
            }
        files[f"components/{tag}.yaml"] = {
            **{k: component[k] for k in ("tag", "kind", "name", "description", "events")},
            "environments": configs,
        }
    activations: dict[str, Any] = {}
    for workflow in client.get(base + "workflows/"):
        tag = workflow["tag"]
        files[f"workflows/{tag}.yaml"] = _workflow_file(client, base, workflow)
        activations[tag] = {
            row["env"]: {
                "active": row["active"],
                **({"version": row["version"]} if row["pinned"] else {}),
            }
            for row in workflow["activations"]
        }
    files[ACTIVATIONS_FILE] = {"activations": activations}
    return files


def _workflow_file(client: Client, base: str, workflow: dict[str, Any]) -> dict[str, Any]:
    spec = workflow.get("draft")
    if spec is None and workflow.get("latest_version"):
        path = f"{base}workflows/{seg(workflow['tag'])}/versions/{workflow['latest_version']}/"
        spec = client.get(path)["spec"]
    out = {k: workflow[k] for k in ("tag", "name", "description")}
    if workflow.get("source") and workflow["source"] != "canvas":
        out["source"] = workflow["source"]  # code-first: changed in code, not pushed
    out["spec"] = spec or {}
    return out


def files_write(directory: Path, files: Files) -> list[Path]:
    """Write the files; a workflow or component file the product no longer has is removed,
    so the directory mirrors the server (test files and anything else are left alone)."""
    written = []
    for relative, data in sorted(files.items()):
        path = directory / relative
        yamlio.write(path, data)
        written.append(path)
    for folder in ("components", "workflows"):
        for stale in sorted((directory / folder).glob("*.yaml")):
            if f"{folder}/{stale.name}" not in files:
                stale.unlink()
    return written


def files_read(directory: Path) -> tuple[Files, dict[str, yamlio.Document]]:
    """The product files of a directory (and their documents, for line numbers)."""
    documents: dict[str, yamlio.Document] = {}
    for name in (PRODUCT_FILE, ENVIRONMENTS_FILE, ACTIVATIONS_FILE):
        if (directory / name).exists():
            documents[name] = yamlio.Document(directory / name)
    for folder in ("components", "workflows"):
        for path in sorted((directory / folder).glob("*.yaml")):
            documents[f"{folder}/{path.name}"] = yamlio.Document(path)
    return {name: doc.data for name, doc in documents.items()}, documents


def tag_of(relative: str) -> str:
    return Path(relative).stem
