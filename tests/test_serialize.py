"""The fast serialiser gives exactly the bytes of the stdlib generator, whatever the headers and bodies."""

from __future__ import annotations

from flask_mailman import EmailMultiAlternatives
from hypothesis import given, settings
from hypothesis import strategies as st

from mail_gateway.mail.serialize import wire_chunks

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
    assert b"".join(wire_chunks(mime)) == mime.as_bytes(linesep="\r\n")


def test_a_large_body_is_rewritten_in_chunks_without_changing_it() -> None:
    body = "x" * 70 + "\n"
    mime = message("big", body * 40_000, "v", None, bytes(range(256)) * 20_000)
    assert b"".join(wire_chunks(mime)) == mime.as_bytes(linesep="\r\n")


@settings(max_examples=60, deadline=None)
@given(content=st.binary(max_size=2000), filename=st.sampled_from(["a.bin", "Grüße.pdf", "", "x y.zip"]),
       mimetype=st.sampled_from(["application/octet-stream", "image/png", "application/pdf", "text/plain"]))
def test_lean_attachments_render_the_same_bytes_as_flask_mailman(content, filename, mimetype) -> None:
    from email.generator import Generator

    from mail_gateway.mail.serialize import with_lean_attachments

    msg = EmailMultiAlternatives("s", "body", "app@example.com", ["friend@example.com"],
                                 headers={"Message-ID": "<id@example.com>", "Date": "Mon, 23 Nov 2026 21:00:00 +0000"})
    msg.encoding = "utf-8"
    if mimetype == "text/plain":
        content = content.decode("latin-1").encode("utf-8")
    msg.attach(filename or None, content, mimetype)
    original = Generator.__dict__["_make_boundary"]  # the classmethod itself, not a method bound to Generator
    Generator._make_boundary = classmethod(lambda cls, text=None: "BOUNDARY")  # random otherwise
    try:
        lean = with_lean_attachments(msg)
        assert b"".join(wire_chunks(lean.message())) == msg.message().as_bytes(linesep="\r\n")
        assert msg.attachments[0][1] in (content, content.decode("utf-8", "replace"))  # caller's message untouched
    finally:
        Generator._make_boundary = original
