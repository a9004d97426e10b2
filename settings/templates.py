"""Settings of stored templates: the folder of template files, and the bounds of one rendering."""

from __future__ import annotations

from pydantic import Field

from mail_gateway.settings.core import OptionalPath, Subject


class TemplateSettings(Subject):
    # Read, and each file checked, when the gateway starts (mail_gateway.templating.files).
    gateway_templates_dir: OptionalPath = Field(
        None, description="set it to an existing directory of template files (welcome.subject, welcome.html, "
                          "welcome.txt), or leave it unset")
    # What one rendering may write, its three parts and every macro's or block's output together: a message is
    # at most GATEWAY_MAX_MESSAGE_BYTES anyway, and no value inside a rendering may grow beyond this either.
    gateway_template_max_output: int = Field(
        1_000_000, ge=1000, le=100_000_000,
        description="set it to the most characters one rendering may produce, from 1000 to 100000000")
    # Loop iterations and calls (macros, methods, functions): with every value bounded by the output limit, this
    # is what bounds the time one rendering takes.
    gateway_template_max_steps: int = Field(
        100_000, ge=100, le=100_000_000,
        description="set it to the most loop iterations and calls one rendering may make, from 100 to 100000000")
