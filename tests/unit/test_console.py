"""The console's templates (relay/console/templates): the list table every list page uses."""

from __future__ import annotations

import re

import jinja2
import pytest

ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("relay.console", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
)
PAGE = (
    '{% from "macros.html" import listing %}'
    '{% call(n) listing(["Name", "Count", ""], items, "None yet.", id=id) %}'
    "<tr><td>{{ n.name }}</td><td>{{ n.count }}</td><td></td></tr>"
    "{% endcall %}"
)


def render(items: list[dict[str, object]], id: str | None = None) -> str:
    """The page with the white space between tags taken out."""
    return re.sub(r">\s+<", "><", ENV.from_string(PAGE).render(items=items, id=id)).strip()


@pytest.mark.parametrize("id", [None, "results"])
def test_a_listing_has_one_header_row_and_a_row_per_item(id: str | None) -> None:
    html = render([{"name": "crm", "count": 2}, {"name": "<b>", "count": 0}], id)
    table = '<table id="results">' if id else "<table>"
    assert html == (
        f"{table}<thead><tr><th>Name</th><th>Count</th><th></th></tr></thead><tbody>"
        "<tr><td>crm</td><td>2</td><td></td></tr>"
        "<tr><td>&lt;b&gt;</td><td>0</td><td></td></tr>"  # the caller's block is escaped
        "</tbody></table>"
    )


def test_an_empty_listing_says_so_across_every_column() -> None:
    assert render([]) == (
        "<table><thead><tr><th>Name</th><th>Count</th><th></th></tr></thead><tbody>"
        '<tr><td colspan="3" class="muted">None yet.</td></tr></tbody></table>'
    )
