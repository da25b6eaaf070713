"""API keys added and revoked at run time: stored hashed, refused from the
request after their revocation, beside the environment's API_KEYS."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from sqlalchemy import select

from smsdispatch.local.simulators import SimulatorServer
from smsdispatch.store import api_keys
from smsdispatch.store.db import Database
from smsdispatch.store.models import api_keys as api_keys_table
from tests.api_server import served_api
from tests.test_cli import cli_env, run


@pytest.fixture
def client(database_url: str, redis_client: redis.Redis, redis_url: str) -> Iterator[httpx.Client]:
    with served_api(database_url=database_url, redis_url=redis_url) as http:
        yield http


def create(database: Database, name: str) -> str:
    with database.session() as s, s.begin():
        return api_keys.create(s, name, database.clock()).key


def status_with(client: httpx.Client, key: str) -> int:
    return client.get("/v1/messages", headers={"X-API-Key": key}).status_code


def test_a_created_key_is_accepted(client: httpx.Client, database: Database) -> None:
    assert status_with(client, create(database, "billing")) == 200


def test_a_revoked_key_is_refused_from_the_next_request(
    client: httpx.Client, database: Database
) -> None:
    key = create(database, "billing")
    assert status_with(client, key) == 200
    with database.session() as s, s.begin():
        api_keys.revoke(s, "billing", database.clock())
    assert status_with(client, key) == 401


def test_the_environments_keys_are_still_accepted(client: httpx.Client, database: Database) -> None:
    create(database, "billing")
    assert client.get("/v1/messages").status_code == 200  # the client holds an API_KEYS key


def test_only_the_keys_hash_is_stored(database: Database) -> None:
    key = create(database, "billing")
    with database.session() as s:
        (stored,) = s.execute(select(api_keys_table)).all()
    assert key not in {str(v) for v in stored}
    assert stored.key_hash == hashlib.sha256(key.encode()).hexdigest()


def test_two_live_keys_cannot_share_a_name_but_a_revoked_ones_name_is_free(
    database: Database,
) -> None:
    create(database, "billing")
    with pytest.raises(api_keys.ApiKeyNameTaken):
        create(database, "billing")
    with database.session() as s, s.begin():
        api_keys.revoke(s, "billing", database.clock())
    assert create(database, "billing").startswith(api_keys.PREFIX)


def test_a_key_is_revoked_by_its_id(database: Database) -> None:
    create(database, "billing")
    with database.session() as s, s.begin():
        key_id = api_keys.all_keys(s)[0].id
        assert api_keys.revoke(s, str(key_id), database.clock()).name == "billing"


def test_revoking_an_unknown_key_names_it(database: Database) -> None:
    with (
        database.session() as s,
        s.begin(),
        pytest.raises(api_keys.ApiKeyNotFound, match="'nobody'"),
    ):
        api_keys.revoke(s, "nobody", database.clock())


def test_keys_are_created_listed_and_revoked_over_the_cli(
    tmp_path: Path, simulators: SimulatorServer, redis_url: str
) -> None:
    env = cli_env(tmp_path, simulators, redis_url)

    created = run(["keys", "create", "billing"], env)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip().splitlines()[-1]
    assert key.startswith(api_keys.PREFIX)

    listed = run(["keys", "list"], env)
    assert "billing" in listed.stdout
    assert key not in listed.stdout

    revoked = run(["keys", "revoke", "billing"], env)
    assert revoked.returncode == 0, revoked.stderr
    assert "revoked" in revoked.stdout
    assert run(["keys", "revoke", "billing"], env).returncode == 2


def test_a_key_made_over_the_cli_opens_the_api_until_revoked_over_the_cli(
    tmp_path: Path, simulators: SimulatorServer, redis_url: str, redis_client: redis.Redis
) -> None:
    env = cli_env(tmp_path, simulators, redis_url)
    key = run(["keys", "create", "crm"], env).stdout.strip().splitlines()[-1]
    with served_api(database_url=env["DATABASE_URL"], redis_url=redis_url) as client:
        assert status_with(client, key) == 200
        assert run(["keys", "revoke", "crm"], env).returncode == 0
        assert status_with(client, key) == 401


def test_a_key_name_of_digits_alone_is_refused_as_it_would_read_as_an_id(
    tmp_path: Path, simulators: SimulatorServer, redis_url: str
) -> None:
    result = run(["keys", "create", "2024"], cli_env(tmp_path, simulators, redis_url))
    assert result.returncode == 2
    assert "a name needs a letter" in result.stderr


def test_a_key_made_with_a_callback_prints_its_signing_secret_and_keeps_the_url(
    tmp_path: Path, simulators: SimulatorServer, redis_url: str
) -> None:
    env = cli_env(tmp_path, simulators, redis_url) | {"CALLBACK_ALLOW_PRIVATE": "true"}
    created = run(["keys", "create", "crm", "--callback", "http://127.0.0.1:9/hooks"], env)
    assert created.returncode == 0, created.stderr
    secret = next(w for w in created.stdout.split() if w.startswith(api_keys.SECRET_PREFIX))
    database = Database(env["DATABASE_URL"])
    try:
        with database.session() as s:
            row = s.execute(
                select(api_keys_table.c.callback_url, api_keys_table.c.callback_secret)
            ).one()
    finally:
        database.dispose()
    assert tuple(row) == ("http://127.0.0.1:9/hooks", secret)


def test_a_key_with_a_callback_to_a_private_address_is_refused(
    tmp_path: Path, simulators: SimulatorServer, redis_url: str
) -> None:
    env = cli_env(tmp_path, simulators, redis_url)
    result = run(["keys", "create", "crm", "--callback", "http://10.0.0.1/hooks"], env)
    assert result.returncode == 2
    assert "--callback: host '10.0.0.1' resolves to 10.0.0.1, a private address" in result.stderr
