"""Integration tests against a real Asterisk 22 with real SIP phones (see ``lab``)."""
