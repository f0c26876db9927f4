"""HTML reports: SQL -> view model -> jinja2 (autoescape on) -> one self-contained file."""
