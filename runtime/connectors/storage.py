"""STORAGE: upload, download and delete files through Django storage backends.

A storage component declares its operations (``Component.events``)::

    {"upload-invoice": {"op": "upload", "prefix": "invoices/", "max_bytes": 5242880,
                        "content_types": ["application/pdf"], "overwrite": true},
     "get-template":   {"op": "download"},
     "cleanup":        {"op": "delete"}}

(an event named ``upload``/``download``/``delete`` needs no declaration). Each environment
picks a backend (``Component.config``)::

    {"backend": "filesystem"}                       # default
    {"backend": "s3", "bucket": "invoices", "endpoint_url": "https://s3.example.com",
     "region": "eu-west-1", "access_key_secret": "s3_key", "secret_key_secret": "s3_secret",
     "prefix": "prd/", "signed_urls": true, "url_expiry": 3600}

The file system backend keeps files under ``MEDIA_ROOT/<product>/<env>/<storage tag>/``
and nowhere else (a key with ``..`` or an absolute path is refused). The S3 backend uses
django-storages (any S3-compatible endpoint; the endpoint host is held to the
environment's allow-list).

Inputs, as in the seed: upload ``{buffer | content_base64 (base64) | text, fileName |
file_key, mimeType}`` → ``{url, file_key, size, content_type}``; download ``{file_key}`` →
``{content (base64), size, file_key, content_type}``; delete ``{file_key}`` →
``{deleted, file_key}``. Uploads overwrite a file of the same key (so a retried step does
not leave copies) unless the operation says ``"overwrite": false``.
"""

from __future__ import annotations

import base64
import binascii
import mimetypes
import threading
from pathlib import Path, PurePosixPath
from typing import Any

from django.conf import settings
from django.core.exceptions import SuspiciousFileOperation
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage

from designer.models import Product
from runtime.component_configs import StorageConfig, config_of
from runtime.connectors.call import Component, ConnectorCall
from runtime.errors import StepError
from runtime.http import host_check

OPS = {"upload", "download", "delete"}
DEFAULT_MAX_BYTES = 10 * 1024 * 1024


def storage_run(call: ConnectorCall) -> Any:
    """Run one storage operation in the call's environment."""
    component = call.component
    if component is None:
        raise StepError(f"STORAGE '{call.event}' needs a storage component", retryable=False)
    name = call.event.split(":", 1)[1] if ":" in call.event else call.event
    declared = component.events.get(name)
    operation: dict[str, Any] = declared if isinstance(declared, dict) else {}
    op = str(operation.get("op") or name)
    if op not in OPS:
        raise StepError(
            f"storage '{component.tag}' has no operation '{name}' (declare op: upload, "
            "download or delete)",
            retryable=False,
        )
    data = call.input if isinstance(call.input, dict) else {}
    config = config_of(StorageConfig, component.config)
    storage = storage_for(call, component, config)
    max_bytes = int(operation.get("max_bytes") or config.max_bytes or DEFAULT_MAX_BYTES)
    try:
        if op == "upload":
            return _upload(storage, operation, data, max_bytes)
        key = _key(data.get("file_key") or data.get("fileName") or data.get("file_name"))
        if op == "download":
            return _download(storage, key, max_bytes)
        existed = storage.exists(key)
        if existed:
            storage.delete(key)
        return {"deleted": existed, "file_key": key}
    except SuspiciousFileOperation as exc:
        raise StepError(f"refused file key: {exc}", retryable=False) from exc
    except StepError:
        raise
    except OSError as exc:
        raise StepError(f"storage '{component.tag}': {exc}", retryable=True) from exc
    except Exception as exc:
        # Backend errors (botocore's ClientError, connection errors) vary by backend:
        # name them, and let a retry try again.
        raise StepError(
            f"storage '{component.tag}': {type(exc).__name__}: {str(exc)[:300]}", retryable=True
        ) from exc


def _key(raw: Any) -> str:
    if not raw or not isinstance(raw, str):
        raise StepError("give input.file_key", retryable=False)
    path = PurePosixPath(raw.replace("\\", "/"))
    if path.is_absolute() or ".." in path.parts or raw.strip() != raw or "\x00" in raw:
        raise StepError(f"refused file key {raw!r}", retryable=False)
    key = str(path).lstrip("/")
    if key in {"", "."}:
        raise StepError(f"refused file key {raw!r}", retryable=False)
    return key


def _content(data: dict[str, Any]) -> bytes:
    for field in ("buffer", "content_base64", "content"):
        value = data.get(field)
        if value is None:
            continue
        if isinstance(value, bytes | bytearray):
            return bytes(value)
        if isinstance(value, list) and all(isinstance(b, int) for b in value):
            try:
                return bytes(value)  # a Node Buffer serialised as a list of bytes
            except ValueError as exc:
                raise StepError(f"input.{field} is not a list of bytes", retryable=False) from exc
        if isinstance(value, str):
            try:
                return base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise StepError(f"input.{field} must be base64", retryable=False) from exc
    if isinstance(data.get("text"), str):
        return str(data["text"]).encode()
    raise StepError("an upload needs input.buffer (base64) or input.text", retryable=False)


def _upload(
    storage: Storage, operation: dict[str, Any], data: dict[str, Any], max_bytes: int
) -> dict[str, Any]:
    content = _content(data)
    if len(content) > max_bytes:
        raise StepError(
            f"the file is larger than the {max_bytes}-byte limit ({len(content)} bytes)",
            retryable=False,
        )
    name = _key(data.get("file_key") or data.get("fileName") or data.get("file_name"))
    prefix = str(operation.get("prefix") or "")
    key = _key(f"{prefix.rstrip('/')}/{name}" if prefix else name)
    content_type = (
        str(data.get("mimeType") or data.get("content_type") or mimetypes.guess_type(key)[0] or "")
        or "application/octet-stream"
    )
    allowed = operation.get("content_types")
    if isinstance(allowed, list) and allowed and content_type not in allowed:
        raise StepError(
            f"content type {content_type!r} is not allowed ({', '.join(map(str, allowed))})",
            retryable=False,
        )
    if operation.get("overwrite", True) and storage.exists(key):
        storage.delete(key)
    file = ContentFile(content, name=key)
    file.content_type = content_type  # type: ignore[attr-defined]  # read by S3Storage
    saved = storage.save(key, file)
    return {
        "url": storage.url(saved),
        "file_key": saved,
        "size": len(content),
        "content_type": content_type,
    }


def _download(storage: Storage, key: str, max_bytes: int) -> dict[str, Any]:
    if not storage.exists(key):
        raise StepError(f"no file {key!r}", retryable=False)
    size = storage.size(key)
    if size > max_bytes:
        raise StepError(
            f"the file is larger than the {max_bytes}-byte limit ({size} bytes)", retryable=False
        )
    with storage.open(key, "rb") as fh:
        content = fh.read(max_bytes + 1)
    if len(content) > max_bytes:
        raise StepError(f"the file is larger than the {max_bytes}-byte limit", retryable=False)
    return {
        "content": base64.b64encode(content).decode(),
        "size": len(content),
        "file_key": key,
        "content_type": mimetypes.guess_type(key)[0] or "application/octet-stream",
    }


# --- Backends --------------------------------------------------------------------------

_slugs: dict[int, str] = {}
_slugs_lock = threading.Lock()


def product_slug(product_id: int | None) -> str:
    if product_id is None:
        return "_"
    with _slugs_lock:
        if product_id in _slugs:
            return _slugs[product_id]
    slug = Product.objects.filter(pk=product_id).values_list("slug", flat=True).first()
    value = slug or str(product_id)
    with _slugs_lock:
        _slugs[product_id] = value
    return value


def storage_for(call: ConnectorCall, component: Component, config: StorageConfig) -> Storage:
    """The Django storage a component uses in the call's environment (``config``: the
    component's config there)."""
    backend = config.backend or "filesystem"
    if backend in {"filesystem", "file", "local"}:
        parts = [product_slug(call.product_id), call.environment or "_", component.tag]
        for part in parts:
            if "/" in part or part.startswith("."):
                raise StepError(f"bad storage path part {part!r}", retryable=False)
        root = Path(settings.MEDIA_ROOT).joinpath(*parts)
        media_url = str(getattr(settings, "MEDIA_URL", "/media/") or "/media/")
        return FileSystemStorage(
            location=str(root), base_url=media_url.rstrip("/") + "/" + "/".join(parts) + "/"
        )
    if backend == "s3":
        return _s3(call, component, config)
    raise StepError(
        f"storage '{component.tag}': unknown backend {backend!r} (filesystem or s3)",
        retryable=False,
    )


def _s3(call: ConnectorCall, component: Component, config: StorageConfig) -> Storage:
    try:
        from storages.backends.s3 import S3Storage
    except ImportError as exc:  # pragma: no cover - installed with Trellis
        raise StepError("the s3 backend needs django-storages[s3]", retryable=False) from exc
    endpoint = config.endpoint_url
    # Checked (not pinned: botocore opens its own connections) against the environment's
    # rule; the endpoint comes from admin-held config only.
    if endpoint:
        host_check(str(endpoint), call.policy)
    else:
        region = config.region or "us-east-1"
        host_check(f"https://s3.{region}.amazonaws.com", call.policy)
    if not config.bucket:
        raise StepError(f"storage '{component.tag}' has no bucket configured", retryable=False)

    def secret(name: Any) -> str | None:
        if not name:
            return None
        value = component.secrets.get(str(name))
        if not value:
            raise StepError(
                f"secret '{name}' of storage '{component.tag}' is not set", retryable=False
            )
        return value

    timeout = call.timeout_s or 30.0
    from botocore.config import Config

    storage: Storage = S3Storage(
        bucket_name=str(config.bucket),
        endpoint_url=str(endpoint) if endpoint else None,
        region_name=config.region,
        access_key=secret(config.access_key_secret),
        secret_key=secret(config.secret_key_secret),
        location=config.prefix,
        file_overwrite=True,
        querystring_auth=bool(config.signed_urls),
        querystring_expire=int(config.url_expiry),
        default_acl=None,
        client_config=Config(
            connect_timeout=timeout,
            read_timeout=timeout,
            retries={"max_attempts": 1},  # the step's own retries decide
            s3={"addressing_style": config.addressing_style or ("path" if endpoint else "auto")},
            signature_version="s3v4",
        ),
    )
    return storage
