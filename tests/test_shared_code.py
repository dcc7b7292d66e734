"""The three SAC scripts share their SAC core verbatim, so that `diff sac_marl_baseline.py
tasam_marl_sac.py` (or sac_marl_l2.py) shows only what the variant adds: every top-level function
and class defined in more than one script has the same source, and so has every Args field (with
its docstring) that more than one script declares. docs/training.md#the-variants"""
import ast
import itertools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ("sac_marl_baseline.py", "sac_marl_l2.py", "tasam_marl_sac.py")


def top_level_definitions(script):
    """name -> source of each top-level function and class except Args."""
    source = (ROOT / script).read_text()
    return {node.name: ast.get_source_segment(source, node, padded=True)
            for node in ast.parse(source).body
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name != "Args"}


def args_fields(script):
    """Args field name -> source of its annotated assignment and the docstring under it."""
    source = (ROOT / script).read_text()
    args = next(node for node in ast.parse(source).body
                if isinstance(node, ast.ClassDef) and node.name == "Args")
    fields = {}
    for node, after in zip(args.body, args.body[1:] + [None]):
        if isinstance(node, ast.AnnAssign):
            doc = (after if isinstance(after, ast.Expr) and isinstance(after.value, ast.Constant)
                   else None)
            fields[node.target.id] = (ast.get_source_segment(source, node),
                                      doc and ast.get_source_segment(source, doc))
    return fields


@pytest.mark.parametrize("a, b", list(itertools.combinations(SCRIPTS, 2)))
def test_shared_functions_and_classes_are_identical(a, b):
    defs_a, defs_b = top_level_definitions(a), top_level_definitions(b)
    shared = sorted(defs_a.keys() & defs_b.keys())
    assert {"Actor", "SoftQNetwork", "ReplayBuffer", "td_target", "critic_input"} <= set(shared)
    assert [name for name in shared if defs_a[name] != defs_b[name]] == []


@pytest.mark.parametrize("a, b", list(itertools.combinations(SCRIPTS, 2)))
def test_shared_args_fields_are_identical(a, b):
    fields_a, fields_b = args_fields(a), args_fields(b)
    shared = sorted(fields_a.keys() & fields_b.keys())
    assert len(shared) > 30
    assert [name for name in shared if fields_a[name] != fields_b[name]] == []
    assert all(doc for _, doc in fields_a.values()), "a docstring under every Args field"


def test_variants_only_add_to_the_baseline():
    """The baseline's definitions and fields all appear in the variants (nothing renamed away)."""
    base_defs, base_fields = top_level_definitions(SCRIPTS[0]), args_fields(SCRIPTS[0])
    for script in SCRIPTS[1:]:
        assert base_defs.keys() <= top_level_definitions(script).keys()
        assert base_fields.keys() <= args_fields(script).keys()
