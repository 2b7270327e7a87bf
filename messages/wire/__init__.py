"""What crosses the network: wire message types, framing, validation and the application codec.

Everything decoded here is hostile until ``validation`` has checked it; nothing is unpickled.
"""

__all__: list[str] = []  # nothing here: use the submodules
