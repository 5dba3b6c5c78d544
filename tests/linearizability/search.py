"""Wing & Gong's search with Lowe's just-in-time linearization and cache.

The history is a doubly linked list of call and return events in time order.
At each configuration the candidates are the calls before the first return
still in the list: exactly the operations that may be linearized next. The
search linearizes one (lifting its call and return out of the list), and
backtracks when it reaches a return whose operation is not linearized yet.
A configuration is the set of linearized operations and the model state; one
seen before is not explored again (Lowe, "Testing for linearizability",
2017, section 4: the cache of configurations). An operation whose outcome is
unknown has its return at infinity: the history is linearizable as soon as
only such returns are left.

Pruning rules keep ordinary histories, and the proof that one is not
linearizable, near linear time. Each only skips configurations from which no
linearization can follow, or linearizes an operation at once where any
linearization can be rearranged to do the same, so the answer is exact:
- A read that is a candidate and agrees with the current (known) state is
  linearized at once with no alternative: moving it earlier in any
  linearization that exists keeps it valid, since no candidate has returned
  before it was called.
- When the current state can never occur again (model.prunable), no write
  may come while a read that needs this state is still to be linearized.
- A blind write (one whose value no read needs) is linearized at once with
  no alternative when no read needs the current state: moved earlier it
  changes what no read sees.
- The other candidates are tried in the order the model prefers (the log:
  the order reads show), then by return time.
"""

import time

from models import FAIL

INF = float("inf")
HEAD, TAIL = 0, 1


class Undecided(Exception):
    """The search passed its limits (configurations or time)."""


class Limits:
    """Bounds for one or more searches: a number of configurations per search
    and a monotonic deadline shared by all."""

    def __init__(self, max_configs=500000, seconds=60.0):
        self.max_configs = max_configs
        self.deadline = time.monotonic() + seconds

    def left(self):
        return self.deadline - time.monotonic()


def linearizable(pops, model, limits):
    """Whether the prepared operations pops (sorted by call) can be
    linearized from model.initial; returns (answer, configurations).
    Raises Undecided when the limits are passed."""
    n = len(pops)
    if n == 0:
        return True, 0
    events = []
    for i, p in enumerate(pops):
        events.append((p.call, 0, i))
        events.append((p.ret, 1, i))
    events.sort()
    size = 2 + 2 * n
    nxt = [TAIL] * size
    prv = [HEAD] * size
    prev = HEAD
    for _, kind, i in events:
        node = 2 + 2 * i + kind  # call nodes are even, return nodes odd
        nxt[prev] = node
        prv[node] = prev
        prev = node
    nxt[prev] = TAIL
    prv[TAIL] = prev

    rets = [p.ret for p in pops]
    reads = [p.read for p in pops]
    needs = [model.need(p) if p.read else None for p in pops]
    blind = [model.blind(p) for p in pops]
    pending = {}  # state -> reads not yet linearized that need it
    for p, need in zip(pops, needs):
        if p.read:
            pending[need] = pending.get(need, 0) + 1
    prunable = model.prunable
    order = [(model.priority(p), p.ret, p.call) for p in pops]
    step = model.step
    exact = model.is_exact

    def candidates():
        out = []
        node = nxt[HEAD]
        while node != TAIL and not node & 1:
            out.append((node - 2) >> 1)
            node = nxt[node]
        done = node == TAIL or rets[(node - 3) >> 1] == INF
        out.sort(key=order.__getitem__)
        return out, done

    def lift(i):
        for x in (2 + 2 * i, 3 + 2 * i):
            nxt[prv[x]] = nxt[x]
            prv[nxt[x]] = prv[x]

    def unlift(i):
        for x in (3 + 2 * i, 2 + 2 * i):
            nxt[prv[x]] = x
            prv[nxt[x]] = x

    def cache_key(lin, state):
        # Operations are numbered in call order and mostly linearized in
        # that order: drop the run of low bits that are all set.
        k = (~lin & (lin + 1)).bit_length() - 1
        return (k, lin >> k, state)

    cache = set()
    stack = []  # (op, state before it, candidates, next index) or forced
    state = model.initial
    lin = 0
    cands, done = candidates()
    idx = 0
    fresh = True
    max_configs = limits.max_configs
    next_check = 0
    deadline = limits.deadline
    while True:
        if done:
            return True, len(cache)
        pushed = False
        if fresh and exact(state):
            forced = None
            for i in cands:
                if reads[i] and step(state, pops[i]) is not FAIL:
                    forced = i
                    break
            if forced is None and not pending.get(state):
                for i in cands:
                    if blind[i]:
                        forced = i
                        break
            if forced is not None:
                i = forced
                new = step(state, pops[i])
                key = cache_key(lin | (1 << i), new)
                if key in cache:
                    cands = ()  # seen and failed: so does this one
                else:
                    cache.add(key)
                    stack.append((i, state, None, 0))
                    lin |= 1 << i
                    state = new
                    lift(i)
                    if reads[i]:
                        pending[needs[i]] -= 1
                    pushed = True
        if not pushed:
            blocked = exact(state) and pending.get(state) and prunable(state)
            while idx < len(cands):
                i = cands[idx]
                idx += 1
                if blocked and not reads[i]:
                    continue
                new = step(state, pops[i])
                if new is FAIL:
                    continue
                key = cache_key(lin | (1 << i), new)
                if key in cache:
                    continue
                cache.add(key)
                if len(cache) >= next_check:
                    next_check += 256
                    if len(cache) > max_configs:
                        raise Undecided(f"more than {max_configs} "
                                        "configurations")
                    if time.monotonic() > deadline:
                        raise Undecided("out of time")
                stack.append((i, state, cands, idx))
                lin |= 1 << i
                state = new
                lift(i)
                if reads[i]:
                    pending[needs[i]] -= 1
                pushed = True
                break
        if pushed:
            cands, done = candidates()
            idx = 0
            fresh = True
            continue
        while True:
            if not stack:
                return False, len(cache)
            i, state, pc, pidx = stack.pop()
            unlift(i)
            lin ^= 1 << i
            if reads[i]:
                pending[needs[i]] += 1
            if pc is not None:
                break
        cands, idx, fresh, done = pc, pidx, False, False
