"""Sequential specifications for the checker: a register and an append log.

A model gives the initial state and step(state, op): the state after op, or
FAIL when op cannot happen in that state (a read that returns something else).
States must be hashable; the search caches (linearized set, state) pairs.

Both models also have a window form (allowed is not None): the state at the
start of a window cut out of a longer history is not known, only what it can
be built from, so it starts as ANY and the first read fixes it.
- register: ANY may be null (the file never written) or any value in allowed
  (values written by operations invoked before the window; allowed maps
  each to how many such writes there are).
- log: ANY is an unknown prefix followed by the tokens appended inside the
  window; the prefix holds each token at most as often as allowed says
  (appends of it invoked before the window).
"""

FAIL = object()  # step(): the operation is impossible in this state


class _Any:
    def __repr__(self):
        return "ANY"


ANY = _Any()  # the register's unknown state


class Prepared:
    """One operation as the search sees it (see lincheck.build)."""

    __slots__ = ("rec", "call", "ret", "read", "arg", "value", "vid",
                 "optional", "cut")

    def __init__(self, rec, call, ret, optional=False, cut=False):
        self.rec = rec            # the history.Op it came from
        self.call = call          # invocation, ns
        self.ret = ret            # completion, ns, or INF (unknown outcome)
        self.read = rec.op == "read"
        self.arg = rec.arg        # value written / token appended
        self.value = rec.value    # value read (register) / tuple (log)
        self.vid = None           # log: the read's state id
        self.optional = optional  # may never take effect
        self.cut = cut            # invoked before the window's start


class RegisterModel:
    """A whole file replaced atomically; null while it does not exist.

    With unique written values most states occur once: the reads that need
    such a state must all be linearized before the next write (prunable),
    and a write whose value nobody reads (blind) can be linearized as soon
    as no read needs the current state (see search.py).
    """

    name = "register"

    def __init__(self, allowed=None, writers=None):
        self.allowed = allowed
        self.initial = ANY if allowed is not None else None
        self.writes = {}  # value -> writes of it in the problem
        self.read_values = set()

    def prepare(self, p):
        pass

    def setup(self, pops):
        for p in pops:
            if p.read:
                self.read_values.add(p.value)
            else:
                self.writes[p.arg] = self.writes.get(p.arg, 0) + 1

    @staticmethod
    def priority(p):
        return 0

    @staticmethod
    def effect(rec):
        return (rec.arg,)

    @staticmethod
    def shows(rec):
        return (rec.value,)

    def is_exact(self, state):
        return state is not ANY

    @staticmethod
    def need(p):
        return p.value

    def prunable(self, state):
        n = self.writes.get(state, 0)
        if n == 0:
            return True
        return n == 1 and (self.allowed is None or state not in self.allowed)

    def blind(self, p):
        return not p.read and p.arg not in self.read_values

    def step(self, state, p):
        if not p.read:
            return p.arg
        if state is ANY:
            v = p.value
            return v if (v is None or v in self.allowed) else FAIL
        return state if p.value == state else FAIL

    def describe(self, state):
        return "unknown" if state is ANY else repr(state)


class LogModel:
    """An append-only list of tokens; a read returns the whole list.

    Exact states are ids of nodes of a trie of token sequences, so that a
    state is a small int and a read is one comparison.

    In a linearizable history every read is a prefix of the final log, so
    the longest read (the reference) holds every token any read shows, in
    the final order. An append of a token the reference holds can therefore
    only take effect when the log is as long as the token's position there:
    step() refuses it elsewhere, which prunes every wrong order of
    concurrent appends without losing a valid linearization (and can only
    make a search fail when none exists). Appends are tried in reference
    order. In a window (unknown prefix) the appends after it must still be
    consecutive in the reference.

    Log states never recur (they only grow): every read that needs the
    current state must be linearized before the next append.
    """

    name = "log"

    def __init__(self, allowed=None, writers=None):
        self.allowed = allowed
        self.writers = writers or {}  # token -> appends of it in the history
        self.children = {}
        self.depth = [0]  # per node: the log's length
        self.initial = ("any", ()) if allowed is not None else 0
        self.position = {}  # token -> its place in the reference
        self.unseen = set()  # tokens appended once that no read shows

    def _child(self, node, token):
        key = (node, token)
        c = self.children.get(key)
        if c is None:
            c = len(self.depth)
            self.depth.append(self.depth[node] + 1)
            self.children[key] = c
        return c

    def setup(self, pops):
        appends = self.writers
        ref = max((p.value for p in pops if p.read), key=len, default=())
        seen = {}
        for t in ref:
            seen[t] = seen.get(t, 0) + 1
        # Only tokens appended once in the whole history and shown once
        # have a known place.
        self.position = {t: i for i, t in enumerate(ref)
                         if appends.get(t) == 1 and seen[t] == 1}
        self.unseen = {t for t, n in appends.items() if n == 1 and t not in seen}

    def priority(self, p):
        return 0 if p.read else self.position.get(p.arg, len(self.position))

    def prepare(self, p):
        if p.read:
            p.value = tuple(p.value)
            node = 0
            for t in p.value:
                node = self._child(node, t)
            p.vid = node

    @staticmethod
    def effect(rec):
        return (rec.arg,)

    @staticmethod
    def shows(rec):
        return rec.value

    @staticmethod
    def need(p):
        return p.vid

    @staticmethod
    def prunable(state):
        return True

    @staticmethod
    def blind(p):
        return False

    def is_exact(self, state):
        return not isinstance(state, tuple)

    def _any_read(self, suffix, p):
        v = p.value
        cut = len(v) - len(suffix)
        if cut < 0 or v[cut:] != suffix:
            return FAIL
        counts = {}
        for t in v[:cut]:
            counts[t] = counts.get(t, 0) + 1
            if counts[t] > self.allowed.get(t, 0):
                return FAIL
        return p.vid

    def step(self, state, p):
        if isinstance(state, tuple):
            suffix = state[1]
            if p.read:
                return self._any_read(suffix, p)
            if suffix:
                last = self.position.get(suffix[-1])
                pos = self.position.get(p.arg)
                if pos is not None and (suffix[-1] in self.unseen or
                                        (last is not None and
                                         pos != last + 1)):
                    return FAIL
            return ("any", suffix + (p.arg,))
        if p.read:
            return state if p.vid == state else FAIL
        pos = self.position.get(p.arg)
        if pos is not None and pos != self.depth[state]:
            return FAIL
        return self._child(state, p.arg)

    def describe(self, state):
        return "unknown" if isinstance(state, tuple) else f"state {state}"


MODELS = {"register": RegisterModel, "log": LogModel}
