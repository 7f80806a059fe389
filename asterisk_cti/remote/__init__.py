"""A desktop's CTI client through the call-centre server: :class:`RemoteClient`, the same
listeners, line snapshots and blocking ``client.control`` as :class:`~asterisk_cti.CtiClient`,
over the server's MQTT 5 broker. Moving an application from direct ARI to the server changes
only how it builds its client::

    cti = CtiClient(CtiConfig(url=..., username=..., password=..., app=...))    # direct
    cti = RemoteClient(RemoteConfig(site="paris", agent="1000", password=...,   # server
                                    broker_host="cti.example"))

Needs the ``server`` extra (``pip install 'asterisk-cti[server]'``, paho-mqtt 2); the core
package never imports this one. See ``docs/callcentre.rst``.
"""

from __future__ import annotations

from .client import RemoteClient
from .config import RemoteConfig
from .control import RemoteControl
from .errors import BrokerRefusedError, RemoteError, ServerUnavailableError, error_from_payload

__all__ = ["BrokerRefusedError", "RemoteClient", "RemoteConfig", "RemoteControl",
           "RemoteError", "ServerUnavailableError", "error_from_payload"]
