"""JSON Schemas of the files a user writes or reads (docs/formats.md), and one-line validation.

``boxes`` (person boxes in), ``result`` (``run`` / ``predict --videos`` poses out), ``posetrack``
(``predict --data`` PoseTrack prediction files), ``plan_sidecar`` (the JSON beside a TensorRT plan).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from dcpose_trt.errors import DataError

HERE = Path(__file__).resolve().parent
NAMES = ("boxes", "result", "posetrack", "plan_sidecar")


@cache
def schema(name: str) -> dict:
    """The schema document ``<name>.schema.json`` shipped with the package."""
    if name not in NAMES:
        raise ValueError(f"no schema {name!r}; have {', '.join(NAMES)}")
    return json.loads((HERE / f"{name}.schema.json").read_text(encoding="utf-8"))


@cache
def _validator(name: str) -> Any:
    from jsonschema.validators import validator_for  # a core dependency (setup.py)

    cls = validator_for(schema(name))
    return cls(schema(name))


def _where(path: Any) -> str:
    parts = [f"entry {p}" if isinstance(p, int) else repr(p) for p in path]
    return " > ".join(parts) if parts else "the document"


def validate(doc: Any, name: str, source: str | Path, *, dotted: bool = False) -> None:
    """Check ``doc`` against schema ``name``.

    With ``dotted``, a missing field is named by its full dotted path (``has no 'backend.version'``), the way
    the plan sidecar's fields are documented and checked.

    Raises:
        DataError: one line naming ``source``, where in the document the first problem is, and what it is.
    """
    from jsonschema.exceptions import best_match

    err = best_match(_validator(name).iter_errors(doc))
    if err is None:
        return
    # A oneOf/anyOf failure is vague; its most relevant sub-error says what to fix.
    while err.context:
        err = best_match(err.context)
    what = err.message
    if dotted and err.validator == "required" and isinstance(err.instance, dict):
        # name the missing field by its full dotted path, the way the docs and the error's reader know it
        missing = next(k for k in err.validator_value if k not in err.instance)
        what = "has no '" + ".".join([*(str(p) for p in err.absolute_path), missing]) + "'"
    if len(what) > 160:  # the message quotes the whole offending value: say the rule instead
        what = f"does not satisfy {err.validator}={json.dumps(err.validator_value)[:80]}"
    raise DataError(f"{source}: not a valid {name.replace('_', ' ')} file (docs/formats.md): "
                    f"{_where(err.absolute_path)}: {what}")
