# Strategy: the architecture picture is drawn from the code at build time, so it cannot drift.
# The layering and the import graph live in sidkit_layering (no Sphinx there, so the tests can
# use them); this extension only turns them into a graphviz node. Graphviz renders the picture
# to SVG during the build (Debian's ``graphviz``); nothing is fetched when a reader opens the page.
"""Sphinx extension: ``.. sidkit-layers::`` draws sidkit's package layers and data flow."""

from __future__ import annotations

from typing import Any

from docutils import nodes
from sidkit_layering import dot, modules
from sphinx.application import Sphinx
from sphinx.ext.graphviz import graphviz
from sphinx.util.docutils import SphinxDirective

__all__ = ["SidkitLayersDirective", "setup"]


class SidkitLayersDirective(SphinxDirective):
    """``.. sidkit-layers::`` -- the package layers, their modules, imports and data flow."""

    has_content = False

    def run(self) -> list[nodes.Node]:
        for _name, path in modules():
            self.env.note_dependency(str(path))
        node = graphviz()
        node["code"] = dot()
        node["options"] = {"docname": self.env.docname}
        node["alt"] = "sidkit's families in layers, with the imports and the data flow"
        node["align"] = "center"
        return [node]


def setup(app: Sphinx) -> dict[str, Any]:
    """Register ``.. sidkit-layers::`` (needs sphinx.ext.graphviz)."""
    app.setup_extension("sphinx.ext.graphviz")
    app.add_directive("sidkit-layers", SidkitLayersDirective)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
