"""The build cache: unchanged folders are not rebuilt, and a warm cache never hides a problem."""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from mlops.conventions.paths import cache_root
from mlops.rendering import build_cache, kustomize, terraform_hcl
from mlops.validate.runner.engine import validate
from mlops.validate.schema_checks.schemas import SchemaResult, Schemas

MODEL = Path("overlays/dev/models/support-chat")


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[list[str]]:
    """A fresh cache folder, and the folders kustomize really builds (the cache's misses)."""
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLOPS_BUILD_CACHE", raising=False)
    folders: list[str] = []
    real_build = kustomize.build_with_origins

    def build(path: Path, *, cwd: Path | None = None) -> tuple[str, str]:
        folders.append(str(path.relative_to(cwd)) if cwd else str(path))
        return real_build(path, cwd=cwd)

    monkeypatch.setattr(kustomize, "build_with_origins", build)
    yield folders


def _problems_in(report_problems: list[object], folder: Path) -> list[str]:
    """The problems of objects `folder` renders: named by its files, or by a base's and the folder."""
    return [
        str(p)
        for p in report_problems
        if str(p).startswith((f"{folder}:", f"{folder}/")) or f" ({folder}): " in str(p)
    ]


def test_warm_cache_reports_a_defect_planted_in_one_model_and_rebuilds_only_it(
    repo_copy: Path, crds_dir: Path, built: list[str]
) -> None:
    first = validate(repo_copy, ("dev", "prod"), crds_dir)
    assert not _problems_in(first.problems, MODEL)
    assert len(built) == first.kustomizations  # a cold cache builds everything
    built.clear()

    patch = repo_copy / MODEL / "resources.yaml"
    original = patch.read_text()
    patch.write_text(
        original.replace(
            "    spec:\n      containers:", "    spec:\n      bogusField: true\n      containers:"
        )
    )
    try:
        planted = validate(repo_copy, ("dev", "prod"), crds_dir)
        again = validate(repo_copy, ("dev", "prod"), crds_dir)  # now the defect itself comes from the cache
    finally:
        patch.write_text(original)

    assert built == [str(MODEL)]
    for report in (planted, again):
        assert any("bogusField" in line for line in _problems_in(report.problems, MODEL)), report.problems
        assert report.kustomizations == first.kustomizations


def test_a_shared_base_change_rebuilds_every_folder_that_uses_it(
    repo_copy: Path, crds_dir: Path, built: list[str]
) -> None:
    validate(repo_copy, ("dev", "prod"), crds_dir)
    built.clear()
    base = repo_copy / "base" / "models" / "vllm" / "service.yaml"
    original = base.read_text()
    base.write_text(original + "# a comment still changes the input\n")
    try:
        validate(repo_copy, ("dev", "prod"), crds_dir)
    finally:
        base.write_text(original)
    assert sorted(built) == ["overlays/dev/models/support-chat", "overlays/prod/models/support-chat"]


def test_a_failed_build_is_reported_on_every_run(repo_copy: Path, crds_dir: Path, built: list[str]) -> None:
    kustomization = repo_copy / MODEL / "kustomization.yaml"
    original = kustomization.read_text()
    kustomization.write_text(original.replace("- path: resources.yaml", "- path: resource.yaml"))
    try:
        runs = [validate(repo_copy, ("dev",), crds_dir) for _ in range(2)]
    finally:
        kustomization.write_text(original)
    for report in runs:
        failed = [
            line
            for line in _problems_in(report.problems, MODEL)
            if "Kustomization/models/support-chat" in line
        ]
        assert failed, report.problems
    assert built.count(str(MODEL)) == 2


def test_a_file_named_by_a_generator_is_an_input(tmp_path: Path) -> None:
    folder = tmp_path / "app"
    folder.mkdir()
    (tmp_path / "shared.env").write_text("A=1\n")
    (folder / "kustomization.yaml").write_text(
        "configMapGenerator:\n  - name: settings\n    envs: [../shared.env]\n"
        "    files: [conf=../shared.env]\n"
    )
    before = build_cache.build_key(folder, tmp_path)
    (tmp_path / "shared.env").write_text("A=2\n")
    assert before is not None
    assert build_cache.build_key(folder, tmp_path) != before


def test_a_remote_base_is_never_cached(tmp_path: Path) -> None:
    (tmp_path / "kustomization.yaml").write_text(
        "resources:\n  - https://github.com/kubernetes-sigs/kustomize//examples/helloWorld?ref=v5.0.0\n"
    )
    assert build_cache.build_key(tmp_path, tmp_path) is None


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 (the base's name)
        pass


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A folder served over HTTP on 127.0.0.1 (python's http.server), and its URL."""
    folder = tmp_path / "served"
    folder.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(folder)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield folder, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()
    thread.join()


def test_a_patch_fetched_over_http_is_built_on_every_run(
    repo_copy: Path, crds_dir: Path, built: list[str], served: tuple[Path, str]
) -> None:
    # The review's experiment: a patch named by URL, then the served file changes. kustomize
    # fetches it on every build, so a warm run must build the folder again and see the change.
    folder, url = served
    harmless = "apiVersion: v1\nkind: Service\nmetadata:\n  name: vllm-headless\n  labels:\n    team: ml\n"
    (folder / "p.yaml").write_text(harmless)
    kustomization = repo_copy / MODEL / "kustomization.yaml"
    original = kustomization.read_text()
    kustomization.write_text(original + f"  - path: {url}/p.yaml\n")
    try:
        assert build_cache.build_scope(repo_copy / MODEL) is None  # `mlops diff` renders it too
        first = validate(repo_copy, ("dev",), crds_dir)
        (folder / "p.yaml").write_text(harmless + "spec:\n  publishNotReadyAddresses: true\n")
        built.clear()
        warm = validate(repo_copy, ("dev",), crds_dir)
    finally:
        kustomization.write_text(original)

    assert not [str(p) for p in first.problems if "MLOPS132" in str(p)]
    assert built == [str(MODEL)]  # every other folder came from the cache
    assert [str(p) for p in warm.problems if "MLOPS132" in str(p)] == [
        "overlays/dev/gateway/routes.yaml:15: ConfigMap/gateway-routes: "
        "data[routes.yaml].models.support-chat.backends.stable.url: "
        "http://support-chat-vllm.models.svc.cluster.local:8000: Service 'support-chat-vllm-headless' "
        f"({MODEL}) publishes not-ready addresses: pods that start or terminate would get requests "
        "[MLOPS132: render the model folder from base/models/vllm, which has the headless Service "
        "<model>-vllm-headless, or route with routing.replicas: service]"
    ]


@pytest.mark.parametrize(
    ("field", "entry"),
    [
        ("patches", "- path: https://example.com/patch.yaml"),
        ("patchesStrategicMerge", "- http://127.0.0.1:9/patch.yaml"),
        ("patchesJson6902", "- path: https://example.com/ops.yaml\n    target: {kind: Service, name: web}"),
        ("replacements", "- path: https://example.com/replacement.yaml"),
        ("configurations", "- https://example.com/config.yaml"),
        ("crds", "- github.com/example-org/crds/thing.json"),
        ("configMapGenerator", "- name: settings\n    files: [conf=https://example.com/app.conf]"),
        ("secretGenerator", "- name: settings\n    envs: [https://example.com/app.env]"),
        ("transformers", "- https://example.com/transformer.yaml"),
        ("generators", "- missing-generator.yaml"),
        ("validators", "- validator.yaml"),  # a local plugin configuration names files of its own
        ("openapi", "  path: https://example.com/schema.json"),
    ],
)
def test_a_file_named_by_url_or_missing_in_any_field_is_never_cached(
    tmp_path: Path, field: str, entry: str
) -> None:
    (tmp_path / "validator.yaml").write_text("apiVersion: example.com/v1\nkind: Validator\n")
    (tmp_path / "kustomization.yaml").write_text(f"resources: []\n{field}:\n  {entry}\n")
    assert build_cache.build_scope(tmp_path) is None
    assert build_cache.build_key(tmp_path, tmp_path) is None


def test_a_url_in_a_literal_keeps_the_folder_cached(tmp_path: Path, built: list[str]) -> None:
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "kustomization.yaml").write_text(
        "configMapGenerator:\n  - name: settings\n"
        "    literals: [TRACKING_URI=http://127.0.0.1:9/mlflow, BUCKET=s3://bucket/prefix]\n"
        "images:\n  - name: ghcr.io/example/app\n    newName: registry.example.com/app\n"
    )
    first = build_cache.build(folder, cwd=tmp_path)
    again = build_cache.build(folder, cwd=tmp_path)
    assert first.key is not None and again.key == first.key
    assert built == ["app"]  # the second build came from the cache
    [config] = again.documents
    assert config["data"]["TRACKING_URI"] == "http://127.0.0.1:9/mlflow"


def test_schema_results_of_unchanged_documents_come_from_the_last_run(
    repo_copy: Path, crds_dir: Path, built: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    patch = repo_copy / MODEL / "resources.yaml"
    patch.write_text(
        patch.read_text().replace(
            "    spec:\n      containers:", "    spec:\n      bogusField: true\n      containers:"
        )
    )
    first = validate(repo_copy, ("dev", "prod"), crds_dir)
    checked: list[str] = []
    real_check = Schemas.check

    def check(self: Schemas, doc: dict[str, object], *, templated: bool = False) -> SchemaResult:
        checked.append(f"{doc.get('kind')}/{doc.get('metadata')}")
        return real_check(self, doc, templated=templated)

    monkeypatch.setattr(Schemas, "check", check)
    second = validate(repo_copy, ("dev", "prod"), crds_dir)

    assert checked == []  # nothing changed: every schema result is the stored one
    assert sorted(map(str, second.problems)) == sorted(map(str, first.problems))
    assert any("bogusField" in line for line in _problems_in(second.problems, MODEL))

    monkeypatch.setenv("MLOPS_BUILD_CACHE", "0")  # the switch turns the result cache off too
    validate(repo_copy, ("dev", "prod"), crds_dir)
    assert checked


@pytest.mark.parametrize(
    ("kustomize_output", "stored_as"),
    [(None, ".json"), ("kind: Thing\nspec:\n  since: 2024-01-31\n", ".yaml")],
    ids=["kustomize", "a-bare-date"],
)
def test_a_cached_build_gives_the_documents_a_fresh_build_gives(
    tmp_path: Path,
    built: list[str],
    monkeypatch: pytest.MonkeyPatch,
    kustomize_output: str | None,
    stored_as: str,
) -> None:
    # Cached builds are kept as JSON when JSON holds them exactly. kustomize's own output always
    # does (it quotes dates, and a NaN fails the build), but a bare YAML date would come back from
    # JSON as a string: such output keeps its YAML (the second case stands in for it).
    folder = tmp_path / "app"
    folder.mkdir()
    (folder / "kustomization.yaml").write_text("resources: [thing.yaml]\n")
    (folder / "thing.yaml").write_text("apiVersion: example.com/v1\nkind: Thing\nmetadata:\n  name: a\n")
    if kustomize_output is not None:
        monkeypatch.setattr(
            kustomize,
            "build_with_origins",
            lambda path, *, cwd=None: (built.append("app") or kustomize_output, str(tmp_path)),
        )
    fresh, origins, key = build_cache.build(folder, cwd=tmp_path)
    cached, cached_origins, again = build_cache.build(folder, cwd=tmp_path)

    assert built == ["app"] and key == again is not None  # the second came from the cache
    assert cached == fresh  # a date stays a date
    assert cached_origins == origins
    entries = [p.name for p in (tmp_path / "cache" / "builds").rglob(f"{key}.*")]
    assert entries == [f"{key}{stored_as}"]


def test_origins_name_each_objects_file_and_leave_no_annotation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A base, a component and a generator: kustomize's origin annotation says where each object
    # came from; the build keeps that beside the documents and takes the annotation off them.
    monkeypatch.setenv("MLOPS_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLOPS_BUILD_CACHE", raising=False)
    for path, text in {
        "base/kustomization.yaml": "resources: [service.yaml]\n",
        "base/service.yaml": "apiVersion: v1\nkind: Service\nmetadata:\n  name: web\n"
        "  annotations:\n    team: platform\nspec:\n  ports: [{port: 80}]\n",
        "extra/kustomization.yaml": "apiVersion: kustomize.config.k8s.io/v1alpha1\nkind: Component\n"
        "resources: [account.yaml]\n",
        "extra/account.yaml": "apiVersion: v1\nkind: ServiceAccount\nmetadata:\n  name: web\n",
        "overlay/kustomization.yaml": "namePrefix: dev-\nresources: [../base]\ncomponents: [../extra]\n"
        "configMapGenerator:\n  - name: settings\n    literals: [A=1]\n",
    }.items():
        (tmp_path / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / path).write_text(text)

    for _ in range(2):  # built, then from the cache
        documents, origins, _key = build_cache.build(tmp_path / "overlay", cwd=tmp_path)
        by_kind = {doc["kind"]: origin for doc, origin in zip(documents, origins, strict=True)}
        assert by_kind == {
            "Service": "base/service.yaml",
            "ServiceAccount": "extra/account.yaml",
            "ConfigMap": "overlay/kustomization.yaml",
        }
        assert "config.kubernetes.io/origin" not in str(documents)
        [service] = [doc for doc in documents if doc["kind"] == "Service"]
        assert service["metadata"]["annotations"] == {"team": "platform"}  # the object's own stay
        assert "annotations" not in next(d for d in documents if d["kind"] == "ServiceAccount")["metadata"]


def test_a_version_file_result_is_kept_only_while_the_file_is_unchanged(
    repo_copy: Path, crds_dir: Path, built: list[str]
) -> None:
    # MLOPS073's result of each model-version.yaml is kept across runs; an edit is judged again.
    version_file = repo_copy / MODEL / "model-version.yaml"
    original = version_file.read_text()

    def version_problems() -> list[str]:
        report = validate(repo_copy, ("dev",), crds_dir)
        return [str(p) for p in report.problems if "[MLOPS073:" in str(p)]

    assert version_problems() == []
    version_file.write_text(original.replace('version: "1"', 'version: "abc"'))
    try:
        assert [line.split(": ", 1)[0] for line in version_problems()] == [f"{MODEL}/model-version.yaml:8"]
    finally:
        version_file.write_text(original)
    assert version_problems() == []


def test_terraform_is_parsed_once_and_an_edit_is_parsed_anew(
    repo_root: Path, monkeypatch: pytest.MonkeyPatch, built: list[str]
) -> None:
    # Parsed HCL is kept by content: the kept tree is the fresh one, and an edited file is no hit.
    text = (repo_root / "terraform/modules/eks/variables.tf").read_text()
    first = terraform_hcl.parse_text(text)
    assert len(list((cache_root() / "hcl").rglob("*.json"))) == 1
    with monkeypatch.context() as patched:
        patched.setattr(terraform_hcl, "_parse_fresh", lambda _text: pytest.fail("parsed again"))
        assert terraform_hcl.parse_text(text) == first
    cidr = next(v for block in first["variable"] for k, v in block.items() if k == '"service_ipv4_cidr"')
    edited = text.replace(cidr["default"], '"172.31.0.0/16"', 1)
    variables = terraform_hcl.parse_text(edited)["variable"]
    assert (
        next(v for b in variables for k, v in b.items() if k == '"service_ipv4_cidr"')["default"]
        == '"172.31.0.0/16"'
    )
    monkeypatch.setenv("MLOPS_BUILD_CACHE", "0")
    assert terraform_hcl.parse_text(text) == first  # what the cache kept is what a fresh parse gives
