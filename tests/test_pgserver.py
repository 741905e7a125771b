"""The PostgreSQL fixtures (tests/pgserver.py, conftest.py) give a real, working server."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
import sqlalchemy as sa

if TYPE_CHECKING:
    from pgserver import PostgresServer


def test_server_answers_select_1_through_sqlalchemy(postgres_server: PostgresServer) -> None:
    assert postgres_server.url.startswith("postgresql+psycopg://cancelkit@127.0.0.1:")
    engine = sa.create_engine(postgres_server.url)
    try:
        with engine.connect() as conn:
            assert conn.execute(sa.text("select 1")).scalar_one() == 1
    finally:
        engine.dispose()


@pytest.fixture
def other_postgres_url(postgres_server: PostgresServer) -> str:
    """A second fresh database beside the test's own ``postgres_url``."""
    return postgres_server.create_database()


def test_each_postgres_url_is_a_database_of_its_own(
    postgres_url: str, other_postgres_url: str
) -> None:
    assert postgres_url != other_postgres_url
    table = sa.Table("t", sa.MetaData(), sa.Column("x", sa.Integer))
    first, second = sa.create_engine(postgres_url), sa.create_engine(other_postgres_url)
    try:
        with first.begin() as conn:
            table.create(conn)
            conn.execute(table.insert().values(x=1))
            assert (
                conn.execute(sa.text("select current_database()")).scalar_one()
                == (postgres_url.rsplit("/", 1)[1])
            )
        with second.connect() as conn:
            assert not sa.inspect(conn).has_table("t")
    finally:
        first.dispose()
        second.dispose()
