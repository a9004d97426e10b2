"""What a template send costs, counted in instructions rather than timed: N sends through Flask's test client
(the whole HTTP path but the server, the memory backend, one thread) of the plain ~1 KB message or of the
bench's stored template, run under valgrind's callgrind, which counts the same whatever else the machine does::

    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m benchmarks.template_instructions own 250
    valgrind --tool=callgrind --callgrind-out-file=/dev/null python -m benchmarks.template_instructions own 50

The difference of the two totals ("Collected"), divided by 200, is one send's instructions, start-up cancelled
out. ``plain``, ``own`` (the template with its own text part) or ``derived`` (its text part made from the HTML);
``--each-rendering`` inlines the template's CSS into each rendering, as before it was inlined once, and reads the
text part out of each rendering's HTML; ``--text-each-rendering`` does the latter alone, as before the text was made
once.
"""

from __future__ import annotations

import argparse
import os
import tempfile

from benchmarks import payload
from benchmarks.templates import TEMPLATES, template_body, template_request

BODIES = {"plain": payload.single_json, "own": lambda: template_body("receipt-text"),
          "derived": lambda: template_body("receipt")}
WARM_UP = 30  # sends before the counted ones: the first compiles the template


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("send", choices=sorted(BODIES))
    parser.add_argument("count", type=int)
    parser.add_argument("--each-rendering", action="store_true")
    parser.add_argument("--text-each-rendering", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-") as directory:
        os.environ.update({"GATEWAY_ENV": "development", "MAIL_BACKEND": "memory", "GATEWAY_ALLOW_ANONYMOUS": "true",
                           "GATEWAY_STORE_URL": f"sqlite:///{directory}/store.sqlite3"})
        from mail_gateway import create_app
        from mail_gateway.settings import load_settings
        from mail_gateway.templating import inlined

        if args.each_rendering:
            inlined.compile_inlined = lambda source, tree: None
        if args.text_each_rendering:
            inlined.compile_pretext = lambda source: None
        client = create_app(load_settings(_env_file=None)).test_client()
        for name, _, text in TEMPLATES:
            assert client.post("/v1/templates", data=template_request(name, text),
                               content_type="application/json").status_code == 201
        body = BODIES[args.send]()
        for _ in range(WARM_UP + args.count):
            answer = client.post("/v1/messages", data=body, content_type="application/json")
            assert answer.status_code == 202, answer.get_data(as_text=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
