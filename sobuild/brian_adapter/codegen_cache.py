"""Brian2's in-memory @cached code generation, persisted in the sobuild store (being written)."""


def install() -> None:
    """Route Brian2's @cached functions through the persistent cache."""
