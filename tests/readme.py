"""The README's code, as tests run it: a README change is then a tested change."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def section(heading: str, path: Path = README) -> str:
    """The text under the Markdown heading whose title is ``heading`` (any level), up to the next heading."""
    text = path.read_text()
    match = re.search(rf"^#+ {re.escape(heading)}\n(.*?)(?=^#+ |\Z)", text, re.DOTALL | re.MULTILINE)
    if match is None:
        raise LookupError(f"{path.name} has no heading {heading!r}")
    return match.group(1)


def code_blocks(heading: str, lang: str = "sh", path: Path = README) -> list[str]:
    """The fenced ``lang`` blocks of that section, in order."""
    return re.findall(rf"^```{lang}\n(.*?)^```", section(heading, path), re.DOTALL | re.MULTILINE)


def commands(block: str) -> list[str]:
    """The block's shell commands, one per entry: continuation lines joined, blank lines dropped."""
    joined = re.sub(r"\\\n\s*", "", block)
    return [line.strip() for line in joined.splitlines() if line.strip()]
