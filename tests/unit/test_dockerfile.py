"""The root Dockerfile, checked statically (tests/cluster/test_operator_image.py builds and runs it).

What can be checked without building: the two targets exist, they run as a non-root user, every path they
copy exists and passes .dockerignore, they install their own lock file only, and their entrypoints name
modules and classes that exist in the repository.
"""

import ast
import fnmatch
import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO_ROOT / "Dockerfile"


@dataclass
class Stage:
    """One build stage: its name, base and instructions (keyword, arguments)."""

    name: str
    base: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def parse_dockerfile(text: str) -> list[Stage]:
    """Instructions with line continuations joined and comments dropped, grouped by FROM."""
    logical, pending = [], ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or (line.startswith("#") and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        logical.append(pending + line)
        pending = ""
    stages: list[Stage] = []
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            parts = args.split()
            name = parts[2] if len(parts) >= 3 and parts[1].upper() == "AS" else str(len(stages))
            stages.append(Stage(name=name, base=parts[0]))
        elif stages:
            stages[-1].instructions.append((keyword, args.strip()))
    return stages


def exec_form(args: str) -> list[str]:
    """ENTRYPOINT/CMD in exec (JSON) form."""
    value = json.loads(args)
    assert isinstance(value, list), f"not exec form: {args}"
    return [str(v) for v in value]


def copy_sources(args: str) -> list[str]:
    """Sources of a COPY from the build context (empty for COPY --from=...)."""
    words = shlex.split(args)
    if any(w.startswith("--from=") for w in words):
        return []
    words = [w for w in words if not w.startswith("--")]
    return words[:-1]


def dockerignore_allows(path: str) -> bool:
    """Evaluate .dockerignore (last matching rule wins; '!' re-includes) for a context path."""
    rules = [
        line.strip()
        for line in (REPO_ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    included = True
    for rule in rules:
        negate = rule.startswith("!")
        pattern = rule[1:] if negate else rule
        pattern = pattern.rstrip("/")
        hit = pattern == "**" or fnmatch.fnmatch(path, pattern) or path.startswith(pattern + "/")
        if hit:
            included = negate
    return included


STAGES = {stage.name: stage for stage in parse_dockerfile(DOCKERFILE.read_text())}


def stage_chain(name: str) -> list[Stage]:
    """A stage and the stages it is built FROM, nearest first."""
    chain = [STAGES[name]]
    while chain[-1].base in STAGES:
        chain.append(STAGES[chain[-1].base])
    return chain


def test_both_targets_exist_on_python_311_slim() -> None:
    assert {"operator", "service"} <= set(STAGES)
    for target in ("operator", "service"):
        root = stage_chain(target)[-1]
        arg_default = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", DOCKERFILE.read_text(), re.MULTILINE)
        assert root.base == "${PYTHON_IMAGE}"
        assert arg_default is not None
        assert arg_default.group(1) == "python:3.11-slim"


@pytest.mark.parametrize("target", ["operator", "service"])
def test_targets_run_as_the_non_root_user_the_chart_expects(target: str) -> None:
    users = STAGES[target].all("USER")
    assert users, f"{target} sets no USER"
    uid, _, gid = users[-1].partition(":")
    assert uid.isdigit()
    assert int(uid) != 0
    assert gid.isdigit()
    assert int(gid) != 0
    values = yaml.safe_load((REPO_ROOT / "charts" / "modelops-operator" / "values.yaml").read_text())
    assert values["podSecurityContext"]["runAsUser"] == int(uid)
    assert values["podSecurityContext"]["runAsGroup"] == int(gid)


def test_every_copied_path_exists_and_is_in_the_build_context() -> None:
    sources = [src for stage in STAGES.values() for args in stage.all("COPY") for src in copy_sources(args)]
    assert sources
    for source in sources:
        path = source.rstrip("/")
        assert (REPO_ROOT / path).exists(), f"COPY {source}: not in the repository"
        assert dockerignore_allows(path), f"COPY {source}: excluded by .dockerignore"


@pytest.mark.parametrize(("target", "lock"), [("operator", "operator.txt"), ("service", "service.txt")])
def test_each_target_installs_only_its_own_lock_file(target: str, lock: str) -> None:
    copied = [src for args in STAGES[target].all("COPY") for src in copy_sources(args)]
    locks = [src for src in copied if src.startswith("requirements/")]
    assert locks == [f"requirements/{lock}"]
    assert (REPO_ROOT / "requirements" / lock).is_file()
    # The lock decides every version; the project's packages are plain source on PYTHONPATH.
    installs = " ".join(STAGES[target].all("RUN"))
    assert "-r /tmp/requirements.txt" in installs


# Each image copies exactly the packages its process imports (packages follow deliverables).
IMAGE_PACKAGES = {
    "operator": {"modelops_contract", "modelops_operator"},
    "service": {"modelops_contract", "modelops_detectors", "modelops_service"},
}


@pytest.mark.parametrize("target", sorted(IMAGE_PACKAGES))
def test_each_image_copies_only_the_packages_its_process_imports(target: str) -> None:
    copied = [src for args in STAGES[target].all("COPY") for src in copy_sources(args)]
    packages = {Path(src).name for src in copied if not src.startswith("requirements/")}
    assert packages == IMAGE_PACKAGES[target]
    # And those packages import nothing of the project outside that set (the standard library and the
    # image's lock supply the rest).
    for package in packages:
        folder = next(REPO_ROOT.glob(f"*/{package}"))
        for source in folder.rglob("*.py"):
            imported = set(re.findall(r"^\s*(?:from|import) (modelops_\w+)", source.read_text(), re.M))
            assert imported <= IMAGE_PACKAGES[target], f"{source} imports {imported - IMAGE_PACKAGES[target]}"


def test_the_operator_image_carries_no_ml_stack_and_no_azure_sdk() -> None:
    lock = (REPO_ROOT / "requirements" / "operator.txt").read_text()
    for heavy in ("bentoml==", "alibi-detect==", "scikit-learn==", "\nmlflow", "azure-"):
        assert heavy not in lock


def test_the_operator_entrypoint_is_kopf_with_a_liveness_endpoint() -> None:
    entrypoint = exec_form(STAGES["operator"].all("ENTRYPOINT")[-1])
    assert entrypoint[:4] == ["kopf", "run", "-m", "modelops_operator.handlers"]
    assert any(arg.startswith("--liveness=http://0.0.0.0:") for arg in entrypoint)
    assert (REPO_ROOT / "operator" / "modelops_operator" / "handlers.py").is_file()
    assert "8080" in STAGES["operator"].all("EXPOSE")


def service_classes() -> set[str]:
    """Classes decorated with bentoml.service in modelops_service/service.py."""
    tree = ast.parse((REPO_ROOT / "service" / "modelops_service" / "service.py").read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            for decorator in node.decorator_list:
                target = decorator.func if isinstance(decorator, ast.Call) else decorator
                if ast.unparse(target) == "bentoml.service":
                    found.add(node.name)
    return found


def test_the_service_entrypoint_serves_the_bentoml_class_on_port_3000() -> None:
    entrypoint = exec_form(STAGES["service"].all("ENTRYPOINT")[-1])
    assert entrypoint[:2] == ["bentoml", "serve"]
    module, _, cls = entrypoint[2].partition(":")
    assert module == "modelops_service.service"
    assert cls in service_classes()
    assert entrypoint[entrypoint.index("--port") + 1] == "3000"
    assert "3000" in STAGES["service"].all("EXPOSE")
    env = " ".join(STAGES["service"].all("ENV"))
    assert re.search(r"\bOMP_NUM_THREADS=1\b", env)


def test_the_service_image_writes_bytecode_for_its_code_after_copying_it() -> None:
    # The step imports the copied packages: it must come after the last COPY, and before USER (it writes
    # into root-owned site-packages), with bytecode otherwise off for the pod (PYTHONDONTWRITEBYTECODE).
    instructions = STAGES["service"].instructions
    keywords = [kw for kw, _ in instructions]
    step = next(i for i, (kw, args) in enumerate(instructions) if "-m modelops_service.bytecode" in args)
    assert keywords[step] == "RUN"
    assert step > max(i for i, kw in enumerate(keywords) if kw == "COPY")
    assert step < keywords.index("USER")
    assert (REPO_ROOT / "service" / "modelops_service" / "bytecode.py").is_file()
    assert "PYTHONDONTWRITEBYTECODE=1" in " ".join(STAGES["base"].all("ENV"))
