"""What probing a compiler runs, as a recording wrapper logs each call's arguments."""

from __future__ import annotations

#: What detecting a GCC-compatible compiler runs, by first argument: preprocess the detection
#: file (its macros say what it is), --version, -dumpmachine, -### (the compiler proper).
PROBE = ["-E", "--version", "-dumpmachine", "-###"]


def is_linker_probe(call: str) -> bool:
    """A call of ``linkers.fastest_linker``, which then tries the linkers installed here."""
    return "sobuild-linker-" in call or call.startswith(("-fuse-ld=", "-print-prog-name=ld."))


def detection_calls(calls: list[str]) -> list[str]:
    """``calls`` without those of the linker probe (how many depends on what is installed)."""
    return [call for call in calls if not is_linker_probe(call)]
