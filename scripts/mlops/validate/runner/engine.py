"""Render every environment and validate it: schemas, CEL rules, embedded manifests, policies, coverage.

report = validate(repo, ("dev", "prod"), crds_dir)
for problem in report.problems: print(problem)
print(report.summary())
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlops.rendering import kustomize, render
from mlops.validate.env_rules import generated
from mlops.validate.objects import appsets, sources, yaml_files
from mlops.validate.objects.embedded import embedded_manifests
from mlops.validate.objects.problems import Problem, resource_name
from mlops.validate.objects.violations import HINTS
from mlops.validate.runner import env_checks, policies
from mlops.validate.runner.result_cache import SchemaResultCache
from mlops.validate.schema_checks import cel
from mlops.validate.schema_checks.crds import crd_files
from mlops.validate.schema_checks.schemas import SchemaResult, Schemas

_SCHEMAS: dict[Path, Schemas] = {}


def schemas_for(crds_dir: Path) -> Schemas:
    """Return the schemas of `crds_dir`, loaded once per process (tests share them)."""
    key = crds_dir.resolve()
    if key not in _SCHEMAS:
        _SCHEMAS[key] = Schemas(key)
    return _SCHEMAS[key]


@dataclass
class Report:
    """Everything one `mlops validate` run found."""

    envs: Sequence[str]
    problems: list[Problem] = field(default_factory=list)
    documents: int = 0
    kustomizations: int = 0
    render_seconds: float = 0.0
    validate_seconds: float = 0.0
    cel_unevaluated: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    """Kind → rule text → how many times cel-python could not evaluate it."""
    waited: list[str] = field(default_factory=list)
    """Per environment with a failed build: which whole-tree checks waited for it."""

    @property
    def ok(self) -> bool:
        """Whether nothing needs fixing."""
        return not self.problems

    def notices(self) -> list[str]:
        """One-line notices that are not problems (CEL rules not evaluated, checks that waited)."""
        if not self.cel_unevaluated:
            return list(self.waited)
        per_kind = ", ".join(f"{kind} {len(rules)}" for kind, rules in sorted(self.cel_unevaluated.items()))
        total = sum(len(rules) for rules in self.cel_unevaluated.values())
        return [
            f"notice: {total} CEL rules could not be evaluated by cel-python and were not checked "
            f"({per_kind}); see docs/validation.md",
            *self.waited,
        ]

    def summary(self) -> str:
        """Return the closing line: counts and timings."""
        count = len(self.problems)
        return (
            f"{count} problem{'' if count == 1 else 's'} in {self.documents} documents across "
            f"{', '.join(self.envs)} "
            f"(rendered {self.kustomizations} kustomizations in {self.render_seconds:.2f}s, "
            f"validated in {self.validate_seconds:.2f}s)"
        )


def validate(repo: Path, envs: Sequence[str], crds_dir: Path) -> Report:
    """Render `envs` in parallel and check every document; problems are returned, not raised.

    Raises:
        MlopsError: the CRD directory is missing or empty, or an environment is unknown.
    """
    report = Report(envs=tuple(envs))
    crd_files(crds_dir)  # a missing CRD directory is a usage error: say so before building anything
    kustomize.kustomize_command()  # so is a machine without kubectl or kustomize: one line, not one a folder
    start = time.perf_counter()
    wanted = [t for env in envs for t in render.targets(repo, env)]
    # Checks of the repository's files (not of rendered objects) run beside the builds.
    file_checks = ThreadPoolExecutor(2, thread_name_prefix="file-checks")
    file_futures = [file_checks.submit(yaml_files.check, repo), file_checks.submit(generated.check, repo)]
    # kustomize runs in subprocesses: start them all first, load the schemas while they run,
    # then check each kustomization as soon as it is built, while the others still build.
    with ThreadPoolExecutor(render.default_workers(len(wanted)), thread_name_prefix="kustomize") as pool:
        futures = [pool.submit(render.render_target, repo, target) for target in wanted]
        schemas = schemas_for(crds_dir)
        checker = _Checker(repo, schemas, report, SchemaResultCache(crds_dir, schemas.core.version))
        rendered = [_check_rendered(future.result(), checker, report) for future in futures]
    checker.results.save()
    report.render_seconds = max((r.finished for r in rendered), default=start) - start
    report.kustomizations = len(rendered)
    report.problems.extend(appsets.check_coverage(repo, envs, rendered))
    report.problems.extend(problem for future in file_futures for problem in future.result())
    file_checks.shutdown()
    for env in envs:
        # A check about the repository (terraform, CI) says the same for every environment: once.
        seen = set(report.problems)
        report.problems.extend(p for p in env_checks.check_env(repo, env, rendered) if p not in seen)
        if notice := env_checks.unchecked_notice(env, rendered):
            report.waited.append(notice)
    report.problems = sources.locate(repo, rendered, _once(report.problems))
    cel.save_cache()
    # Checking overlaps rendering; what it adds beyond the last build is the validation time.
    report.validate_seconds = time.perf_counter() - start - report.render_seconds
    return report


def _once(problems: list[Problem]) -> list[Problem]:
    """Drop repeated lines, and a build failure that only repeats the YAML error MLOPS049 reports.

    kustomize says `invalid Kustomization: yaml: line 6: ...` of a kustomization that does not
    parse; MLOPS049 names the same file, line and column, so the failure is said once.
    """
    unparsable = {p.file.rsplit(":", 1)[0] for p in problems if p.policy_id == "MLOPS049"}
    # A container's quantity is judged by its schema (format quantity) and by MLOPS041's parse:
    # the two lines are the same line.
    return [p for p in dict.fromkeys(problems) if not (p.field == BUILD_FIELD and _repeats(p, unparsable))]


def _repeats(problem: Problem, unparsable: set[str]) -> bool:
    return problem.file.split(":")[0] in unparsable and "invalid Kustomization" in problem.message


BUILD_FIELD = "(build)"
"""The field of a build failure's problem: the whole kustomization, named by its file."""


def _check_rendered(
    result: render.RenderedKustomization, checker: _Checker, report: Report
) -> render.RenderedKustomization:
    if result.error:
        message = result.error.split(": ", 1)[-1]
        report.problems.append(
            Problem(
                kustomize.failed_file(result.path, message, checker.repo),
                f"Kustomization/{result.component}",
                BUILD_FIELD,
                message,
            )
        )
    for doc in result.documents:
        checker.check(result.path, result.env, doc)
    return result


class _Checker:
    """Checks documents, reusing the schema result of a document seen before (dev and prod share bases)."""

    def __init__(self, repo: Path, schemas: Schemas, report: Report, results: SchemaResultCache) -> None:
        self.repo = repo
        self.schemas = schemas
        self.report = report
        self.results = results  # the results of earlier runs, by document content
        self._seen: dict[str, SchemaResult] = {}

    def check(self, file: str, env: str, doc: dict[str, Any]) -> None:
        if not isinstance(doc, dict):
            self.report.problems.append(Problem(file, "(document)", "", "document is not a mapping"))
            return
        self._check_one(file, env, doc, resource_name(doc), templated=False)
        for embedded in embedded_manifests(doc):
            parent = resource_name(doc)
            if embedded.document is None:
                self.report.problems.append(Problem(file, parent, embedded.field, embedded.error or ""))
                continue
            child = f"{resource_name(embedded.document)} (in {parent} {embedded.field})"
            self._check_one(file, env, embedded.document, child, templated=True)

    def _check_one(self, file: str, env: str, doc: dict[str, Any], name: str, *, templated: bool) -> None:
        self.report.documents += 1
        key = json.dumps(doc, sort_keys=True, default=str) + str(templated)
        result = self._seen.get(key)
        if result is None:
            stored_key = self.results.key(key)
            result = self.results.get(stored_key)
            if result is None:
                result = self.schemas.check(doc, templated=templated)
                self.results.put(stored_key, result)
            self._seen[key] = result
            kind = str(doc.get("kind"))
            for rule, count in result.cel_unevaluated.items():
                self.report.cel_unevaluated[kind][rule] += count
        for where, message, *policy in result.errors:
            hint = (policy[0], HINTS[policy[0]]) if policy else ()
            self.report.problems.append(Problem(file, name, where, message, *hint))
        for violation in policies.check(doc, env, templated=templated):
            self.report.problems.append(
                Problem(
                    file,
                    name,
                    violation.field,
                    violation.message,
                    violation.policy_id,
                    violation.hint,
                )
            )
