"""The core install stays free of TensorFlow (it grabs accelerators and is huge); extras are declared."""
import configparser
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement

REPO = Path(__file__).resolve().parent.parent


def requirement_name(req: str) -> str:
    return Requirement(req).name.lower().replace("_", "-")


def core_closure(names):
    """Every distribution the core requirements pull in on this Python, following installed metadata
    (requirements behind an extra or a marker that does not hold here are skipped)."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        for req in map(Requirement, metadata.requires(name) or []):
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(requirement_name(str(req)))
    return seen


def setup_cfg():
    cfg = configparser.ConfigParser()
    cfg.read(REPO / "setup.cfg")
    return cfg


def test_core_install_does_not_pull_tensorflow():
    core = [requirement_name(r) for r in setup_cfg()["options"]["install_requires"].split("\n") if r.strip()]
    assert "tensorflow-datasets" in core and "jax" in core
    closure = core_closure(core)
    assert "tensorflow" not in closure and "tensorflow-cpu" not in closure, sorted(closure)


def test_every_core_requirement_is_pinned_to_a_range():
    for req in setup_cfg()["options"]["install_requires"].split("\n"):
        if req.strip():
            assert ">=" in req and "<" in req.replace("<=", ""), f"unpinned requirement: {req}"


def test_extras_for_tests_and_gpu_exist():
    extras = setup_cfg()["options.extras_require"]
    assert "pytest" in extras["dev"] and "hypothesis" in extras["dev"]
    assert "jax[cuda" in extras["cuda"]


def test_data_extra_brings_tensorflow_for_the_tfds_builders():
    extras = [Requirement(r) for r in setup_cfg()["options.extras_require"]["data"].split("\n") if r.strip()]
    names = {requirement_name(str(r)) for r in extras}
    assert names == {"tensorflow-cpu", "tensorflow"}
    linux = [r for r in extras if r.marker.evaluate({"sys_platform": "linux"})]
    assert [requirement_name(str(r)) for r in linux] == ["tensorflow-cpu"]
