"""The suite's own guard (tests/conftest.py): a package of pyproject.toml's ``test`` extra that
is missing, too old or broken stops the run before any test, instead of tests skipping."""

from conftest import _test_requirements, missing_test_requirements


def test_reads_the_test_extra_of_pyproject():
    reqs = _test_requirements()
    names = {r.split(">")[0].split("=")[0].split("<")[0] for r in reqs}
    assert {"pytest", "hypothesis", "optuna", "gymnax", "matplotlib", "chex"} <= names


def test_installed_requirements_pass_and_absent_or_old_ones_are_named():
    # The truth: no distribution has this name, and no numpy release is 999.
    assert missing_test_requirements(["numpy>=1.24", "pytest"]) == []
    assert missing_test_requirements(["numpy>=1.24", "pytest"], do_import=True) == []
    out = missing_test_requirements(["jaxhpo-no-such-package>=1", "numpy>=999"],
                                    do_import=False)
    assert out[0] == "jaxhpo-no-such-package>=1: not installed"
    assert out[1].startswith("numpy>=999: version ") and out[1].endswith(" is installed")


def test_importorskip_of_a_declared_package_imports_it():
    """conftest makes ``pytest.importorskip`` raise, not skip, when a declared test package's
    module fails to import (here: a submodule that does not exist in one)."""
    import pytest

    assert pytest.importorskip("scipy.stats").norm is not None
    with pytest.raises(ModuleNotFoundError):
        pytest.importorskip("scipy.no_such_submodule")
    with pytest.raises(pytest.skip.Exception):  # undeclared packages still skip
        pytest.importorskip("jaxhpo_no_such_module")
