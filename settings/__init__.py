"""Typed configuration for the gateway."""

from settings.gateway import BUILTIN_BACKENDS, GatewaySettings
from settings.loading import load_settings

__all__ = ["BUILTIN_BACKENDS", "GatewaySettings", "load_settings"]
