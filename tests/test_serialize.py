"""The fast serialiser gives exactly the bytes of the stdlib generator, whatever the headers and bodies."""

from __future__ import annotations

from flask_mailman import EmailMultiAlternatives
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.serialize import wire_bytes

header_text = st.text(alphabet=st.sampled_from(list("aZ09 .,;:<>@=?!\"'()[]-_/\t\té€ü")) | st.characters(
    min_codepoint=0x20, max_codepoint=0x7e), max_size=120)
body_text = st.text(alphabet=st.sampled_from(list("ab .\r\n\tü€=")) | st.characters(exclude_categories=("Cs",)),
                    max_size=400)


def message(subject: str, body: str, extra: str, html: str | None, attachment: bytes | None):
    msg = EmailMultiAlternatives(subject, body, "Jörg <app@example.com>", ["friend@example.com"],
                                 headers={"X-Extra": extra, "Message-ID": "<id@example.com>",
                                          "Date": "Mon, 23 Nov 2026 21:00:00 +0000"})
    msg.encoding = "utf-8"
    if html is not None:
        msg.attach_alternative(html, "text/html")
    if attachment is not None:
        msg.attach("data.bin", attachment, "application/octet-stream")
        msg.attach("notes.txt", "line one\nline two\r\nthree", "text/plain")
    return msg.message()


@settings(max_examples=300, deadline=None)
@given(subject=header_text, body=body_text, extra=header_text, html=st.none() | body_text,
       attachment=st.none() | st.binary(max_size=300))
def test_the_same_bytes_as_the_stdlib_generator(subject, body, extra, html, attachment) -> None:
    subject, extra = subject.replace("\r", "").replace("\n", ""), extra.replace("\r", "").replace("\n", "")
    mime = message(subject, body, extra, html, attachment)
    assert wire_bytes(mime) == mime.as_bytes(linesep="\r\n")


def test_a_large_body_is_rewritten_in_chunks_without_changing_it() -> None:
    body = "x" * 70 + "\n"
    mime = message("big", body * 40_000, "v", None, bytes(range(256)) * 20_000)
    assert wire_bytes(mime) == mime.as_bytes(linesep="\r\n")
