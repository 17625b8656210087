"""Sphinx configuration of skvae's documentation site.

Build it (from the repository root, after ``pip install -e ".[docs]"``)::

    python3 -m sphinx -W --keep-going -b html docs docs/_build/html

``-D plot_gallery=0`` skips running the gallery's examples (their pages are
built without figures), as CI does.
"""

import os
import sys
from pathlib import Path

import skvae

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
EXAMPLES = ROOT / "examples"

project = "skvae"
author = "the skvae developers"
copyright = "the skvae developers"
release = version = skvae.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "README.md"]
templates_path = ["_templates"]

# Markdown pages (MyST): $...$ maths, ::: fences, headings up to ### get anchors.
myst_enable_extensions = ["dollarmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# API reference: one page per public name (docs/api/generated/, not committed).
autosummary_generate = True
autosummary_imported_members = True
autodoc_default_options = {"members": False, "inherited-members": False}
autodoc_typehints = "none"
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_validation_checks = set()
# numpydoc turns "Parameters" types into cross-references; plain words
# ("int", "array-like") are not objects, so they stay text.
numpydoc_xref_param_type = False

intersphinx_mapping = {
    "python": ("https://docs.python.org/3", None),
    "numpy": ("https://numpy.org/doc/stable", None),
    "sklearn": ("https://scikit-learn.org/stable", None),
    "torch": ("https://docs.pytorch.org/docs/stable", None),
    "pandas": ("https://pandas.pydata.org/docs", None),
    "matplotlib": ("https://matplotlib.org/stable", None),
}
# The build must work offline (and CI must not depend on four other sites):
# inventories are fetched only when SKVAE_DOCS_INTERSPHINX=1.
if os.environ.get("SKVAE_DOCS_INTERSPHINX") != "1":
    intersphinx_mapping = {}

# Markdown guide pages use {func}`skvae.save`-style roles; names that Sphinx
# cannot resolve (torch's, when offline) stay plain code instead of warning.
nitpicky = False
suppress_warnings = ["myst.header"]

html_theme = "pydata_sphinx_theme"
html_title = f"skvae {release}"
html_static_path = ["_static"]
html_css_files = ["skvae.css"]
html_theme_options = {
    "github_url": None,
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "header_links_before_dropdown": 5,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": [], "install": []}
html_show_sourcelink = False


# -- the gallery (sphinx-gallery) -------------------------------------------
# examples/README.rst heads the gallery; examples/plot_*.py are run and their
# figures kept. -D plot_gallery=0 builds the pages without running them.
HAS_GALLERY = (EXAMPLES / "README.rst").exists() or (EXAMPLES / "README.txt").exists()
if HAS_GALLERY:
    extensions.append("sphinx_gallery.gen_gallery")
    sphinx_gallery_conf = {
        "examples_dirs": "../examples",
        "gallery_dirs": "auto_examples",
        "filename_pattern": r"/plot_",
        "ignore_pattern": r"(__init__|_common|third_party_plugin)",
        "plot_gallery": "True",
        "within_subsection_order": "FileNameSortKey",
        "download_all_examples": False,
        "remove_config_comments": True,
        "matplotlib_animations": False,
        "image_scrapers": ("matplotlib",),
        "reset_modules": ("matplotlib",),
        "show_memory": False,
        # "Examples using X" on each API page (the minigallery directive).
        "doc_module": ("skvae", "skvae_plugins"),
        "backreferences_dir": "api/generated/backreferences",
    }
    sys.path.insert(0, str(EXAMPLES))  # the examples import examples/_common.py
    # The examples train a fixed budget of epochs (their posts'), not to
    # convergence: a run of the script says so, a gallery page need not (the
    # warning would show the build machine's path in the page).
    import warnings

    from sklearn.exceptions import ConvergenceWarning

    warnings.filterwarnings("ignore", category=ConvergenceWarning)

# Pages that exist only once another helper's work has landed (the gallery,
# docs/deployment.md): a line of index.rst or user_guide.rst that names one
# is kept (less its ".. optional: " prefix) when the page exists, and dropped
# otherwise, so that the build has no dangling reference either way.
OPTIONAL_PAGES = {
    "user_guide": {"deployment": (DOCS / "deployment.md").exists()},
    "index": {"auto_examples/index": HAS_GALLERY},
}


def _optional_lines(app, docname, source):
    for target, present in OPTIONAL_PAGES.get(docname, {}).items():
        lines = source[0].splitlines(keepends=True)
        source[0] = "".join(
            line.replace(".. optional: ", "")
            for line in lines
            if present or target not in line
        )


def setup(app):
    app.connect("source-read", _optional_lines)
    if not HAS_GALLERY:  # -D plot_gallery=0 and the API pages' "Examples using X"
        from docutils.parsers.rst import Directive

        app.add_config_value("plot_gallery", "True", "html")

        class NoGallery(Directive):
            optional_arguments = 1
            final_argument_whitespace = True
            option_spec = {"add-heading": str, "heading-level": str}

            def run(self):
                return []

        app.add_directive("minigallery", NoGallery)
