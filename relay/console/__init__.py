"""The operator console at ``/console/``: server-rendered pages on the admin operations.

Off (404) without ``admin.token``. Jinja2 through aiohttp-jinja2, autoescaped; one small
script and one stylesheet served from the package (no CDN, works offline); a strict
Content-Security-Policy allows nothing else.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import aiohttp_jinja2
import jinja2
from aiohttp import web
from markupsafe import Markup

from relay.admin.keys import CONFIG
from relay.console import views
from relay.console.sessions import Sessions

STATIC = Path(__file__).parent / "static"


def when(ms: int | None) -> Markup:
    """A time the script shows in the viewer's zone; UTC on hover (and without script)."""
    if ms is None:
        return Markup("—")
    moment = datetime.fromtimestamp(ms / 1000, UTC)
    iso = moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    text = moment.strftime("%Y-%m-%d %H:%M:%S UTC")
    return Markup('<time datetime="{0}" title="{1}">{1}</time>').format(iso, text)


def sparkline(series: list[tuple[int, int]], width: int = 120, height: int = 24) -> Markup:
    """Deliveries (green) and failures (red) per minute as an inline SVG."""
    peak = max([1, *(d for d, _ in series), *(f for _, f in series)])
    step = width / max(1, len(series) - 1)

    def points(values: list[int]) -> str:
        return " ".join(
            f"{i * step:.1f},{height - 1 - (v / peak) * (height - 2):.1f}"
            for i, v in enumerate(values)
        )

    delivered = points([d for d, _ in series])
    failed = points([f for _, f in series])
    total_d, total_f = sum(d for d, _ in series), sum(f for _, f in series)
    return Markup(
        '<svg class="spark" width="{w}" height="{h}" viewBox="0 0 {w} {h}" role="img">'
        "<title>last {n} min: {d} delivered, {f} failed</title>"
        '<polyline class="ok" fill="none" points="{pd}"/>'
        '<polyline class="bad" fill="none" points="{pf}"/></svg>'
    ).format(w=width, h=height, n=len(series), d=total_d, f=total_f, pd=delivered, pf=failed)


def add_console_routes(app: web.Application) -> None:
    env = aiohttp_jinja2.setup(
        app,
        loader=jinja2.PackageLoader("relay.console", "templates"),
        autoescape=jinja2.select_autoescape(["html"]),
    )
    env.filters["when"] = when
    env.globals["sparkline"] = sparkline
    app[views.SESSIONS] = Sessions(app[CONFIG]().console.session_ttl)
    app.add_routes(ROUTES)


CONSOLE_ENTRY = "/console/"
ROUTES: tuple[web.RouteDef, ...] = (
    web.get("/console", views.to_console),
    web.get("/console/login", views.login_page),
    web.post("/console/login", views.login),
    web.post("/console/logout", views.page(views.logout)),
    web.get(CONSOLE_ENTRY, views.page(views.overview)),
    web.get("/console/events", views.page(views.events)),
    web.get("/console/events/{id}", views.page(views.event)),
    web.post("/console/events/{id}/replay", views.page(views.replay)),
    web.get("/console/deadletters", views.page(views.deadletters)),
    web.post("/console/deadletters/redrive", views.page(views.redrive)),
    web.post("/console/subscribers/{name}/{action}", views.page(views.toggle)),
    web.get("/console/static/{name}", views.static),
)
"""The console's pages; the AsyncAPI document lists only its entry."""
