"""The real-Asterisk integration lab: Asterisk 22 and three baresip phones on 127.0.0.1.

``python -m tests.integration.lab up|down|status|logs`` runs it by hand; the pytest fixtures in
``tests/integration/conftest.py`` run it for the tests.
"""

from .ari import AriConfig, AriEvent, AriEventRecorder, ari_request, channel_of
from .errors import LabError, LabTimeoutError
from .lab import LAB_PHONES, Lab, LabConfig, PhoneSpec, debian_mirror, default_cache_dir
from .phone import PHONE_STATES, Phone, PhoneEvent

__all__ = [
    "LAB_PHONES",
    "PHONE_STATES",
    "AriConfig",
    "AriEvent",
    "AriEventRecorder",
    "Lab",
    "LabConfig",
    "LabError",
    "LabTimeoutError",
    "Phone",
    "PhoneEvent",
    "PhoneSpec",
    "ari_request",
    "channel_of",
    "debian_mirror",
    "default_cache_dir",
]
