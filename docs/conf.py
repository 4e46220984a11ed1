"""Sphinx configuration of the fastapi-cashier documentation."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from fastapi_cashier.__about__ import __version__  # noqa: E402

project = "fastapi-cashier"
author = "fastapi-cashier developers"
copyright = "fastapi-cashier developers"
version = ".".join(__version__.split(".")[:2])
release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.intersphinx",
]

# No intersphinx_mapping on purpose: the documentation builds without network access.

source_suffix = {".rst": "restructuredtext"}
root_doc = "index"
exclude_patterns = ["_build"]
language = "en"
pygments_style = "sphinx"

# -- autodoc / napoleon ------------------------------------------------------------------------

autodoc_member_order = "bysource"
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
napoleon_google_docstring = True
napoleon_numpy_docstring = False
# "Attributes:" sections become :ivar: fields, so they never duplicate the attributes that
# autodoc documents from the class body.
napoleon_use_ivar = True
napoleon_use_rtype = False

# -- HTML --------------------------------------------------------------------------------------

html_theme = "furo"
html_title = f"fastapi-cashier {release}"
html_static_path = ["_static"]
# Wide tables scroll inside their own box instead of overflowing the page.
html_css_files = ["tables.css"]
