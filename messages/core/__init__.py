"""The pure protocol core: membership state and its rules, failure detection, downing, gossip
choices, causal delivery, load-balancing strategies, the step function and its simulator.

Nothing here blocks, owns a thread or a socket, or reads a clock: time and randomness come in
as arguments, so every rule can be driven by tests and by the deterministic simulator.
"""

__all__: list[str] = []
