"""``validate-protocol``: does a program speak ``memslice-jsonl`` v1?

Rules and theory of operation
-----------------------------
Before running checks against a ``cmd:`` implementation (written in any
language), its author can ask only whether the *wire format* is right::

    hello ─► alloc 24 ─► write ─► read ─► free1 ─► alloc 0 ─► bad op ─► shutdown

The configuration ops are sent only to a program that claims ``config`` in
its ``hello``, and ``digests`` only to one that lists it in ``optional_ops``
(LOAD-003, LOAD-011).

Every request sent and every response received is validated against the
published JSON Schema (``schema/protocol-v1.json``); the responses must come
back in request order with matching ids, carry results of the right type
(address, hex, null, list), and an unknown op must be answered with
``ok: false`` rather than by dying.  Semantics are the conformance run's job.
"""

from __future__ import annotations

import importlib
import json
from importlib.resources import files
from typing import cast

from memslice_conformance.impl.impls import resolve
from memslice_conformance.impl.jsonl import JSONValue, Request, block_digest
from memslice_conformance.impl.worker import WorkerClient, worker_argv

__all__ = ["load_schema", "validate_protocol"]


def load_schema() -> dict[str, JSONValue]:
    text = files("memslice_conformance").joinpath("schema/protocol-v1.json").read_text()
    return cast(dict[str, JSONValue], json.loads(text))


def validate_protocol(impl: str) -> list[str]:
    """Return the protocol problems found (empty: valid)."""
    # A declared dependency (an ImportError here is loud); it ships no type
    # information, so it is used through an untyped module object.
    jsonschema = importlib.import_module("jsonschema")

    schema = load_schema()
    defs = cast(dict[str, JSONValue], schema["$defs"])

    def check(value: JSONValue, definition: str) -> str | None:
        # Only the named definition: the top-level oneOf must not apply too.
        validator = jsonschema.Draft202012Validator(
            {"$defs": defs, "$ref": f"#/$defs/{definition}"}
        )
        errors = sorted(validator.iter_errors(value), key=lambda e: list(e.path))
        return errors[0].message if errors else None

    resolved = resolve(impl)
    argv = resolved.argv if resolved.kind == "worker" else tuple(worker_argv(impl))
    client = WorkerClient(argv, resolved.env or None)
    client.start()
    problems: list[str] = []
    try:
        script: list[Request] = [{"op": "hello"}, {"op": "alloc", "size": 24}]
        responses = client.exchange(script)
        addr = responses[1].get("result")
        if not isinstance(addr, int) or addr == 0:
            problems.append(f"alloc(24) answered {responses[1]!r}")
            addr = 0
        hello = responses[0].get("result")
        claims = hello.get("profiles", []) if isinstance(hello, dict) else []
        offered = hello.get("optional_ops", []) if isinstance(hello, dict) else []
        more: list[Request] = [
            {"op": "write", "addr": addr, "data": bytes(range(24)).hex()},
            {"op": "read", "addr": addr, "size": 24},
        ]
        if isinstance(claims, list) and "config" in claims:
            more += [
                {"op": "get_config", "key": 0},
                {"op": "get_config_state", "key": 1, "address": 0},
            ]
        if isinstance(offered, list) and "digests" in offered:
            more.append({"op": "digests", "blocks": [[addr, 24]]})
        script += more
        responses += client.exchange(more)
        # The free runs on another thread: only after the batch above has been
        # answered, since ops of different threads may run at the same time
        # (jsonl rule 1) and the block must not be freed under a read of it.
        last: list[Request] = [
            {"op": "free1", "size": 24, "addr": addr, "thread": "other"},
            {"op": "thread_exit", "thread": "other"},
            {"op": "alloc", "size": 0},
            {"op": "no-such-op"},
        ]
        script += last
        responses += client.exchange(last)
        for index, (request, response) in enumerate(zip(script, responses, strict=True)):
            op = str(request["op"])
            message = check(response, "response")
            if message:
                problems.append(f"response to {op}: {message}")
                continue
            if op == "no-such-op":
                if response.get("ok") is not False:
                    problems.append("an unknown op must be answered with ok: false")
                continue
            if not response.get("ok"):
                problems.append(f"{op} failed: {response.get('error')!r}")
                continue
            if f"result_{op}" in defs:
                message = check(response.get("result"), f"result_{op}")
                if message:
                    problems.append(f"result of {op}: {message}")
            if op == "read" and response.get("result") != script[index - 1].get("data"):
                problems.append("read did not return the bytes just written")
            if op == "digests" and response.get("result") != [block_digest(bytes(range(24)))]:
                problems.append("digests did not answer the digest of the bytes written")
    except Exception as exc:
        problems.append(f"{type(exc).__name__}: {exc}")
    finally:
        client.close()
    for request in script:
        message = check({**request, "id": 1}, "request")
        if message and request["op"] != "no-such-op":
            problems.append(f"suite request {request['op']} fails the schema: {message}")
    return problems
