"""Messages between the actors of one node (they never travel; some carry an ``ActorRef``)."""

__all__: list[str] = []
