"""The threads, in flow order::

    websocket --transport--> reactor thread --> ring (lock-guarded, bounded)
        --> processor thread (decode, filter, call model, waiters)
        --> dispatcher lanes (ThreadPoolExecutor, ordered per line) --> listeners

``transport`` (handshake and RFC 6455 frames), ``reactor`` (owns the websocket, reconnects),
``ring`` (the circular buffer), ``processor`` (one batch loop), ``dispatcher`` (ordered
lanes), ``waiters`` (blocking waits fed by the processor).
"""
