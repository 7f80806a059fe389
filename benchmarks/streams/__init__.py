"""Vendored benchmark streams (see README.md): a Stasis-application generator and a recording."""
