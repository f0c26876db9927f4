"""The `harness view` web app: Starlette routes over read-only store reads, rendered with jinja2
(autoescape on: prompts and outputs are untrusted text) under a content-security policy that
allows no script at all, so nothing a model wrote can run in the reader's browser.

Each request opens the store read-only and closes it before answering, so the viewer never holds
the file between requests: a run writing to the store is never blocked by a browser tab."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import quote, urlencode

from harness.errors import StoreError, require
from harness.report.formatting import figure, size
from harness.store.db import Store
from harness.viewer import queries
from harness.viewer.diff import changed_words, word_diff

CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src data:; form-action 'self'; base-uri 'none'; "
       "frame-ancestors 'none'")
"""The report's policy (no script, no fetches, inline styles and data: images only), plus: forms
submit only to the viewer, and no page of it can be framed by another site."""

HEADERS = {"Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
           "Cache-Control": "no-store"}


def _q(text: str) -> str:
    return quote(str(text), safe="")


def run_url(run_id: str) -> str:
    """The stable URL of a run."""
    return f"/runs/{_q(run_id)}"


def task_url(suite: str, task: str) -> str:
    """The stable URL of a task (its metric table)."""
    return f"/tasks/{_q(suite)}/{_q(task)}"


def items_url(suite: str, task: str, **params) -> str:
    """The items of a task, with these filters."""
    kept = {k: v for k, v in params.items() if v not in (None, "", False)}
    return task_url(suite, task) + "/items" + ("?" + urlencode(kept) if kept else "")


def item_url(suite: str, task: str, sample_id: str, **params) -> str:
    """The stable URL of one item of a task (sample ids may hold '/' or '#': quoted whole)."""
    kept = {k: v for k, v in params.items() if v not in (None, "")}
    return task_url(suite, task) + "/items/" + _q(sample_id) + ("?" + urlencode(kept) if kept else "")


def _templates():
    from jinja2 import ChoiceLoader, Environment, PackageLoader, StrictUndefined, select_autoescape

    env = Environment(loader=ChoiceLoader([PackageLoader("harness.viewer", "templates"), PackageLoader("harness.report", "templates")]),
                      autoescape=select_autoescape(["html", "j2"], default=True), undefined=StrictUndefined,
                      trim_blocks=True, lstrip_blocks=True)
    env.globals.update(num=figure, size=size, when=queries.when, run_url=run_url, task_url=task_url, items_url=items_url,
                       item_url=item_url, word_diff=word_diff, changed_words=changed_words)
    return env


# -- what each page shows: (store, path parameters, query parameters) -> template context --------


def runs_context(store: Store, path: dict, query) -> dict:
    f = queries.RunFilter.from_query(query)
    return {"title": "Runs", "filter": f, "runs": queries.runs(store, f), "facets": queries.facets(store)}


def run_context(store: Store, path: dict, query) -> dict:
    return {"title": "Run " + path["run_id"], "run": queries.run(store, path["run_id"])}


def task_context(store: Store, path: dict, query) -> dict:
    t = queries.task_table(store, path["suite"], path["task"])
    return {"title": f"{t.suite} / {t.task}", "t": t}


def items_context(store: Store, path: dict, query) -> dict:
    suite, task = path["suite"], path["task"]
    listing = queries.items(store, suite, task, queries.ItemFilter.from_query(query))
    return {"title": f"{suite} / {task}: items", "suite": suite, "task": task, "p": listing}


def item_context(store: Store, path: dict, query) -> dict:
    suite, task, sample_id = path["suite"], path["task"], path["sample_id"]
    variants = queries.item(store, suite, task, sample_id)
    names = [v["variant"] for v in variants]
    baseline = query.get("baseline", "") or queries.default_baseline(store, names)
    if baseline not in names:
        raise ValueError(f"baseline={baseline!r}: this item has outputs of {', '.join(names)}")
    return {"title": f"{task} / {sample_id}", "suite": suite, "task": task, "sample_id": sample_id, "variants": variants,
            "baseline": baseline, "base": next(v for v in variants if v["variant"] == baseline),
            "changed": len({v["content_hash"] for v in variants if v["content_hash"]}) > 1}


def lineage_context(store: Store, path: dict, query) -> dict:
    return {"title": "Lineage", "lineage": queries.lineage(store), "confidence": 0.95}


PAGES = [("/runs", "runs.html.j2", runs_context), ("/runs/{run_id}", "run.html.j2", run_context),
         ("/lineage", "lineage.html.j2", lineage_context), ("/tasks/{suite}/{task}", "task.html.j2", task_context),
         ("/tasks/{suite}/{task}/items", "items.html.j2", items_context),
         ("/tasks/{suite}/{task}/items/{sample_id:path}", "item.html.j2", item_context)]
"""Every page: its stable URL pattern, template and context builder."""


def create_app(store_path: Path):
    """The ASGI app over the store at `store_path` (read-only; never migrated or written)."""
    require("starlette", "harness view", "view")
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import HTMLResponse, RedirectResponse
    from starlette.routing import Route

    env = _templates()

    def page(name: str, status: int = 200, **context) -> HTMLResponse:
        return HTMLResponse(env.get_template(name).render(store=store_path, **context), status_code=status, headers=HEADERS)

    def endpoint(template: str, build):
        def respond(request: Request) -> HTMLResponse:
            # The store is opened read-only for this request only and closed before answering.
            try:
                with Store(store_path, read_only=True, migrate=False) as store:
                    context = build(store, request.path_params, request.query_params)
            except queries.NotFound as exc:
                return page("error.html.j2", 404, title="Not found", message=str(exc))
            except ValueError as exc:
                return page("error.html.j2", 400, title="Bad filter", message=str(exc))
            except StoreError as exc:
                return page("error.html.j2", 503, title="Store unavailable", message=exc.message)
            return page(template, **context)
        return respond

    async def error(request: Request, exc):
        return page("error.html.j2", exc.status_code, title="Not found" if exc.status_code == 404 else "Not allowed",
                    message=f"{request.url.path}: {exc.detail}")

    routes = [Route("/", lambda request: RedirectResponse("/runs", headers=HEADERS))]
    routes += [Route(path, endpoint(template, build)) for path, template, build in PAGES]
    # Only GET (and HEAD) routes exist; Starlette answers 405 to anything else: nothing here writes.
    return Starlette(routes=routes, exception_handlers={404: error, 405: error})
