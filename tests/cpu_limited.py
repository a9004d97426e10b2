"""Scripts run in a process whose CPU is limited to 20 s: input small on the wire that cost the gateway far more
than its size is sent there much larger than the case that was found, so the old cost exceeds the limit many
times over while a linear one does not approach it (a fraction of a second). CPU time, not wall time: the
outcome does not depend on the machine's speed or load."""

from __future__ import annotations

import os
import subprocess
import sys

LIMIT = "import resource\nresource.setrlimit(resource.RLIMIT_CPU, (20, 20))\n"
APP = ("import base64, os\n"
       "os.environ['MAIL_BACKEND'] = 'memory'\n"
       "from mail_gateway import create_app\n"
       "from mail_gateway.settings import load_settings\n"
       "client = create_app(load_settings(_env_file=None)).test_client()\n"
       "MESSAGE = {'from': 'app@example.com', 'to': ['ann@example.com'], 'subject': 'Hi', 'text': 'Hello'}\n"
       "def raw(data):\n"
       "    return {'mail_from': 'app@example.com', 'rcpt_to': ['ann@example.com'],\n"
       "            'data': base64.b64encode(data).decode()}\n")


def run_limited(script: str, *, app: bool = True, **environment: str) -> None:
    """Runs ``script`` under the CPU limit (after ``APP``, which gives it ``client``, ``MESSAGE`` and ``raw``,
    unless ``app`` is false), with ``environment`` set; it must print nothing and end well."""
    code = LIMIT + (APP if app else "") + script + "print('done')\n"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **environment})
    assert done.returncode == 0 and done.stdout == "done\n", done.stderr[-800:]
