"""SoBuildCodeObject: a Brian2 code object compiled by sobuild (being written)."""

from brian2.codegen.codeobject import CodeObject


class SoBuildCodeObject(CodeObject):
    class_name = "sobuild"

    @classmethod
    def is_available(cls) -> bool:
        return False
