"""A real DNS server on a free loopback UDP port, answering from a small zone, for ``mail-gateway check``'s
DKIM look-ups (``--dns-server``): no test depends on the machine's resolver or the network."""

from __future__ import annotations

import socket
import threading
from dataclasses import dataclass, field

import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

HOST = "127.0.0.1"


def txt_strings(value: str) -> str:
    """A TXT record's text as quoted strings of at most 255 characters each, as a zone file writes it."""
    return " ".join(f'"{value[i:i + 255]}"' for i in range(0, len(value), 255))


@dataclass
class DnsServer:
    """Answers each question from ``records`` (name -> {type: [rdata text]}): the records of a known name,
    an empty answer for a type the name lacks, NXDOMAIN for an unknown name; every answer ``rcode`` when set
    (SERVFAIL: a resolver that cannot reach the domain's servers)."""

    records: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    rcode: int | None = None
    questions: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self._sock.bind((HOST, 0))
        self._sock.settimeout(0.05)  # how often the loop looks whether it should stop, not a wait on a result
        self.port = self._sock.getsockname()[1]
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    @property
    def address(self) -> str:
        return f"{HOST}:{self.port}"

    def _answer(self, query: dns.message.Message) -> dns.message.Message:
        response = dns.message.make_response(query)
        question = query.question[0]
        name, kind = question.name.to_text().lower(), dns.rdatatype.to_text(question.rdtype)
        self.questions.append(f"{name} {kind}")
        if self.rcode is not None:
            response.set_rcode(self.rcode)
        elif name not in self.records:
            response.set_rcode(dns.rcode.NXDOMAIN)
        elif kind in self.records[name]:
            response.answer.append(dns.rrset.from_text_list(question.name, 60, "IN", kind, self.records[name][kind]))
        return response

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                data, peer = self._sock.recvfrom(4096)
            except TimeoutError:
                continue
            self._sock.sendto(self._answer(dns.message.from_wire(data)).to_wire(), peer)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._sock.close()
