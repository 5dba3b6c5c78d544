"""The history format of the linearizability checker (README.md).

A history is a file of JSON lines, one record per operation:

    {"id": 17, "process": 3, "node": 1, "key": "r0", "model": "register",
     "op": "write", "arg": "3.17", "invoke": 81234567890,
     "complete": 81236001234, "outcome": "ok", "value": null, "error": null}

load() reads and validates one; a malformed record is a HistoryError naming
its line. Times are CLOCK_MONOTONIC nanoseconds of one machine.
"""

import json

# The operations each model knows; a read returns a value, the others change
# the state. A register holds a string or null (the file does not exist); a
# log holds a list of tokens.
MODELS = {
    "register": ("read", "write"),
    "log": ("read", "append"),
}
OUTCOMES = ("ok", "fail", "timeout")


class HistoryError(Exception):
    """A history that does not follow the format; the message names the line."""


class Op:
    """One operation of a history, as recorded."""

    __slots__ = ("id", "process", "node", "key", "model", "op", "arg",
                 "invoke", "complete", "outcome", "value", "error")

    def __init__(self, **fields):
        for name in self.__slots__:
            setattr(self, name, fields.get(name))

    def is_read(self):
        return self.op == "read"

    def is_ok(self):
        return self.outcome == "ok"

    def to_dict(self):
        return {name: getattr(self, name) for name in self.__slots__}


def _is_int(x):
    return isinstance(x, int) and not isinstance(x, bool)


def _check(rec, where):
    """Validate one decoded record; return it as an Op."""
    if not isinstance(rec, dict):
        raise HistoryError(f"{where}: not a JSON object")
    for name in ("process", "key", "model", "op", "invoke", "outcome"):
        if name not in rec:
            raise HistoryError(f"{where}: no field {name!r}")
    model, op, outcome = rec["model"], rec["op"], rec["outcome"]
    if model not in MODELS:
        raise HistoryError(f"{where}: unknown model {model!r} "
                           f"(known: {', '.join(MODELS)})")
    if op not in MODELS[model]:
        raise HistoryError(f"{where}: model {model} has no op {op!r}")
    if outcome not in OUTCOMES:
        raise HistoryError(f"{where}: outcome {outcome!r} is not one of "
                           f"{', '.join(OUTCOMES)}")
    if not isinstance(rec["key"], str):
        raise HistoryError(f"{where}: key must be a string")
    if not _is_int(rec["invoke"]):
        raise HistoryError(f"{where}: invoke must be an integer (ns)")
    complete = rec.get("complete")
    if outcome == "ok":
        if not _is_int(complete):
            raise HistoryError(f"{where}: an ok operation needs an integer "
                               "complete time")
        if complete < rec["invoke"]:
            raise HistoryError(f"{where}: completes before it is invoked")
    elif complete is not None and not _is_int(complete):
        raise HistoryError(f"{where}: complete must be an integer or null")
    arg, value = rec.get("arg"), rec.get("value")
    if op != "read" and not isinstance(arg, str):
        raise HistoryError(f"{where}: {op} needs a string arg")
    if op == "read" and outcome == "ok":
        if model == "register" and value is not None and \
                not isinstance(value, str):
            raise HistoryError(f"{where}: a register read's value is a "
                               "string or null")
        if model == "log" and not (isinstance(value, list) and
                                   all(isinstance(t, str) for t in value)):
            raise HistoryError(f"{where}: a log read's value is a list of "
                               "strings")
    return Op(id=rec.get("id"), process=rec["process"], node=rec.get("node"),
              key=rec["key"], model=model, op=op, arg=arg,
              invoke=rec["invoke"], complete=complete, outcome=outcome,
              value=value, error=rec.get("error"))


def parse(lines, name="<history>"):
    """Records from an iterable of JSON lines (blank lines skipped).

    Operations without an id are numbered by their position. A key used with
    two models is an error.
    """
    ops = []
    models = {}
    for lineno, line in enumerate(lines, 1):
        line = line.strip()
        if not line:
            continue
        where = f"{name}:{lineno}"
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as e:
            raise HistoryError(f"{where}: not JSON ({e.msg})") from None
        op = _check(rec, where)
        if op.id is None:
            op.id = len(ops)
        if models.setdefault(op.key, op.model) != op.model:
            raise HistoryError(f"{where}: key {op.key!r} used as "
                               f"{models[op.key]} and as {op.model}")
        ops.append(op)
    ids = [op.id for op in ops]
    if len(set(ids)) != len(ids):
        raise HistoryError(f"{name}: two operations share an id")
    return ops


def load(path):
    """The operations of a history file."""
    with open(path, encoding="utf-8") as f:
        return parse(f, path)


def dump(ops, path):
    """Write operations (Op or dict) as a history file."""
    with open(path, "w", encoding="utf-8") as f:
        for op in ops:
            rec = op.to_dict() if isinstance(op, Op) else op
            f.write(json.dumps(rec, separators=(",", ":")) + "\n")
