"""Errors of the integration lab (the harness, not the SDK)."""

from __future__ import annotations


class LabError(RuntimeError):
    """The lab could not be provisioned, started, driven or stopped."""


class LabTimeoutError(LabError, TimeoutError):
    """Something the lab waited for did not happen before its deadline."""
