"""The ``membership`` command (``main``), its ``demo`` and the tables it prints (``render``)."""

__all__: list[str] = []
