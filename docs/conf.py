"""Sphinx configuration for asterisk-cti."""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))

project = "asterisk-cti"
author = "asterisk-cti developers"
extensions = ["sphinx.ext.autodoc", "sphinx.ext.viewcode"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
# the fragments of guarantees.rst are included, not documents of their own
exclude_patterns = ["_build", "guarantees/*.inc", "**/*.inc"]
html_theme = "alabaster"
nitpicky = False
suppress_warnings = ["ref.python"]
