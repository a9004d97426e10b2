"""Settings of the local backends, each the subject its backend is built from: memory (its bounds), console (its
stream and format, and the bounds of the copy it keeps for the outbox page) and file (its directory, and the
largest message it must find room for)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field

from mail_gateway.settings.core import OptionalPath, Subject


class MemorySettings(Subject):
    mail_memory_max_messages: int = Field(
        1000, ge=1, description="set it to how many messages the memory backend keeps (at least 1)"
    )
    mail_memory_max_bytes: int = Field(
        256 * 1024 * 1024, ge=1024,
        description="set it to how many bytes of mail the memory backend keeps in all (at least 1024)",
    )
    # Read by the file backend too (``FileBackendSettings.max_age``): the retention of every outbox.
    # Bounded as GATEWAY_SUPPRESSION_EXPIRY is: inf was taken, and the outbox API answered 500 reporting it.
    gateway_outbox_max_age: float | None = Field(
        None, gt=0, le=3650 * 86400, description="set it to the seconds a kept message stays in the outbox (more "
        "than 0, at most 315360000: ten years), or leave it unset to keep messages until the count bound drops them",
    )


class ConsoleSettings(MemorySettings):
    """The console backend's, with the memory bounds of the copy it keeps in development. ``None`` for the format
    or keep is GATEWAY_ENV's default, which ``settings.console`` holds resolved."""

    mail_console_stream: Literal["stdout", "stderr"] = Field("stdout", description="set it to stdout or stderr")
    mail_console_format: Literal["summary", "raw"] | None = Field(
        None, description="set it to summary or raw (default: summary in development, raw otherwise)"
    )
    mail_console_keep: bool | None = Field(
        None,
        description="set it to true or false (default: true in development, so the outbox page shows console mail)",
    )


class FileSettings(Subject):
    """What the environment says of the file backend; it is built from ``FileBackendSettings``."""

    mail_file_path: OptionalPath = Field(
        None, description="set it to a writable directory for the file backend's .eml files"
    )


class FileBackendSettings(Subject):
    """What the file backend is built from (``settings.file``): its directory, MAIL_URL's ``file://`` path or
    MAIL_FILE_PATH, and the largest message the gateway accepts (the larger of the HTTP API's and the SMTP
    ingress's limits), for which its readiness check wants free space."""

    mail_file_path: Path
    largest_message_bytes: int = Field(ge=1)
    largest_message_setting: str  # the variable that sets that limit, named when space runs short
    max_age: float | None = None  # GATEWAY_OUTBOX_MAX_AGE
