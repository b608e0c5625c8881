"""The packages are layers: losses <- models <- train <- zoo.

A module may import its own package and the packages to its left, never one to its right, at
any level (module top or inside a function). `import zoo` reads the catalogue without loading
TensorFlow, and the dataset pipeline does not load the model families.
"""

import ast
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LAYERS = ("losses", "models", "train", "zoo")


def modules():
    """(package, path relative to the root) of every module of the layered packages."""
    found = []
    for package in LAYERS:
        for folder, _, files in os.walk(os.path.join(ROOT, package)):
            for file in sorted(files):
                if file.endswith(".py"):
                    found.append((package, os.path.relpath(os.path.join(folder, file), ROOT)))
    return found


def imported_packages(source, filename="<module>"):
    """(line, top-level package) of every import in `source`: import statements anywhere in the
    tree, and importlib.import_module / __import__ calls with a constant name."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name.split(".")[0]) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0:
                found.append((node.lineno, node.module.split(".")[0]))
            elif node.level > 1:
                found.append((node.lineno, "<a package above this one>"))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            function = node.func
            name = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value.lstrip(".").split(".")[0]))
    return found


def upward_imports(package, source, filename="<module>"):
    """The imports of a module of `package` that reach a layer to its right (or above it)."""
    rank = LAYERS.index(package)
    return [(line, name) for line, name in imported_packages(source, filename)
            if name.startswith("<") or (name in LAYERS and LAYERS.index(name) > rank)]


def test_the_checker_sees_imports_at_every_level():
    source = ("import os\nfrom models.errors import GanZooError\n"
              "def f():\n    import zoo\n    from train.images import image_grid\n"
              "    from . import sibling\n    from .. import parent\n"
              "    importlib.import_module('zoo.sample')\n")
    assert upward_imports("models", source) == [
        (4, "zoo"), (5, "train"), (7, "<a package above this one>"), (8, "zoo")]
    assert upward_imports("zoo", source) == [(7, "<a package above this one>")]


def test_the_layered_packages_are_all_checked():
    checked = {path.split(os.sep)[0] for _, path in modules()}
    assert checked == set(LAYERS)
    assert os.path.join("models", "infogan.py") in {path for _, path in modules()}


def test_no_module_imports_a_layer_to_its_right():
    violations = []
    for package, path in modules():
        with open(os.path.join(ROOT, path), encoding="utf-8") as f:
            source = f.read()
        violations += [f"{path}:{line} imports {name}" for line, name in upward_imports(package, source, path)]
    assert violations == [], "layers are losses <- models <- train <- zoo:\n" + "\n".join(violations)


def run_python(code):
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_import_zoo_reads_the_catalogue_without_tensorflow():
    result = run_python(
        "import sys, zoo\n"
        "names = zoo.list()\n"
        "assert names, 'no preset'\n"
        "zoo.info(names[0])\n"
        "from models.errors import GanZooError\n"
        "loaded = sorted(m for m in ('tensorflow', 'keras', 'models.gan', 'models.registry') if m in sys.modules)\n"
        "assert not loaded, loaded\n")
    assert result.returncode == 0, result.stderr[-2000:]


def test_the_data_pipeline_does_not_load_the_model_families():
    result = run_python(
        "import sys\nimport train.data\n"
        "families = sorted(m for m in sys.modules if m in ('models.gan', 'models.registry', 'losses'))\n"
        "assert not families, families\n")
    assert result.returncode == 0, result.stderr[-2000:]


def test_models_names_still_load_the_registry_on_first_use():
    """`import models` is cheap; models.get / GAN / load / REGISTRY load the families (and so
    register them with Keras for .keras files) when first used."""
    result = run_python(
        "import sys, models\n"
        "assert 'models.registry' not in sys.modules\n"
        "load = models.load\n"
        "assert 'models.registry' in sys.modules, 'models.load without the families'\n"
        "import keras\n"
        "for name, family in models.REGISTRY.items():\n"
        "    key = keras.saving.get_registered_name(family)\n"
        "    assert keras.saving.get_registered_object(key) is family, name\n"
        "assert models.names() == tuple(models.REGISTRY)\n"
        "assert issubclass(models.family('dcgan'), models.GAN) and callable(models.get)\n")
    assert result.returncode == 0, result.stderr[-2000:]


def test_unknown_attributes_of_models_are_attribute_errors():
    import models

    with pytest.raises(AttributeError, match="no_such_thing"):
        models.no_such_thing  # noqa: B018
    assert "GAN" in dir(models) and "get" in dir(models)


def test_the_classifier_weights_folder_is_the_zoos():
    """train.classifier names zoo/weights by path (train does not import zoo): the same folder."""
    from train import classifier

    assert os.path.samefile(classifier.WEIGHTS_DIR, os.path.join(ROOT, "zoo", "weights"))
    assert os.path.isfile(classifier.default_weights_path("fashion_mnist"))
