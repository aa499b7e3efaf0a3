"""House rules of DESIGN.md §3: one name across file, class, GRC id and QA test."""
import importlib
import inspect
import pathlib
import re

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
GRC = ROOT / "gr-unitocom" / "grc"
BLOCK_FILES = sorted(GRC.glob("unitocom_*.block.yml"))


def test_tree_lists_every_block():
    tree = yaml.safe_load((GRC / "unitocom.tree.yml").read_text())
    assert sorted(tree["[UniToCom]"]) == sorted(p.name[:-len(".block.yml")] for p in BLOCK_FILES)


@pytest.mark.parametrize("path", BLOCK_FILES, ids=lambda p: p.name)
def test_block_yaml_matches_module_class_and_qa(path):
    spec = yaml.safe_load(path.read_text())
    name = path.name[len("unitocom_"):-len(".block.yml")]
    assert spec["id"] == f"unitocom_{name}"
    assert spec["category"] == "[UniToCom]"
    module = importlib.import_module(f"gnuradio.unitocom.{name}")
    cls = getattr(module, name)
    assert inspect.isclass(cls) and cls.__doc__, f"{name}: class with a docstring"
    assert f"unitocom.{name}(" in spec["templates"]["make"]
    # the YAML parameters are the constructor's arguments, in order
    args = list(inspect.signature(cls.__init__).parameters)[1:]
    assert [p["id"] for p in spec.get("parameters", []) if p.get("dtype") != "gui_hint"] == args   # gui_hint: GRC places a QT widget
    for callback in spec["templates"].get("callbacks", []):
        method = re.match(r"(\w+)\(", callback).group(1)
        assert callable(getattr(cls, method, None)), f"{name}.{method} is a listed callback"
    assert (ROOT / "tests" / f"qa_{name}.py").is_file(), f"tests/qa_{name}.py"
    assert spec.get("documentation"), "GRC documentation text"
