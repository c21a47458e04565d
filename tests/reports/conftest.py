"""The report suite reads through a second engine (`WAREPORTS_READ_DATABASE_URL`) pointed at
the test's database, read-only as a replica is: every report, entity query and export of these
tests runs on it, while the tests' data is written through the primary (the `engine` fixture)."""

import pytest

from models.settings import Settings
from tests.conftest import make_settings


@pytest.fixture
def settings(database_url: str) -> Settings:
    return make_settings(database_url, read_database_url=database_url)
