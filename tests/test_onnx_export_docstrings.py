"""Every public module, class, function and method in ``onnx_export/`` has a docstring.

Public: a name without a leading underscore (so ``forward`` counts and
``__init__`` does not), defined at module level or in a class body;
functions nested in functions are local helpers and are not checked. Read
with ``ast``, so the check needs neither torch nor an import of the package.
"""
import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parent.parent / "onnx_export"
DEFINITIONS = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _public(body, prefix):
    for node in body:
        if isinstance(node, DEFINITIONS) and not node.name.startswith("_"):
            yield f"{prefix}{node.name}", node
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            yield from _public(node.body, f"{prefix}{node.name}.")


def missing_docstrings(root=ROOT):
    """``path:line name`` of every public definition under ``root`` without a docstring."""
    missing = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        if ast.get_docstring(tree) is None:
            missing.append(f"{rel}:1 (module)")
        missing += [f"{rel}:{node.lineno} {name}" for name, node in _public(tree.body, "")
                    if ast.get_docstring(node) is None]
    return missing


def test_the_walk_finds_the_package():
    assert (ROOT / "__init__.py").is_file() and len(list(ROOT.rglob("*.py"))) > 10


def test_every_public_definition_has_a_docstring():
    missing = missing_docstrings()
    assert not missing, f"{len(missing)} public definitions in onnx_export/ without a docstring:\n" + "\n".join(missing)


def test_the_check_sees_a_missing_docstring(tmp_path):
    pkg = tmp_path / "onnx_export"
    pkg.mkdir()
    (pkg / "m.py").write_text('"""A module."""\n\n\nclass A:\n    """A class."""\n\n    def forward(self):\n'
                              '        pass\n\n    def _private(self):\n        pass\n\n\ndef f():\n    """Doc."""\n')
    assert missing_docstrings(pkg) == ["onnx_export/m.py:7 A.forward"]
