"""Text written by agents, made safe to print on a terminal.

Anything an agent stored (a pattern's description, an id read back from an import, a label) may
hold control characters: an escape sequence can clear the screen, move the cursor or fake lines of
a report. Wherever such text is printed for a person, it goes through :func:`printable`, which
shows each control character as a visible escape instead of obeying it.
"""

from __future__ import annotations

import unicodedata

# Characters that change how the rest of a line is displayed (bidirectional overrides and
# isolates) are escaped too: they can make a terminal show text in another order than stored.
_BIDI = {chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200E, 0x200F, 0x061C)}


def _escape(ch: str) -> str:
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """``text`` with control, format and line-breaking characters shown as ``\\xNN`` escapes."""
    if text.isprintable():
        return text
    return "".join(
        _escape(ch)
        if ch in _BIDI or (not ch.isprintable() and unicodedata.category(ch)[0] in ("C", "Z") and ch != " ")
        else ch
        for ch in text
    )
