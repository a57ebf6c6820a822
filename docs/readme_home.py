"""MkDocs hook: the site's home page is the README itself, not a copy that drifts from it. Its links into
``docs/`` become the site's own, and its pointer to the docs becomes the site's welcome."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

POINTER = re.compile(r"The documentation lives in .*?This page is the tour\.", re.S)
WELCOME = (
    "These pages are the documentation (`make docs` builds them into a static site with MkDocs, in strict\n"
    "mode, as CI does: a broken link or anchor fails the build). This page is the tour; the menu has the rest."
)


def readme_as_home(readme: str) -> str:
    if not POINTER.search(readme):
        raise ValueError("README.md no longer says where the documentation lives: update docs/readme_home.py")
    return POINTER.sub(WELCOME, readme).replace("](docs/", "](")


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any, **_: Any) -> str:
    if page.file.src_uri != "index.md":
        return markdown
    return readme_as_home((Path(config["config_file_path"]).parent / "README.md").read_text())
