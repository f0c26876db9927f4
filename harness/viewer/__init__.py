"""`harness view`: a local, read-only web app over the store (runs, tasks, items, one item side
by side with a word diff, lineage), server-rendered with Starlette and jinja2, no script."""
