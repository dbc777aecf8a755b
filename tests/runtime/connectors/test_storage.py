"""STORAGE: the file system backend, and S3 against a local S3-compatible server (moto)."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.test import override_settings

from runtime.connectors import Component, ConnectorCall, execute
from runtime.errors import StepError
from runtime.spec import EventType
from tests.runtime.connectors.peers import bind_in_range

EVENTS = {
    "upload-invoice": {"op": "upload", "prefix": "invoices/", "content_types": ["application/pdf"]},
    "get-file": {"op": "download"},
    "cleanup": {"op": "delete"},
    "upload-unique": {"op": "upload", "overwrite": False},
}


@pytest.fixture
def media(tmp_path: Path) -> Iterator[Path]:
    with override_settings(MEDIA_ROOT=tmp_path, MEDIA_URL="/media/"):
        yield tmp_path


def docs(**config: Any) -> Component:
    return Component(
        kind="storage",
        tag="documents",
        events=EVENTS,
        config=config,
        secrets={"ak": "testing", "sk": "testing-secret"},
    )


def run(component: Component, event: str, input: Any, env: str = "dev", **kw: Any) -> Any:
    kw.setdefault("allowed_hosts", ("127.0.0.1",))  # real peers listen on loopback
    return execute(
        ConnectorCall(
            type=EventType.STORAGE,
            event=event,
            input=input,
            app=component.tag,
            component=component,
            environment=env,
            **kw,
        )
    )


PDF = b"%PDF-1.4 fake invoice"


def test_upload_download_delete_on_the_file_system(media: Path) -> None:
    up = run(
        docs(),
        "upload-invoice",
        {
            "buffer": base64.b64encode(PDF).decode(),
            "fileName": "invoice-7.pdf",
            "mimeType": "application/pdf",
        },
    )
    assert up == {
        "url": "/media/_/dev/documents/invoices/invoice-7.pdf",
        "file_key": "invoices/invoice-7.pdf",
        "size": len(PDF),
        "content_type": "application/pdf",
    }
    assert (media / "_" / "dev" / "documents" / "invoices" / "invoice-7.pdf").read_bytes() == PDF
    down = run(docs(), "get-file", {"file_key": "invoices/invoice-7.pdf"})
    assert base64.b64decode(down["content"]) == PDF and down["size"] == len(PDF)
    assert run(docs(), "cleanup", {"file_key": "invoices/invoice-7.pdf"}) == {
        "deleted": True,
        "file_key": "invoices/invoice-7.pdf",
    }
    assert run(docs(), "cleanup", {"file_key": "invoices/invoice-7.pdf"})["deleted"] is False
    with pytest.raises(StepError, match="no file") as err:
        run(docs(), "get-file", {"file_key": "invoices/invoice-7.pdf"})
    assert err.value.retryable is False


def test_environments_and_products_have_their_own_folders(media: Path, product: Any) -> None:
    run(docs(), "upload", {"text": "dev", "fileName": "a.txt"}, env="dev", product_id=product.pk)
    run(docs(), "upload", {"text": "prd", "fileName": "a.txt"}, env="prd", product_id=product.pk)
    assert (media / "acme" / "dev" / "documents" / "a.txt").read_text() == "dev"
    assert (media / "acme" / "prd" / "documents" / "a.txt").read_text() == "prd"


def test_a_retried_upload_overwrites_unless_told_not_to(media: Path) -> None:
    first = run(docs(), "upload", {"text": "1", "fileName": "same.txt"})
    second = run(docs(), "upload", {"text": "2", "fileName": "same.txt"})
    assert first["file_key"] == second["file_key"] == "same.txt"
    unique = run(docs(), "upload-unique", {"text": "3", "fileName": "same.txt"})
    assert unique["file_key"] != "same.txt"


@pytest.mark.parametrize("key", ["../escape.txt", "/etc/passwd", "a/../../b", "..", " a"])
def test_keys_cannot_leave_the_storage_folder(media: Path, key: str) -> None:
    with pytest.raises(StepError, match="refused file key") as err:
        run(docs(), "upload", {"text": "x", "fileName": key})
    assert err.value.retryable is False
    with pytest.raises(StepError, match="refused file key"):
        run(docs(), "get-file", {"file_key": key})
    assert not (media.parent / "escape.txt").exists()


def test_size_and_content_type_limits(media: Path) -> None:
    with pytest.raises(StepError, match="larger than the 4-byte limit"):
        run(docs(max_bytes=4), "upload", {"text": "12345", "fileName": "big.txt"})
    with pytest.raises(StepError, match="content type 'text/plain' is not allowed"):
        run(docs(), "upload-invoice", {"text": "x", "fileName": "x.txt"})
    with pytest.raises(StepError, match="must be base64"):
        run(docs(), "upload", {"buffer": "not base64!!", "fileName": "x.bin"})


# --- S3 against a local moto server ------------------------------------------------------


@pytest.fixture
def s3_server() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    def start(port: int) -> Any:
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        return server

    server = bind_in_range(start)
    port = server._server.server_port
    url = f"http://127.0.0.1:{port}"
    import boto3

    boto3.client(
        "s3",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing-secret",
    ).create_bucket(Bucket="invoices")
    yield url
    server.stop()


def test_s3_compatible_storage_round_trip(s3_server: str) -> None:
    component = docs(
        backend="s3",
        bucket="invoices",
        endpoint_url=s3_server,
        region="us-east-1",
        access_key_secret="ak",
        secret_key_secret="sk",
        prefix="prd",
    )
    up = run(
        component,
        "upload-invoice",
        {
            "buffer": base64.b64encode(PDF).decode(),
            "fileName": "i-1.pdf",
            "mimeType": "application/pdf",
        },
    )
    assert up["file_key"] == "invoices/i-1.pdf" and up["size"] == len(PDF)
    assert up["url"].startswith(s3_server + "/invoices/prd/invoices/i-1.pdf?")
    down = run(component, "get-file", {"file_key": "invoices/i-1.pdf"})
    assert base64.b64decode(down["content"]) == PDF
    assert run(component, "cleanup", {"file_key": "invoices/i-1.pdf"})["deleted"] is True
    assert "testing-secret" not in str(up)


def test_s3_endpoint_must_be_on_the_allow_list(s3_server: str) -> None:
    component = docs(
        backend="s3",
        bucket="invoices",
        endpoint_url=s3_server,
        access_key_secret="ak",
        secret_key_secret="sk",
    )
    with pytest.raises(StepError, match="loopback address: refused unless an admin lists"):
        run(component, "upload", {"text": "x", "fileName": "x"}, allowed_hosts=("s3.example.com",))


@pytest.mark.django_db
def test_the_url_of_an_upload_is_served_to_members_only(
    media: Path, product: Any, viewer_user: Any, outsider: Any
) -> None:
    from django.test import Client

    from designer.models import Product

    pdf = {"buffer": base64.b64encode(PDF).decode(), "fileName": "i-8.pdf"}
    up = run(
        docs(), "upload-invoice", {**pdf, "mimeType": "application/pdf"}, product_id=product.pk
    )
    page = run(docs(), "upload", {"text": "<script>alert(1)</script>", "fileName": "x.html"},
               product_id=product.pk)  # fmt: skip
    member, stranger, anonymous = Client(), Client(), Client()
    member.force_login(viewer_user)
    stranger.force_login(outsider)

    got = member.get(up["url"])
    assert got.status_code == 200 and b"".join(got.streaming_content) == PDF
    assert got["Content-Type"] == "application/pdf"
    assert got["Content-Security-Policy"].startswith("sandbox")
    # Anything that could run script is a download, never a page of this site.
    html = member.get(page["url"])
    assert html.status_code == 200 and html["Content-Disposition"].startswith("attachment")
    assert stranger.get(up["url"]).status_code == 404
    assert anonymous.get(up["url"]).status_code == 302  # to the login page
    # Nothing outside the product's folder, whatever the path says.
    other = Product.objects.create(slug="other", name="Other")
    (media / "other").mkdir()
    (media / "other" / "secret.txt").write_text("no")
    assert member.get("/media/acme/../other/secret.txt").status_code == 404
    assert member.get("/media/acme/dev/%2e%2e/%2e%2e/other/secret.txt").status_code == 404
    assert member.get(f"/media/{other.slug}/secret.txt").status_code == 404
    assert member.get("/media/acme/dev/documents/missing.pdf").status_code == 404
