"""The actors of a pykka-membership node and the public facade."""
