"""The deterministic simulator: N members of the real step function over a simulated network
and clock, seeded faults, and the invariants checked after every step.
"""

__all__: list[str] = []
