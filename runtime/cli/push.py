"""Apply a directory of product files to a server: what ``trellis push`` does after the
diff was shown and confirmed.

Only what differs is sent, through the ordinary API (so every permission check and audit
entry applies): the product, environments, components and their per-environment config,
workflow drafts (published with ``publish``) and, with ``activate`` only, activations.
Nothing that exists only on the server is deleted; secrets can only be removed (their
values are set in the console, never in files).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from runtime.cli.bundle import (
    ACTIVATIONS_FILE,
    ENVIRONMENTS_FILE,
    PRODUCT_FILE,
    Files,
    tag_of,
)
from runtime.cli.client import Client, seg

CONFIG_PARTS = ("config", "variables", "constants")


@dataclass
class PushResult:
    done: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


@dataclass
class Push:
    client: Client
    product: str
    local: Files
    remote: Files
    publish: bool = False
    activate: bool = False
    say: Callable[[str], None] = print
    result: PushResult = field(default_factory=PushResult)

    @property
    def base(self) -> str:
        return f"products/{seg(self.product)}/"

    def did(self, text: str) -> None:
        self.result.done.append(text)
        self.say(text)

    def run(self) -> PushResult:
        self.push_product()
        self.push_environments()
        for name in sorted(self.local):
            if name.startswith("components/"):
                self.push_component(name)
        for name in sorted(self.local):
            if name.startswith("workflows/"):
                self.push_workflow(name)
        if self.activate:
            self.push_activations()
        return self.result

    def push_product(self) -> None:
        remote = self.remote.get(PRODUCT_FILE)
        if PRODUCT_FILE not in self.local and remote is not None:
            return  # a directory of workflows only: the product is not its business
        local = self.local.get(PRODUCT_FILE) or {"slug": self.product, "name": self.product}
        fields = {k: local[k] for k in ("name", "description") if k in local}
        if remote is None:
            self.client.post("products/", {"slug": self.product, **fields})
            self.did(f"created product {self.product}")
        elif any(remote.get(k) != v for k, v in fields.items()):
            self.client.patch(self.base, fields)
            self.did(f"updated product {self.product}")

    def push_environments(self) -> None:
        local = (self.local.get(ENVIRONMENTS_FILE) or {}).get("environments") or {}
        remote = (self.remote.get(ENVIRONMENTS_FILE) or {}).get("environments") or {}
        for slug, fields in sorted(local.items(), key=lambda kv: (kv[1].get("order", 0), kv[0])):
            if slug not in remote:
                self.client.post(self.base + "environments/", {"slug": slug, **fields})
                self.did(f"created environment {slug}")
            elif remote[slug] != fields:
                changed = {k: v for k, v in fields.items() if remote[slug].get(k) != v}
                self.client.patch(f"{self.base}environments/{seg(slug)}/", changed)
                self.did(f"updated environment {slug}")

    def push_component(self, name: str) -> None:
        local = dict(self.local[name])
        remote = self.remote.get(name)
        tag = local.get("tag") or tag_of(name)
        meta = {k: local[k] for k in ("kind", "name", "description", "events") if k in local}
        if remote is None:
            self.client.post(self.base + "components/", {"tag": tag, **meta})
            self.did(f"created component {tag}")
        elif any(remote.get(k) != v for k, v in meta.items()):
            self.client.patch(f"{self.base}components/{seg(tag)}/", meta)
            self.did(f"updated component {tag}")
        remote_envs = (remote or {}).get("environments") or {}
        for env, wanted in sorted((local.get("environments") or {}).items()):
            self.push_config(tag, env, wanted, remote_envs.get(env))

    def push_config(self, tag: str, env: str, wanted: dict[str, Any], have: Any) -> None:
        have = have or {}
        body: dict[str, Any] = {
            part: wanted.get(part) or {}
            for part in CONFIG_PARTS
            if (wanted.get(part) or {}) != (have.get(part) or {})
        }
        wanted_secrets = set(wanted.get("secrets") or [])
        have_secrets = set(have.get("secrets") or [])
        gone = sorted(have_secrets - wanted_secrets)
        if gone:
            body["secrets"] = {secret: None for secret in gone}
        for secret in sorted(wanted_secrets - have_secrets):
            self.result.warnings.append(
                f"component {tag} in {env}: secret {secret} has no value on the server; "
                "set it in the console (values are never pushed from files)"
            )
        if body:
            self.client.put(f"{self.base}components/{seg(tag)}/config/{seg(env)}", body)
            self.did(f"updated component {tag} config in {env}")

    def push_workflow(self, name: str) -> None:
        local = self.local[name]
        remote = self.remote.get(name)
        tag = local.get("tag") or tag_of(name)
        path = f"{self.base}workflows/{seg(tag)}/"
        if local.get("source", "canvas") != "canvas" or (remote or {}).get("source"):
            if remote is None or remote.get("spec") != local.get("spec"):
                self.result.warnings.append(
                    f"workflow {tag} is defined in code: change the code and sync it"
                )
            return
        meta = {k: local[k] for k in ("name", "description") if k in local}
        spec = local.get("spec") or {}
        if remote is None:
            self.client.post(self.base + "workflows/", {"tag": tag, **meta, "spec": spec})
            self.did(f"created workflow {tag} (draft)")
        else:
            if any(remote.get(k) != v for k, v in meta.items()):
                self.client.patch(path, meta)
                self.did(f"updated workflow {tag}")
            if remote.get("spec") != spec:
                self.client.put(path + "draft", {"spec": spec})
                self.did(f"saved the draft of workflow {tag}")
        if self.publish:
            published = self.client.post(path + "publish", {"spec": spec, "note": "trellis push"})
            if not published.get("unchanged"):
                self.did(f"published workflow {tag} version {published['number']}")

    def push_activations(self) -> None:
        local = (self.local.get(ACTIVATIONS_FILE) or {}).get("activations") or {}
        remote = (self.remote.get(ACTIVATIONS_FILE) or {}).get("activations") or {}
        for tag, envs in sorted(local.items()):
            for env, wanted in sorted(envs.items()):
                have = (remote.get(tag) or {}).get(env) or {"active": False}
                if have == wanted:
                    continue
                body = {"active": bool(wanted.get("active")), "version": wanted.get("version")}
                self.client.put(f"{self.base}workflows/{seg(tag)}/activations/{seg(env)}", body)
                state = "active" if body["active"] else "inactive"
                self.did(f"{tag} is {state} in {env}")
