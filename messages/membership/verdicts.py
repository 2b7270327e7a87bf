"""Which members count as unreachable: the reachability table read as one shared verdict.

A pure function of the gossiped members and rows, so every member that holds the same table
counts the same members unreachable, and keep-majority (``downing``) then keeps the same side.
Only live (not DOWN) observers' rows are read, and some observers are not taken at their word:

- A member confirmed *gone* (marked terminated, a dial refused here and by every relay, by an
  observer nobody marks terminated) has no process left: its row is frozen in the past (a member
  that crashed or downed itself while cut off still accuses those it could not reach) and is
  set aside; it counts as unreachable. Whatever it decided while alive either reached a live
  member in gossip (and a DOWN mark is never undone) or died with it, so no live member holds
  a decision the rest could contradict. Under a firewall that rejects both ways, each side
  marks the other terminated, every marking observer is marked, and nobody is gone.

- A *suspect* is a counted observer whose own row alone already makes it lose keep-majority (it
  will down itself whatever else it learns) and that an observer which is no such predicted
  self-downer accuses. Its verdicts are ignored (a deaf member accuses everyone, and everyone
  accuses it) and it counts as unreachable, so the side that keeps downs it: never excused. Its
  own view holds its row, so there it is a suspect too, or it loses on the plain union. A
  predicted self-downer nobody else accuses (one side of a clean partition, seen from inside)
  is read as it is: the union, as before.
- *Indirectly connected* members (Pekko's term: an observer that is also accused, which a clean
  partition seen from one side never gives) are split by the fewest of them whose removal leaves
  no accusation among the rest (a minimum vertex cover of their accusation graph): those count
  as unreachable, so they are downed, and their own verdicts are set aside. Of several such
  covers, the one that leaves the fewest members unreachable is taken (a member that cannot
  hear, covered, takes its verdicts with it; the one it accuses, covered, leaves them standing:
  seed 848 of the simulator lost every member so). Only while every one
  of them still has a *witness*, a member outside the cover and not counted unreachable that
  neither accuses it nor is accused by it: what a covered member decided then has a path to the
  rest. A covered member nobody hears any more may have acted on its verdicts alone (a leader
  that downed the far side, then was cut off before that spread: seed 465 of the simulator made
  a split brain of it), so without witnesses the picture is read by the union, as before.

Everything else is the union of verdicts, as before: whoever a trusted observer accuses.

``readings_set_aside`` reads the table again with the rows of the fewest members set aside,
witnesses or not. No verdict is taken on those readings: a member that would keep on one of
them only waits before it downs itself (``detection``), since such rows may be stale.

``only_crashes`` tells a picture that is nothing but confirmed crashes (every accusation a
refused dial, no accused member accusing anyone), which ``detection`` downs after the shorter
``crash_down_after``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from messages.address import Address
from messages.member import Member, MemberStatus
from messages.membership.merging import ReachabilityRow, address_order

__all__ = [
    "EXACT_COVER_LIMIT",
    "counted_unreachable",
    "fewest_to_down",
    "gone_members",
    "only_crashes",
    "predicted_self_downers",
    "readings_set_aside",
]

COUNTED = frozenset({MemberStatus.UP, MemberStatus.LEAVING})
"""The members keep-majority counts (``downing``)."""
EXACT_COVER_LIMIT = 20
"""Above this many indirectly connected members, the cover is greedy rather than exact."""
COVERS_LIMIT = 32
"""At most this many minimum covers are compared (``counted_unreachable``)."""

Graph = Mapping[str, frozenset[str]]


def counted_unreachable(
    members: Mapping[str, Member], rows: Iterable[ReachabilityRow]
) -> frozenset[str]:
    """The members that count as unreachable: members gone, suspects, the witnessed cover of
    the indirectly connected (of the minimum covers whose members all have witnesses, the one
    that leaves the fewest unreachable, the first in preference on a tie), and whoever the
    other live observers accuse."""
    suspected, trusted = _trusted(members, rows)
    union = frozenset().union(*trusted.values()) | suspected
    tangle = _tangle(trusted)
    if not tangle:
        return union  # the common case: a clean picture, no cover to search
    best: frozenset[str] | None = None
    for cover in fewest_to_down(tangle, {u: address_order(members[u]) for u in tangle}):
        kept = frozenset().union(*(row for o, row in trusted.items() if o not in cover))
        unreachable = kept | suspected | cover
        witnessed = all(_witnessed(x, members, trusted, unreachable) for x in cover)
        if witnessed and (best is None or len(unreachable) < len(best)):
            best = unreachable
    return union if best is None else best


def readings_set_aside(
    members: Mapping[str, Member], rows: Iterable[ReachabilityRow]
) -> tuple[frozenset[str], ...]:
    """The unreachable sets the table would give if the rows of the fewest members were set
    aside, witnesses or not: each minimum cover of the indirectly connected (counted
    unreachable, their rows set aside, the other rows read), and each minimum cover of the
    whole accusation graph (the fewest members whose removal leaves no accusation among the
    rest: they alone are unreachable), with the suspects and the gone. Not a verdict: a rule
    that only makes a self-down wait reads them (``downing.keeps_on_a_reading_set_aside``)."""
    suspected, trusted = _trusted(members, rows)
    tangle = _tangle(trusted)
    rank = {uuid: address_order(member) for uuid, member in members.items()}
    readings = [
        frozenset().union(*(row for o, row in trusted.items() if o not in cover))
        | suspected
        | cover
        for cover in fewest_to_down(tangle, rank)
    ]
    edges: dict[str, set[str]] = {}
    for observer, row in trusted.items():
        for subject in row:
            edges.setdefault(observer, set()).add(subject)
            edges.setdefault(subject, set()).add(observer)
    whole = {uuid: frozenset(neighbours) for uuid, neighbours in edges.items()}
    readings += [cover | suspected for cover in fewest_to_down(whole, rank)]
    return tuple(readings)


def _trusted(
    members: Mapping[str, Member], rows: Iterable[ReachabilityRow]
) -> tuple[frozenset[str], dict[str, frozenset[str]]]:
    """The suspects and the gone (set aside, counted unreachable), and the other live
    observers' non-empty verdicts, read as they are."""
    live = _live_rows(members, rows)
    gone = _gone(live)
    verdicts = {  # an observer marking itself is invalid input: read without it (stay total)
        row.observer: row.unreachable.intersection(members) - {row.observer}
        for row in live
        if row.observer not in gone
    }
    predicted = predicted_self_downers(members, verdicts)
    confirmed = frozenset().union(*(row for o, row in verdicts.items() if o not in predicted))
    suspected = (predicted & confirmed) | gone.intersection(members)
    trusted = {o: row for o, row in verdicts.items() if o not in suspected and row}
    return suspected, trusted


def gone_members(members: Mapping[str, Member], rows: Iterable[ReachabilityRow]) -> frozenset[str]:
    """The members whose process is gone (``_gone``, read from the live observers' rows):
    no side of any partition can count them among its reachable members."""
    return _gone(_live_rows(members, rows)).intersection(members)


def only_crashes(members: Mapping[str, Member], rows: Iterable[ReachabilityRow]) -> bool:
    """Whether every live observer's accusation is a confirmed crash (marked ``terminated``)
    and no accused member accuses anyone: no suspect, nobody indirectly connected, so the
    picture is one side that lost processes, not two sides of a cut."""
    live = [
        row
        for row in rows
        if (member := members.get(row.observer)) is not None
        and member.status is not MemberStatus.DOWN
        and row.unreachable
    ]
    accused = frozenset().union(*(row.unreachable for row in live))
    return all(row.unreachable <= row.terminated and row.observer not in accused for row in live)


def _live_rows(
    members: Mapping[str, Member], rows: Iterable[ReachabilityRow]
) -> list[ReachabilityRow]:
    """The rows of observers that are members and not DOWN: the only verdicts read."""
    return [
        row
        for row in rows
        if (member := members.get(row.observer)) is not None
        and member.status is not MemberStatus.DOWN
    ]


def _gone(live: Iterable[ReachabilityRow]) -> frozenset[str]:
    """Members whose process is gone: marked terminated (a refused dial, confirmed by every
    relay) by an observer that nobody marks terminated. Their rows are frozen in the past and
    set aside. Under a firewall that rejects both ways, each side marks the other terminated,
    every marking observer is marked too, and nobody is gone: the rows are read as before."""
    marks = {row.observer: row.terminated - {row.observer} for row in live}
    marked = frozenset().union(*marks.values())
    return frozenset().union(*(t for o, t in marks.items() if o not in marked))


def _tangle(trusted: Mapping[str, frozenset[str]]) -> Graph:
    """The accusation graph (undirected) among the indirectly connected: observers that are
    accused too."""
    tangled = frozenset().union(*trusted.values()).intersection(trusted)
    graph: dict[str, set[str]] = {uuid: set() for uuid in tangled}
    for observer in tangled:
        for subject in trusted[observer] & tangled:
            graph[observer].add(subject)
            graph[subject].add(observer)
    return {uuid: frozenset(neighbours) for uuid, neighbours in graph.items()}


def _witnessed(
    covered: str,
    members: Mapping[str, Member],
    trusted: Mapping[str, frozenset[str]],
    unreachable: frozenset[str],
) -> bool:
    """Some live member that stays (not ``unreachable``) and ``covered`` accuse neither the
    other: the covered member's gossip, and any decision in it, still reaches the rest."""
    accuses = trusted.get(covered, frozenset())
    return any(
        uuid not in unreachable
        and uuid != covered
        and member.status in COUNTED
        and uuid not in accuses
        and covered not in trusted.get(uuid, frozenset())
        for uuid, member in members.items()
    )


def predicted_self_downers(
    members: Mapping[str, Member], verdicts: Mapping[str, frozenset[str]]
) -> frozenset[str]:
    """Counted observers whose own row alone makes them lose keep-majority (as ``downing``
    counts it: more counted members accused than spared, or a tie with the lowest accused)."""
    counted = [m for m in members.values() if m.status in COUNTED]
    if not counted:
        return frozenset()
    ids = frozenset(m.uuid for m in counted)
    lowest = min(counted, key=address_order).uuid
    found = set()
    for observer, row in verdicts.items():
        if observer not in ids:
            continue  # a JOINING or EXITING observer's fate cannot be predicted: read as it is
        there = len(row & ids)
        here = len(ids) - there
        if there > here or (there == here and lowest in row):
            found.add(observer)
    return frozenset(found)


def fewest_to_down(
    graph: Graph, rank: Mapping[str, tuple[Address, str]]
) -> tuple[frozenset[str], ...]:
    """The minimum vertex covers of ``graph`` (adjacency sets, symmetric), at most
    ``COVERS_LIMIT`` of them: exact up to ``EXACT_COVER_LIMIT`` vertices, one degree-greedy
    cover beyond; none for a graph without edges. Deterministic, in order of preference: the
    first downs the highest ``rank`` first."""
    edged = {u: n for u, n in graph.items() if n}
    if not edged:
        return ()
    order = sorted(edged, key=rank.__getitem__, reverse=True)
    greedy = _greedy_cover(edged, order)
    if len(order) > EXACT_COVER_LIMIT:
        return (greedy,)
    best = _search(edged, order, frozenset(), len(greedy) + 1)
    if best is None:
        return (greedy,)
    found: list[frozenset[str]] = []
    _every(edged, order, frozenset(), len(best), found)
    return tuple(found) or (best,)


def _search(
    graph: Graph, order: list[str], chosen: frozenset[str], bound: int
) -> frozenset[str] | None:
    """The first cover (in ``order``'s preference) with fewer than ``bound`` vertices
    containing ``chosen``, or None: branch on the first vertex with an uncovered edge, in the
    cover or all its uncovered neighbours in it; prune by a maximal matching's size."""
    if len(chosen) >= bound:
        return None
    left = {u: n - chosen for u, n in graph.items() if u not in chosen and n - chosen}
    if not left:
        return chosen
    if len(chosen) + _matching_size(left, order) >= bound:
        return None
    pick = next(u for u in order if u in left)
    best = None
    for extra in (frozenset({pick}), left[pick]):
        found = _search(graph, order, chosen | extra, bound)
        if found is not None:
            best, bound = found, len(found)
    return best


def _every(
    graph: Graph, order: list[str], chosen: frozenset[str], size: int, found: list[frozenset[str]]
) -> None:
    """Append to ``found`` the covers of ``size`` vertices containing ``chosen``, by the same
    branching as ``_search`` (every cover holds a vertex or all its neighbours), in its order,
    until ``COVERS_LIMIT`` are found."""
    if len(found) >= COVERS_LIMIT or len(chosen) > size:
        return
    left = {u: n - chosen for u, n in graph.items() if u not in chosen and n - chosen}
    if not left:
        if len(chosen) == size and chosen not in found:
            found.append(chosen)
        return
    if len(chosen) + _matching_size(left, order) > size:
        return
    pick = next(u for u in order if u in left)
    for extra in (frozenset({pick}), left[pick]):
        _every(graph, order, chosen | extra, size, found)


def _matching_size(graph: Graph, order: list[str]) -> int:
    """The size of a greedy maximal matching: a lower bound on any vertex cover."""
    matched: set[str] = set()
    for u in order:
        if u in graph and u not in matched:
            partner = next((v for v in order if v in graph[u] and v not in matched), None)
            if partner is not None:
                matched |= {u, partner}
    return len(matched) // 2


def _greedy_cover(graph: Graph, order: list[str]) -> frozenset[str]:
    """Repeatedly down the vertex with the most uncovered edges (the highest rank on a tie)."""
    position = {u: i for i, u in enumerate(order)}
    chosen: set[str] = set()
    left = {u: set(n) for u, n in graph.items()}
    while left:
        pick = max(left, key=lambda u: (len(left[u]), -position[u]))
        chosen.add(pick)
        for v in left.pop(pick):
            left[v].discard(pick)
            if not left[v]:
                del left[v]
    return frozenset(chosen)
