"""Browser tests: a real `wareports demo` server (SQLite file, and PostgreSQL when configured)
driven by Playwright in Debian's Chromium, with no network beyond the server. `.ci/run`
installs `chromium` when it is missing; elsewhere these tests are skipped without it."""

import asyncio
import contextlib
import os
import re
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from tests.conftest import ENGINES, _pg_url, pg_admin
from tests.service.test_ops import WAREPORTS, free_port

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# Screenshots of every page: test artefacts, never committed (.gitignore).
ARTIFACTS = Path(os.environ.get("WAREPORTS_TEST_ARTIFACTS", "test-artifacts")) / "web"
CHROMIUM_ARGS = [
    "--no-sandbox",  # CI runs as root
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",  # Chromium's own calls home: not the page's requests
    "--disable-component-update",
    "--disable-sync",
]
CONVERSATIONS = 1500


@dataclass
class Server:
    url: str
    token: str
    database_url: str
    engine: str

    def graphql(
        self, query: str, variables: dict[str, Any] | None = None, token: str | None = None
    ) -> Any:
        """The answer of the public API itself, to compare the pages with."""
        response = httpx.post(
            f"{self.url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={"Authorization": f"Bearer {token or self.token}"},
            timeout=60,
        )
        body = response.json()
        assert "errors" not in body, body
        return body["data"]

    def command(self, *args: str) -> str:
        environment = dict(os.environ, WAREPORTS_DATABASE_URL=self.database_url)
        done = subprocess.run(  # noqa: S603  (our own console script)
            [WAREPORTS, *args], env=environment, capture_output=True, text=True, check=True
        )
        return done.stdout


def _database(engine: str, tmp: Path, template: str | None) -> Iterator[str]:
    if engine == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp / 'web.db'}"
        return
    name = f"wareports_web_{uuid.uuid4().hex[:8]}"

    asyncio.run(pg_admin(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    try:
        yield _pg_url(name)
    finally:
        asyncio.run(pg_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session", params=ENGINES)
def server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    postgres_template: str | None,
) -> Iterator[Server]:
    """`wareports demo` (its realistic inbox over 90 days) serving on a free port."""
    if CHROMIUM is None:
        if os.environ.get("WAREPORTS_CI"):
            pytest.fail("chromium is missing: .ci/run installs it")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    tmp = tmp_path_factory.mktemp(f"web-{request.param}")
    for database_url in _database(request.param, tmp, postgres_template):
        port = free_port()
        address = f"http://127.0.0.1:{port}"
        environment = dict(
            os.environ,
            WAREPORTS_DATABASE_URL=database_url,
            WAREPORTS_PUBLIC_URL=address,
            WAREPORTS_SECRET_KEY="web-tests",
            WAREPORTS_RATE_LIMIT="100000/minute",
            WAREPORTS_LOG_FORMAT="text",
        )
        environment.pop("WAREPORTS_REDIS_URL", None)
        log = tmp / "server.log"
        with log.open("w") as output:
            process = subprocess.Popen(  # noqa: S603  (our own console script)
                [WAREPORTS, "demo", "--conversations", str(CONVERSATIONS), "--port", str(port)],
                stdout=output, stderr=subprocess.STDOUT, env=environment,
            )  # fmt: skip
        try:
            token = _ready(address, log, process)
            yield Server(address, token, database_url, request.param)
        finally:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def _ready(address: str, log: Path, process: subprocess.Popen[bytes]) -> str:
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        assert process.poll() is None, f"wareports demo stopped:\n{log.read_text()}"
        found = re.search(r"Token \(every scope, shown once\): (\S+)", log.read_text())
        if found:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{address}/readyz", timeout=2).status_code == 200:
                    return found.group(1)
        time.sleep(0.2)
    raise AssertionError(f"wareports demo did not start:\n{log.read_text()}")


@pytest.fixture(scope="session")
def browser(server: Server) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@dataclass
class Watched:
    """A page whose console errors and requests are recorded; a request to any host but the
    server is refused (and reported by the test's end)."""

    page: Any
    server: Server
    errors: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    allowed: list[str] = field(default_factory=list)  # console errors a test expects (regexes)

    def sign_in(self, token: str | None = None, query: str = "") -> None:
        self.page.goto(f"{self.server.url}/{query}")
        self.page.fill("#token", token or self.server.token)
        self.page.click("#sign-in-form button")

    def ready(self, view: str = "summary") -> None:
        """Wait for a view to finish rendering (a selector: the page's CSP forbids eval)."""
        self.page.wait_for_selector(
            f'#view[data-view="{view}"][data-ready]:not([aria-busy])', state="attached"
        )

    def values(self, selector: str, attribute: str = "data-value") -> list[str]:
        return [
            element.get_attribute(attribute) for element in self.page.query_selector_all(selector)
        ]

    def screenshot(self, name: str) -> None:
        folder = ARTIFACTS / self.server.engine
        folder.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(folder / f"{name}.png"), full_page=True)


@pytest.fixture
def watched(browser: Any, server: Server) -> Iterator[Watched]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, accept_downloads=True)
    page = context.new_page()
    own = urlsplit(server.url).netloc
    watch = Watched(page, server)

    def route(route: Any) -> None:
        if urlsplit(route.request.url).netloc == own:
            route.continue_()
        else:
            watch.foreign.append(route.request.url)
            route.abort()

    context.route("**/*", route)
    page.on("request", lambda sent: watch.requests.append(sent.url))
    page.on("console", lambda line: line.type == "error" and watch.errors.append(line.text))
    page.on("pageerror", lambda error: watch.errors.append(f"page error: {error}"))
    try:
        yield watch
    finally:
        context.close()
    unexpected = [e for e in watch.errors if not any(re.search(p, e) for p in watch.allowed)]
    assert unexpected == [], f"console errors: {unexpected}"
    assert watch.foreign == [], f"requests to other hosts: {watch.foreign}"
    assert watch.requests, "the page made no request at all"
    assert {urlsplit(url).netloc for url in watch.requests if url.startswith("http")} == {own}
