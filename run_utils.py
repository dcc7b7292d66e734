"""Run machinery shared by the training scripts and the experiment tools (as CleanRL keeps
cleanrl_utils).

Imports the standard library only; it is handed what it works on and never imports a script.
"""
import json
import os
import pathlib


def write_json(path, obj):
    """Strict JSON, written atomically (a reader never sees half a file): NaN and inf become null,
    and "non_finite_as_null" says whether any did."""
    found = []
    obj = json.loads(json.dumps(obj), parse_constant=found.append)  # append returns None: NaN -> null
    text = json.dumps({**obj, "non_finite_as_null": bool(found)}, indent=1, allow_nan=False)
    pathlib.Path(f"{path}.tmp").write_text(text)
    os.replace(f"{path}.tmp", path)
