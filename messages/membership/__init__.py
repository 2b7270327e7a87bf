"""The membership protocol, sans I/O: the state and its rules (merge, convergence, leader
actions), failure detection, downing, gossip choices, events, the protocol's wire messages and
their validation, and the step function with its inputs and effects.

Nothing here blocks, owns a thread or a socket, or reads a clock: time and randomness come in
as arguments, so every rule can be driven by tests and by the deterministic simulator
(``messages.testing``).
"""

__all__: list[str] = []
