"""Report writers: versioned JSON and Markdown."""

from edgest.report.writers import read_json, render_markdown, write_reports

__all__ = ["read_json", "render_markdown", "write_reports"]
