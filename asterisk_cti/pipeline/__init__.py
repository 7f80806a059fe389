"""The threads, in flow order::

    websocket --transport/frames--> reactor thread --> ring (lock-guarded, bounded)
        --> processor thread (dedup, decode, route, call model, waiters; sync over REST)
        --> dispatcher lanes (ThreadPoolExecutor, ordered per line) --> delivery --> listeners

``transport`` (the handshake and the socket), ``frames`` (the RFC 6455 reader), ``reactor``
(owns the websocket, reconnects with :class:`~asterisk_cti.backoff.Backoff`), ``markers``
(every non-frame ring entry), ``ring`` (the circular buffer), ``processor`` (one batch loop),
``routing`` (lane keys, pure), ``sync`` (connect handshake, resync, repair, the REST worker),
``protocols`` (what the processor needs of the model and the reactor), ``waiters`` (blocking
waits fed by the processor), ``dispatcher`` (ordered lanes), ``delivery`` (listener registry,
dispatch groups, raw routing).
"""
