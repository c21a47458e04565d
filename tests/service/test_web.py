"""The pages browsers open, served from the package: the dashboard at `/`, GraphiQL at
`/graphql`, their assets and their Content-Security-Policy (the browser tests in tests/web
drive them in Chromium)."""

import base64
import hashlib
import json
import re

import httpx
import pytest

from api.web import STATIC
from tests.conftest import make_settings
from tests.service.test_security import serving

VENDOR = STATIC / "vendor"
HTML = {"Accept": "text/html"}


def policy(response: httpx.Response) -> dict[str, list[str]]:
    directives = response.headers["content-security-policy"].split(";")
    return {name: values for name, *values in (d.split() for d in directives if d.strip())}


@pytest.mark.parametrize("path", ["/", "/graphql"])
async def test_pages_allow_only_this_server(client: httpx.AsyncClient, path: str) -> None:
    response = await client.get(path, headers=HTML)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-content-type-options"] == "nosniff"
    directives = policy(response)
    for name in ("default-src", "script-src", "style-src", "connect-src", "img-src", "font-src"):
        assert directives[name] == ["'self'"], name
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    # Nothing but this server, images and fonts included: no data:, no other host.
    for values in directives.values():
        assert set(values) <= {"'self'", "'none'"}, response.headers["content-security-policy"]


async def test_graphiqls_embedded_fonts_and_icons_are_served_as_files(
    client: httpx.AsyncClient,
) -> None:
    """The vendored stylesheet embeds them as data: URIs, which the policy refuses: the page's
    stylesheet is that file with each one replaced by its address here."""
    vendored = (VENDOR / "graphiql-3.8.3" / "graphiql.min.css").read_text()
    embedded = re.findall(r"url\(data:([^;]+);base64,([^)]+)\)", vendored)
    assert len(embedded) > 30
    response = await client.get("/assets/graphiql/graphiql.min.css")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/css")
    assert "data:" not in response.text
    addresses = re.findall(r"url\((/assets/graphiql/embedded/[^)]+)\)", response.text)
    assert len(addresses) == len(embedded)
    assert response.text.replace("/assets/graphiql/embedded/", "") != vendored
    for address, (media, data) in zip(addresses, embedded, strict=True):
        served = await client.get(address)
        assert served.status_code == 200
        assert served.headers["content-type"] == media
        assert served.content == base64.b64decode(data)
        assert "immutable" in served.headers["cache-control"]
    assert (await client.get("/assets/graphiql/embedded/nothing.woff2")).status_code == 404


@pytest.mark.parametrize("path", ["/", "/graphql"])
async def test_pages_load_nothing_from_elsewhere(client: httpx.AsyncClient, path: str) -> None:
    """Every script and stylesheet of the page is one of the package's assets, served."""
    page = (await client.get(path, headers=HTML)).text
    assert "unpkg" not in page and "cdn" not in page.lower()
    assets = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert assets
    for asset in assets:
        assert asset.startswith("/"), asset
        if asset != "/":
            response = await client.get(asset)
            assert response.status_code == 200, asset
    for module in (STATIC / "dashboard").glob("*.js"):
        imports = re.findall(r'from "([^"]+)"', module.read_text())
        assert all(name.startswith(("./", "/assets/")) for name in imports), module.name


async def test_assets_are_compressed_and_never_sniffed(client: httpx.AsyncClient) -> None:
    response = await client.get(
        "/assets/vendor/graphiql-3.8.3/graphiql.min.js", headers={"Accept-Encoding": "gzip"}
    )
    assert response.status_code == 200
    assert response.headers["content-encoding"] == "gzip"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-type"].startswith("text/javascript")
    for missing in ("/assets/nothing.js", "/assets/../api/web.py", "/assets/%2e%2e/web.py"):
        assert (await client.get(missing)).status_code == 404, missing


async def test_the_dashboard_can_be_turned_off(database_url: str) -> None:
    async with serving(make_settings(database_url, dashboard=False)) as (_app, http):
        assert (await http.get("/", headers=HTML)).status_code == 404
        assert (await http.get("/graphql", headers=HTML)).status_code == 200
    async with serving(make_settings(database_url, dashboard=False, graphiql=False)) as (_, http):
        assert (await http.get("/graphql", headers=HTML)).status_code == 404


def test_vendored_libraries_are_pinned_unmodified_and_licensed() -> None:
    manifest = json.loads((VENDOR / "manifest.json").read_text())
    folders = {path.name for path in VENDOR.iterdir() if path.is_dir()}
    assert folders == set(manifest["libraries"])
    for folder, library in manifest["libraries"].items():
        package = library["package"].removeprefix("@").replace("/", "-")  # @a/b: a-b
        assert folder == f"{package}-{library['version']}"
        assert "LICENSE" in library["sha256"]
        on_disk = {path.name for path in (VENDOR / folder).iterdir()}
        assert on_disk == set(library["sha256"]), folder
        for name, digest in library["sha256"].items():
            assert hashlib.sha256((VENDOR / folder / name).read_bytes()).hexdigest() == digest
