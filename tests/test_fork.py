"""A process forked from one that has already sent (a preloading server's workers, a script's multiprocessing pool)
sends on connections of its own: the parent's SMTP connections and store connections stay the parent's, and the
store's writer thread, which a fork does not copy, is started again in the child. Each case runs in a process of
its own that forks, against a real aiosmtpd server or SQLite store."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from email import policy
from email.parser import BytesParser

from sqlalchemy import text

from mail_gateway.store.database import Store

SCRIPT = textwrap.dedent("""
    import json, os, signal, sys
    from flask import Flask
    from mail_gateway import MailGateway, Message

    app = Flask("forking")
    app.config.update(json.loads(sys.argv[1]))
    mail = MailGateway(app)

    def send(subject):
        with app.app_context():
            mail.send(Message(subject, sender="app@example.com", recipients=["ann@example.com"], body="Hi"))

    send("parent, before the fork")
    child = os.fork()
    if child == 0:
        signal.alarm(60)  # a send that hangs fails the case instead of the test run
        try:
            send("child")
            os._exit(0)
        except BaseException as exc:
            print("child:", type(exc).__name__, exc, file=sys.stderr, flush=True)
            os._exit(1)
    _, status = os.waitpid(child, 0)
    send("parent, after the fork")
    print(json.dumps({"child": os.waitstatus_to_exitcode(status)}))
""")


def run(config: dict[str, object]) -> dict[str, int]:
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(config)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def test_a_forked_child_sends_on_an_smtp_connection_of_its_own(smtp_server) -> None:
    result = run({"MAIL_BACKEND": "smtp", "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": smtp_server.port,
                  "GATEWAY_ENV": "testing"})
    assert result == {"child": 0}
    subjects = [BytesParser(policy=policy.default).parsebytes(message.data)["Subject"]
                for message in smtp_server.messages]
    assert subjects == ["parent, before the fork", "child", "parent, after the fork"]
    parent_before, child, parent_after = (message.peer for message in smtp_server.messages)
    # The parent kept its pooled connection; the child had to open another rather than speak on the parent's.
    assert parent_before == parent_after and child != parent_before


def test_a_forked_child_stores_queued_mail_with_a_writer_of_its_own(store_url) -> None:
    result = run({"GATEWAY_DELIVERY": "queued", "GATEWAY_STORE_URL": store_url, "MAIL_BACKEND": "smtp",
                  "MAIL_SERVER": "127.0.0.1", "MAIL_PORT": 9, "GATEWAY_ENV": "testing"})
    assert result == {"child": 0}
    store = Store(store_url)
    try:
        assert store.read(lambda conn: conn.execute(text("select count(*) from messages")).scalar()) == 3
    finally:
        store.close()
