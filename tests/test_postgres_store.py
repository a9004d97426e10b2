"""What only a shared PostgreSQL store has: its password kept secret everywhere, the schema upgraded by
``mail-gateway db upgrade`` and refused when out of date, and LISTEN/NOTIFY waking idle workers of other
processes. Against the suite's private PostgreSQL cluster."""

from __future__ import annotations

import logging
import subprocess
import threading
import time

import psycopg
import pytest
from api_helpers import HELLO
from click.testing import CliRunner
from process_support import BIN, gateway_env
from queue_support import FAST, MESSAGE, Queued
from smtp_server import free_port
from sqlalchemy import event, insert, select

from mail_gateway import MailGateway, create_app
from mail_gateway.cli import main
from mail_gateway.errors import ConfigurationError, StoreUnavailableError
from mail_gateway.http.problems import problem_for
from mail_gateway.settings import load_settings
from mail_gateway.settings.store_url import hide_secret
from mail_gateway.store import actions, suppressions, webhooks
from mail_gateway.store.database import Store
from mail_gateway.store.engine import head_revision, upgrade
from mail_gateway.store.schema import suppressions as suppressions_table
from mail_gateway.store.schema import templates, webhook_endpoints

SECRET = "pa55-w0rd-never-shown"


def with_password(url: str) -> str:
    return url.replace("postgres@", f"postgres:{SECRET}@")  # the test cluster trusts loopback: any password works


def test_a_value_postgresql_cannot_hold_is_the_requests_fault_and_not_the_store_being_down(postgres_url) -> None:
    # A NUL in text, written or compared, fails the same however often it is tried: it was StoreUnavailableError,
    # answered 503 store-unavailable (retry later). A route that knows the field refuses it first, naming it.
    store = Store(postgres_url).open()
    try:
        with pytest.raises(StoreUnavailableError) as written:
            store.write(lambda conn: conn.execute(insert(templates).values(
                name="nul", version=1, subject="a\x00b", created_at=0.0, updated_at=0.0)))
        with pytest.raises(StoreUnavailableError) as read:
            store.read(lambda conn: conn.execute(select(templates).where(templates.c.name == "a\x00")).first())
        for refused in (written.value, read.value):
            problem = problem_for(refused)
            assert (problem.status, problem.slug, [e.field for e in problem.errors]) == (422, "invalid-message",
                                                                                        ["body"])
        store.check()  # the store itself is well
    finally:
        store.close()


def test_the_password_is_never_shown(make_settings, postgres, postgres_url, monkeypatch, caplog) -> None:
    caplog.set_level(logging.DEBUG)
    url = with_password(postgres_url)
    settings = make_settings(mail_backend="memory", gateway_delivery="queued", gateway_store_url=url)
    assert SECRET not in repr(settings) and SECRET not in str(settings.model_dump())
    app = create_app(settings)
    store = MailGateway.state(app).store
    assert SECRET not in repr(store) and store.describe().startswith("postgresql://postgres:***@")
    client = app.test_client()
    assert client.post("/v1/messages", json=HELLO).status_code == 202
    assert client.get("/readyz").status_code == 200
    with psycopg.connect(postgres.conninfo(), autocommit=True) as admin:  # the database stops taking connections
        database = postgres_url.rsplit("/", 1)[1]
        admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS false')
        admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", (database,))
        try:
            ready = client.get("/readyz")
            refused = client.post("/v1/messages", json=HELLO)
        finally:
            admin.execute(f'ALTER DATABASE "{database}" ALLOW_CONNECTIONS true')
    assert ready.status_code == 503 and "store" in ready.get_json()["detail"]
    assert str(postgres.port) not in ready.get_data(as_text=True)  # unauthenticated: not where the store is
    assert refused.status_code == 503 and refused.get_json()["type"].endswith("store-unavailable")
    closed = url.replace(f":{postgres.port}/", ":9/")  # nothing listens there
    with pytest.raises(ConfigurationError) as caught:
        create_app(make_settings(mail_backend="memory", gateway_store_url=closed))
    monkeypatch.setenv("GATEWAY_STORE_URL", url)
    outputs = [CliRunner().invoke(main, args).output for args in (["db", "upgrade"], ["db", "check"], ["check"])]
    monkeypatch.setenv("GATEWAY_STORE_URL", closed)
    outputs += [CliRunner().invoke(main, args).output for args in (["db", "upgrade"], ["queue"])]
    shown = [ready.get_data(as_text=True), refused.get_data(as_text=True), str(caught.value), caplog.text, *outputs]
    assert all(SECRET not in text for text in shown)
    assert "GATEWAY_STORE_URL" in str(caught.value) and "\n" not in str(caught.value)
    assert "already at revision" in outputs[0] and "this version's" in outputs[1]
    assert "store postgresql://postgres:***@" in outputs[2] and "ok, schema at revision" in outputs[2]
    assert outputs[4].startswith("Error: configuration error: GATEWAY_STORE_URL")


@pytest.mark.parametrize("password", ["p", "pw", SECRET])
def test_a_short_password_is_hidden_without_mangling_the_servers_message(password) -> None:
    port = free_port()  # nothing listens there: the driver's own "connection refused" message
    store = Store(f"postgresql://gateway:{password}@127.0.0.1:{port}/mail")
    try:
        with pytest.raises(StoreUnavailableError) as caught:
            store.open()
    finally:
        store.close()
    message = str(caught.value)
    assert f"port {port} failed" in message and "accepting TCP/IP connections" in message, message
    assert "***" not in message  # the driver never quoted the password, so nothing of its text was blanked


@pytest.mark.parametrize(("text", "secret", "shown"), [
    ('password "p" at port 5499 for user p', "p", 'password "***" at port 5499 for user ***'),
    ("postgresql://gateway:p@host/db (p)", "p", "postgresql://gateway:***@host/db (***)"),
    ("pw=pwd; pwd=pw", "pwd", "pw=***; ***=pw"),
    (f"key{SECRET}s and '{SECRET}'", SECRET, "key***s and '***'"),  # a long secret, wherever it appears
])
def test_a_secret_is_masked_where_it_stands_as_a_value(text, secret, shown) -> None:
    assert hide_secret(text, secret) == shown


def _start(args: list[str], url: str, tmp_path) -> subprocess.CompletedProcess:
    env = gateway_env(gateway_env="testing", mail_backend="memory", gateway_delivery="queued",
                      gateway_store_url=with_password(url))
    return subprocess.run([str(BIN), *args], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60)


def test_serve_and_worker_refuse_an_out_of_date_schema_until_db_upgrade(postgres, tmp_path) -> None:
    url = postgres.create_database()  # empty: no schema yet
    for args in (["serve", "--port", "9"], ["worker"]):
        done = _start(args, url, tmp_path)
        lines = done.stderr.strip().splitlines()
        assert done.returncode == 1 and len(lines) == 1, done.stderr
        assert "GATEWAY_STORE_URL" in lines[0] and "no schema yet" in lines[0]
        assert "mail-gateway db upgrade" in lines[0] and SECRET not in lines[0]
    checked = _start(["db", "check"], url, tmp_path)
    assert checked.returncode == 1 and "run `mail-gateway db upgrade`" in checked.stderr
    upgraded = _start(["db", "upgrade"], url, tmp_path)
    assert upgraded.returncode == 0 and "upgraded from nothing to revision" in upgraded.stdout, upgraded.stderr
    assert _start(["db", "check"], url, tmp_path).returncode == 0
    with psycopg.connect(url, autocommit=True) as conn:  # as if a release older than the store's code had made it
        conn.execute("UPDATE alembic_version SET version_num = '0004'")
    done = _start(["worker"], url, tmp_path)
    assert done.returncode == 1 and f"schema revision 0004, this version needs {head_revision()}" in done.stderr


def test_the_suppression_list_is_ordered_and_filtered_alike_on_sqlite_and_on_a_locale(postgres, tmp_path) -> None:
    # A database made with a locale sorted the addresses by its language's rules (a_b before a.c before Bob), where
    # SQLite compares bytes; migration 0006 gives the column PostgreSQL's "C" collation. Upgraded with rows in it.
    with psycopg.connect(postgres.conninfo(), autocommit=True) as admin:
        admin.execute("CREATE DATABASE with_locale TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE 'en-US' "
                      "LOCALE 'C.UTF-8'")
    given = ["Zed@example.com", "alpha@example.com", "a_b@example.com", "a.c@example.com", "ab@example.com",
             "Bob@example.com", "élodie@example.com", "Émile@example.com"]
    listed = []
    for url in (postgres.url("with_locale"), f"sqlite:///{tmp_path}/store.sqlite3"):
        store = Store(url)
        upgrade(store.engine, "0005")  # the schema of the release before, and the list in it
        with store.engine.begin() as conn:
            conn.execute(insert(suppressions_table), [
                {"address": address, "email": address, "reason": "manual", "source": "api", "created_at": 1.0}
                for address in given])
        assert store.upgrade() == ("0005", head_revision())
        assert store.read(lambda conn: suppressions.get(conn, "élodie@example.com")) is not None
        listed.append([[e.address for e in store.read(lambda conn, s=start: suppressions.list_entries(
            conn, limit=3, start=s))] for start in (0, 3, 6)])
        # The filter folds ASCII letters alone on both, where the locale's lower() folded É here and not on SQLite.
        listed.append([[e.address for e in store.read(lambda conn, t=text: suppressions.list_entries(
            conn, contains=t))] for text in ("ÉLODIE", "élodie", "ÉMILE", "BOB")])
    assert listed[0] == listed[2] == [sorted(given)[:3], sorted(given)[3:6], sorted(given)[6:]]
    assert listed[1] == listed[3] == [[], ["élodie@example.com"], ["Émile@example.com"], ["Bob@example.com"]]


def test_two_hosts_upgrading_at_once_take_turns(postgres) -> None:
    url = postgres.create_database()
    stores = [Store(url), Store(url)]
    results = []
    threads = [threading.Thread(target=lambda s=s: results.append(s.upgrade())) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert [after for _, after in results] == [head_revision()] * 2 and head_revision() is not None
    assert all(s.open() for s in stores)


def _worker_app(make_settings, url: str, **values) -> Queued:
    """Delivery workers that, by themselves, would look for new work only every 30 s."""
    settings = {**FAST, "gateway_store_url": url, "gateway_queue_poll_interval": 30, **values}
    queued = Queued(create_app(make_settings(**settings)), None)
    queued.start_workers()
    return queued


def test_new_work_from_another_process_wakes_idle_workers_at_once(make_settings, postgres, postgres_url,
                                                                  smtp_server) -> None:
    workers = _worker_app(make_settings, postgres_url, **smtp_server.queued_settings())
    http = Queued(create_app(make_settings(**FAST, **smtp_server.queued_settings(), gateway_store_url=postgres_url)),
                  None)
    try:
        time.sleep(0.5)  # the workers have looked, found nothing, and wait
        http.wait_status(http.send()["id"], "delivered", timeout=5)  # woken by NOTIFY, not by their 30 s poll
        with psycopg.connect(postgres.conninfo(), autocommit=True) as admin:  # the listening connection is cut
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'")
        time.sleep(0.5)
        http.wait_status(http.send()["id"], "delivered", timeout=8)  # listening again, after a reconnect
    finally:
        workers.stop()
        http.stop()


def test_without_notices_idle_workers_wait_for_their_poll(make_settings, postgres_url, smtp_server) -> None:
    workers = _worker_app(make_settings, postgres_url, **smtp_server.queued_settings(), gateway_queue_notify=False)
    http = Queued(create_app(make_settings(**FAST, **smtp_server.queued_settings(), gateway_store_url=postgres_url)),
                  None)
    try:
        time.sleep(0.5)
        answer = http.send(MESSAGE)
        time.sleep(2)
        assert http.status(answer["id"])["status"] == "queued" and smtp_server.messages == []
    finally:
        workers.stop()
        http.stop()


def test_a_password_given_as_a_url_parameter_is_never_shown(postgres, postgres_url, monkeypatch, caplog) -> None:
    # libpq takes any connection parameter in the URL's query, the password and the client key's passphrase too:
    # the store connects with them, and where it is described they are masked as a password before the host is.
    caplog.set_level(logging.DEBUG)
    url = f"{postgres_url}?sslmode=disable&password={SECRET}&sslpassword={SECRET}-key"
    store = Store(url).open()
    store.close()
    assert SECRET not in repr(store) and store.describe().endswith("?password=***&sslmode=disable&sslpassword=***")
    monkeypatch.setenv("GATEWAY_STORE_URL", url)
    monkeypatch.setenv("GATEWAY_DELIVERY", "queued")
    outputs = [CliRunner().invoke(main, ["check"]).output]
    monkeypatch.setenv("GATEWAY_STORE_URL", url.replace(f":{postgres.port}/", ":9/"))  # nothing listens there
    outputs += [CliRunner().invoke(main, args).output for args in (["db", "upgrade"], ["check"], ["queue"])]
    assert "ok, schema at revision" in outputs[0] and all("password=***" in output for output in outputs), outputs
    assert all(SECRET not in text for text in [*outputs, caplog.text])


def test_an_at_sign_in_the_login_must_be_percent_encoded() -> None:
    # The check read the login up to the last '@', the driver's URL parser up to the first: the rest of the password
    # became the host, shown in every description of the store and in the driver's "failed to resolve host".
    with pytest.raises(ConfigurationError) as caught:
        load_settings(_env_file=None, gateway_store_url="postgresql://gateway:pa55@w0rd-never-shown@127.0.0.1:9/mail")
    assert "GATEWAY_STORE_URL" in str(caught.value) and "%40" in str(caught.value)
    assert "w0rd" not in str(caught.value)
    store = Store("postgresql://gateway:pa55%40w0rd-never-shown@127.0.0.1:9/mail")
    assert store.describe() == "postgresql://gateway:***@127.0.0.1:9/mail"


def test_retry_all_passes_over_a_message_that_ended_after_it_was_listed(make_settings, postgres_url) -> None:
    # On a server database other processes write between retry_all's listing and its retries: here another one
    # cancels the first message listed right after the listing. Its NothingPendingError failed the whole command
    # (`mail-gateway queue retry --all`), and no message was made due.
    front = Queued(create_app(make_settings(**FAST, mail_backend="memory", gateway_store_url=postgres_url)), None)
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 3600))
    ids = [front.send({**MESSAGE, "send_at": later})["id"] for _ in range(2)]
    store, other = Store(postgres_url).open(), Store(postgres_url).open()
    listed = threading.Event()

    def cancel_once_listed(conn, cursor, statement, parameters, context, executemany) -> None:
        if not listed.is_set() and statement.startswith("SELECT messages.id") and "lease_token IS NULL" in statement:
            listed.set()
            other.write(lambda c: actions.cancel(c, ids[0], time.time(), None))

    event.listen(store.engine, "after_cursor_execute", cancel_once_listed)
    try:
        assert store.write(lambda conn: actions.retry_all(conn, time.time())) == 1
        assert listed.is_set()
        assert [front.status(i)["status"] for i in ids] == ["canceled", "queued"]
    finally:
        store.close()
        other.close()
        front.stop()


def test_two_processes_told_410_gone_at_once_both_record_it(postgres_url) -> None:
    # Two worker processes whose webhooks to one endpoint are answered 410 at the same moment: each saw no row for
    # the endpoint, and the second's insert failed on the first's (IntegrityError, a failed store change).
    url, first, second = "https://hooks.example/gone", Store(postgres_url).open(), Store(postgres_url).open()
    first_inserted, second_inserting = threading.Event(), threading.Event()
    answers: dict[str, object] = {}

    def first_gone(conn) -> int:
        gone = webhooks.endpoint_gone(conn, url, time.time(), "410 Gone")
        first_inserted.set()
        assert second_inserting.wait(30)  # committed only once the other has looked and is inserting
        return gone

    def inserting(conn, cursor, statement, parameters, context, executemany) -> None:
        if statement.startswith("INSERT INTO webhook_endpoints"):
            second_inserting.set()

    def run(name: str, store: Store, work) -> None:
        try:
            answers[name] = store.write(work)
        except StoreUnavailableError as exc:
            answers[name] = exc

    event.listen(second.engine, "before_cursor_execute", inserting)
    threads = [threading.Thread(target=run, args=("first", first, first_gone))]
    threads[0].start()
    try:
        assert first_inserted.wait(30)
        threads.append(threading.Thread(target=run, args=(
            "second", second, lambda conn: webhooks.endpoint_gone(conn, url, time.time(), "410 Gone"))))
        threads[1].start()
        for thread in threads:
            thread.join(30)
        assert answers == {"first": 0, "second": 0}
        rows = first.read(lambda conn: conn.execute(select(webhook_endpoints.c.url)).scalars().all())
        assert rows == [url]
    finally:
        second_inserting.set()
        first.close()
        second.close()
