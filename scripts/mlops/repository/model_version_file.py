"""The model version file: read, check and edit `overlays/<env>/models/<deployment>/model-version.yaml`.

Each folder under `overlays/<env>/models/` is one deployment of a model: `<model>/` is the
stable deployment, `<model>-canary/` an optional canary of the same model (`data.model` is
`<model>` in both) that the gateway sends a weighted share of the traffic to.

The file is a ConfigMap named `model-version`; kustomize replacements copy `data.version`
and `data.weightsUri` into the model's Deployment. `mlops promote` / `mlops rollback` are
the only writers. An edit rewrites only the values it changes, in the file's own text
(ruamel.yaml's round-trip parse says where each value is): line endings (CRLF too),
indentation, quoting, comments and key order stay byte for byte, and a diff of a promote
shows exactly the lines that changed. A data mapping in flow style (`data: {...}`) is
re-dumped by ruamel instead.

Keys this module owns besides the contract's `model`, `version`, `weightsUri`:
  - `weightsDigest`: `sha256:<hex>`, the digest of the version's weights manifest that the
    trainer recorded (trainer.weights_manifest); the model server's weights fetch refuses
    anything else. `none` while the folder is in bootstrap mode (nothing is served or fetched).
  - `mlflowRun`: the MLflow run that produced the version (for audit and `mlops status`).
  - `heldBack`: comma-separated versions a rollback moved away from; an automated promote
    (`--automated`) refuses them until a person promotes them explicitly.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap
from ruamel.yaml.error import YAMLError
from ruamel.yaml.scalarstring import DoubleQuotedScalarString

from mlops.conventions import write_inputs
from mlops.conventions.deployment import CANARY_SUFFIX, VERSION_FILE_NAME, Deployment
from mlops.conventions.errors import MlopsError
from mlops.conventions.registry_names import MODEL_ARTIFACT_PATH, WEIGHTS_DIGEST

CONFIGMAP_NAME = "model-version"
HELD_BACK_KEY = "heldBack"
RUN_KEY = "mlflowRun"
WEIGHTS_DIGEST_KEY = "weightsDigest"
BOOTSTRAP_DIGEST = "none"
"""`weightsDigest` of a folder in bootstrap mode: no version is served, so no weights are fetched."""


class ModelVersionFileError(MlopsError):
    """The model version file is missing, not YAML, or not the ConfigMap it must be."""


def check_version_string(version: str, what: str = "version") -> str:
    """Return `version` if it is an MLflow registered model version (1, 2, ...); raise otherwise."""
    return write_inputs.check_version(version, what)


@dataclass
class ModelVersionFile:
    """One parsed model version file.

    Attributes:
        path: the file's path relative to the repository root (used in messages).
        model: `data.model`.
        version: `data.version`.
        weights_uri: `data.weightsUri`.
        weights_digest: `data.weightsDigest`, or None when the file (an old one) has none.
        run_id: `data.mlflowRun`, or None when not recorded.
        held_back: versions listed in `data.heldBack`, oldest first.
    """

    path: str
    model: str
    version: str
    weights_uri: str
    weights_digest: str | None = None
    run_id: str | None = None
    held_back: list[str] = field(default_factory=list)
    _doc: CommentedMap | None = field(default=None, repr=False)
    _text: str | None = field(default=None, repr=False)

    def with_version(
        self,
        version: str,
        weights_uri: str,
        run_id: str | None,
        held_back: list[str],
        *,
        weights_digest: str | None,
    ) -> str:
        """Return the file's text with the new values; every other line stays as it was.

        Every value written is one line without control characters (the registry or an old
        state of the file could hold anything): such a value raises and nothing is written;
        so does a `weights_digest` that is neither `sha256:<64 hex>` nor the bootstrap `none` (a
        canary abort copies a stable deployment that may still be in bootstrap mode; promote and
        rollback check for a real digest themselves, and `mlops validate` MLOPS085 judges the result).
        """
        assert self._doc is not None
        write_inputs.check_version(version, f"{self.path}: data.version")
        write_inputs.check_trailer_value(weights_uri, f"{self.path}: data.weightsUri")
        found = weights_digest_problem(weights_digest, bootstrapping=True)
        if found or weights_digest is None:
            raise ModelVersionFileError(f"{self.path}: data.{WEIGHTS_DIGEST_KEY}: {found}")
        if run_id:
            write_inputs.check_trailer_value(run_id, f"{self.path}: data.{RUN_KEY}")
        for held in held_back:
            write_inputs.check_version(held, f"{self.path}: data.{HELD_BACK_KEY} entry")
        if self._text is not None and not self._doc["data"].fa.flow_style():
            try:
                text = self._text
                text = _set_in_text(text, "version", version, after="model")
                text = _set_in_text(text, "weightsUri", weights_uri, after="version")
                text = _set_in_text(text, WEIGHTS_DIGEST_KEY, weights_digest, after="weightsUri")
                text = _set_in_text(text, RUN_KEY, run_id or None, after=WEIGHTS_DIGEST_KEY)
                data = _yaml().load(text)["data"]
                after = RUN_KEY if RUN_KEY in data else WEIGHTS_DIGEST_KEY
                return _set_in_text(text, HELD_BACK_KEY, ",".join(held_back) or None, after=after)
            except _NotOneLine:
                pass  # re-dumped below
        doc = self._doc
        data = doc["data"]
        _set(data, "version", version, after="model")
        _set(data, "weightsUri", weights_uri, after="version")
        _set(data, WEIGHTS_DIGEST_KEY, weights_digest, after="weightsUri")
        if run_id:
            _set(data, RUN_KEY, run_id, after=WEIGHTS_DIGEST_KEY)
        elif RUN_KEY in data:
            del data[RUN_KEY]
        if held_back:
            after = RUN_KEY if RUN_KEY in data else WEIGHTS_DIGEST_KEY
            _set(data, HELD_BACK_KEY, ",".join(held_back), after=after)
        elif HELD_BACK_KEY in data:
            del data[HELD_BACK_KEY]
        out = io.StringIO()
        _yaml().dump(doc, out)
        return out.getvalue()


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.preserve_quotes = True
    yaml.width = 4096  # never re-wrap a long weights URI
    yaml.indent(mapping=2, sequence=4, offset=2)
    return yaml


def _set(data: CommentedMap, key: str, value: str, *, after: str) -> None:
    """Set `data[key]` in place (keeping its quoting) or insert it after `after`.

    ConfigMap data values must be strings: ruamel quotes a plain string that would read back
    as a number or boolean, and a value that was double-quoted stays double-quoted.
    """
    if key in data:
        data[key] = (
            DoubleQuotedScalarString(value) if isinstance(data[key], DoubleQuotedScalarString) else value
        )
        return
    keys = list(data.keys())
    position = keys.index(after) + 1 if after in keys else len(keys)
    data.insert(position, key, value)


class _NotOneLine(Exception):
    """A value the text edit cannot replace on its line (it spans several): ruamel re-dumps the file."""


def _scalar_end(line: str, start: int) -> int:
    """Return where the one-line scalar starting at `start` ends (before padding and a comment)."""
    quote = line[start : start + 1]
    if quote in ("'", '"'):
        i = start + 1
        while i < len(line):
            if quote == '"' and line[i] == "\\":
                i += 2
                continue
            if line[i] == quote:
                if quote == "'" and line[i + 1 : i + 2] == "'":  # '' is an escaped quote
                    i += 2
                    continue
                return i + 1
            i += 1
        raise _NotOneLine("a quoted scalar that goes on past its line")
    comment = line.find(" #", start)
    return len((line if comment < 0 else line[:comment]).rstrip())


def _render_scalar(value: str, style: str) -> str:
    """Return `value` as a YAML scalar in `style` (`"`, `'`, or plain), quoting a plain one that needs it."""
    if style == "" and _yaml().load(f"k: {value}\n")["k"] != value or ": " in value or " #" in value:
        style = "'"
    if style == '"':
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if style == "'":
        return "'" + value.replace("'", "''") + "'"
    return value


def _set_in_text(text: str, key: str, value: str | None, *, after: str) -> str:
    """Return `text` with `data[key]` set to `value` (None removes its line); nothing else changes.

    An existing value is replaced in place, in its own quoting, and the padding before a
    trailing comment shrinks or grows so the comment stays in its column. A new key goes on a
    line of its own after `after`, with that line's indentation and line ending.
    """
    data = _yaml().load(text)["data"]
    lines = text.splitlines(keepends=True)
    if key in data:
        row, col = data.lc.value(key)
        if row != data.lc.key(key)[0]:
            raise _NotOneLine(key)
        line = lines[row]
        body = line.rstrip("\r\n")
        eol = line[len(body) :]
        if value is None:
            del lines[row]
            return "".join(lines)
        end = _scalar_end(body, col)
        if _yaml().load(f"k: {body[col:end]}\n")["k"] != data[key]:
            raise _NotOneLine(key)
        style = body[col] if body[col : col + 1] in ("'", '"') else ""
        new = _render_scalar(value, style)
        rest = body[end:]
        pad = len(rest) - len(rest.lstrip(" "))
        if rest.lstrip(" ").startswith("#"):
            rest = " " * max(1, pad - (len(new) - (end - col))) + rest.lstrip(" ")
        lines[row] = body[:col] + new + rest + eol
        return "".join(lines)
    if value is None:
        return text
    keys = list(data.keys())
    anchor = after if after in keys else keys[-1]
    row, col = data.lc.key(anchor)
    line = lines[row]
    eol = line[len(line.rstrip("\r\n")) :] or ("\r\n" if "\r\n" in text else "\n")
    if not line.endswith(("\n", "\r")):
        lines[row] = line + eol
    lines.insert(row + 1, f"{' ' * col}{key}: {_render_scalar(value, '')}{eol}")
    return "".join(lines)


def parse(
    text: str, path: str, *, model: str | None = None, deployment: str | None = None
) -> ModelVersionFile:
    """Parse and check the file's shape; errors name the file and the field and say what to do.

    `model` requires `data.model` to be exactly that; `deployment` (a folder name) requires
    `data.model` to be the folder name or, for a `<model>-canary` folder, `<model>`.
    """
    try:
        doc = _yaml().load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or exc.__class__.__name__
        raise ModelVersionFileError(f"{path}: not valid YAML{where}: {problem}: fix the file") from exc
    if not isinstance(doc, CommentedMap):
        raise ModelVersionFileError(f"{path}: expected a ConfigMap object, found {type(doc).__name__}")
    if doc.get("apiVersion") != "v1" or doc.get("kind") != "ConfigMap":
        raise ModelVersionFileError(
            f"{path}: apiVersion/kind is {doc.get('apiVersion')!r}/{doc.get('kind')!r}, "
            "expected v1/ConfigMap: the model version file is a ConfigMap named model-version"
        )
    name = (doc.get("metadata") or {}).get("name") if isinstance(doc.get("metadata"), dict) else None
    if name != CONFIGMAP_NAME:
        raise ModelVersionFileError(f"{path}: metadata.name is {name!r}, expected {CONFIGMAP_NAME!r}")
    data = doc.get("data")
    if not isinstance(data, CommentedMap):
        raise ModelVersionFileError(
            f"{path}: ConfigMap model-version has no data mapping: add data.model, "
            "data.version and data.weightsUri"
        )
    for key in ("model", "version", "weightsUri"):
        value = data.get(key)
        if value is None or str(value).strip() == "":
            raise ModelVersionFileError(f"{path}: ConfigMap model-version is missing data.{key}")
        if not isinstance(value, str):
            raise ModelVersionFileError(
                f"{path}: ConfigMap model-version data.{key} is {type(value).__name__} {value!r}; "
                f'ConfigMap data values are strings: quote it ("{value}")'
            )
    if data["model"].endswith(CANARY_SUFFIX):
        raise ModelVersionFileError(
            f"{path}: data.model is {data['model']!r}: a name ending in {CANARY_SUFFIX!r} is a model's "
            "canary deployment (its folder), never a model: set data.model to the registered model name"
        )
    if model is not None and data["model"] != model:
        raise ModelVersionFileError(
            f"{path}: data.model is {data['model']!r} but the folder is for model {model!r}: fix data.model"
        )
    if deployment is not None:
        check_deployment_folder(data["model"], deployment, path)
    check_version_string(data["version"], f"{path}: data.version")
    held_raw = data.get(HELD_BACK_KEY) or ""
    if not isinstance(held_raw, str):
        raise ModelVersionFileError(f'{path}: data.{HELD_BACK_KEY} must be a string like "3,5"')
    held = [v.strip() for v in held_raw.split(",") if v.strip()]
    for v in held:
        check_version_string(v, f"{path}: data.{HELD_BACK_KEY} entry")
    run_id = data.get(RUN_KEY)
    digest = data.get(WEIGHTS_DIGEST_KEY)
    if digest is not None and not isinstance(digest, str):
        raise ModelVersionFileError(
            f"{path}: data.{WEIGHTS_DIGEST_KEY} is {type(digest).__name__} {digest!r}: "
            'it is a string, sha256:<64 hex> (or "none" in bootstrap mode)'
        )
    return ModelVersionFile(
        path=path,
        model=str(data["model"]),
        version=str(data["version"]),
        weights_uri=str(data["weightsUri"]),
        weights_digest=digest or None,
        run_id=str(run_id) if run_id else None,
        held_back=held,
        _doc=doc,
        _text=text,
    )


def check_deployment_folder(model: str, deployment: str, path: str) -> None:
    """Raise unless folder `deployment` is a deployment of `model`: `<model>/` or `<model>-canary/`."""
    if deployment not in (model, model + CANARY_SUFFIX):
        stable = deployment.removesuffix(CANARY_SUFFIX)
        raise ModelVersionFileError(
            f"{path}: data.model is {model!r} but folder {deployment!r} is a deployment of model "
            f"{stable!r}: set data.model to {stable!r} (a folder is <model>/ or <model>{CANARY_SUFFIX}/)"
        )


RUN_ID = re.compile(r"[0-9a-f]{32}")
"""An MLflow run id: a uuid4 in hex (mlflow `store/tracking/file_store.py` and `sqlalchemy_store.py`,
`uuid.uuid4().hex`)."""


PLACEHOLDER = re.compile(r"<[^<>]*>")
"""A documentation placeholder such as `<experiment>` or `<run>`, as docs/adding-a-model.md writes them."""


def placeholder_problem(key: str, value: str) -> str | None:
    """Why `value` of `data.<key>` is a placeholder left in from an example (None when it is not).

    A `<run>` left in a path is a valid S3 key, so the bucket check alone lets it through, and
    vLLM's init container would then copy from a location nothing ever wrote.
    """
    found = PLACEHOLDER.search(value)
    if found is None:
        return None
    return (
        f"{value!r} still holds the placeholder {found.group()!r} (copied from an example): "
        f"`mlops promote` writes the real {key}; until the first promote, keep the folder in bootstrap mode"
    )


def weights_uri_problem(uri: str, bucket: str) -> str | None:
    """Why `uri` is not an `s3://` URI of an object path in `bucket` (None when it is)."""
    placeholder = placeholder_problem("weightsUri", uri)
    if placeholder:
        return placeholder
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        return f"{uri!r} is not an s3:// URI: the weights are copied from S3 (aws s3 cp WEIGHTS_URI/)"
    if parts.netloc != bucket:
        return (
            f"{uri!r} is in bucket {parts.netloc!r}, not this environment's artifact bucket {bucket!r} "
            "(terraform modules/data): the environment's vLLM role reads its own bucket only"
        )
    if not parts.path.strip("/") or parts.query or parts.fragment or " " in uri:
        return (
            f"{uri!r} names no object path in {bucket!r} "
            f"(s3://{bucket}/<experiment>/<run>/artifacts/{MODEL_ARTIFACT_PATH}/attempt-<id>)"
        )
    return None


def weights_digest_problem(digest: str | None, *, bootstrapping: bool) -> str | None:
    """Why `digest` is no weights digest the model server's fetch accepts (None when it is one).

    A folder in bootstrap mode (`bootstrapping`) serves nothing, so `none` is accepted there;
    its first promote writes the trainer's digest.
    """
    if digest is None or digest == "":
        return (
            f"missing: the weights fetch verifies what it downloads against data.{WEIGHTS_DIGEST_KEY} "
            f"(sha256:<64 hex>, which `mlops promote` copies from the version's weights_digest tag)"
            + (f'; a folder in bootstrap mode says "{BOOTSTRAP_DIGEST}"' if bootstrapping else "")
        )
    if digest == BOOTSTRAP_DIGEST and bootstrapping:
        return None
    if WEIGHTS_DIGEST.fullmatch(digest):
        return None
    if digest == BOOTSTRAP_DIGEST:
        return (
            f'"{BOOTSTRAP_DIGEST}" is only for a folder in bootstrap mode, and this one serves a version: '
            "promote it again (`mlops promote`) to write the version's sha256:<64 hex> digest"
        )
    placeholder = placeholder_problem(WEIGHTS_DIGEST_KEY, digest)
    if placeholder:
        return placeholder
    return f"{digest!r} is not sha256:<64 lowercase hex> (the digest of the trainer's weights manifest)"


def run_id_problem(run_id: str) -> str | None:
    """Why `run_id` is not an MLflow run id (None when it is)."""
    if RUN_ID.fullmatch(run_id):
        return None
    placeholder = placeholder_problem(RUN_KEY, run_id)
    if placeholder:
        return placeholder
    return f"{run_id!r} is not an MLflow run id (32 lowercase hex characters)"


def load(repo: Path, env: str, folder: str) -> ModelVersionFile:
    """Read the working tree's file of the deployment whose folder is `folder` in `env`."""
    deployment = Deployment.from_folder(env, folder)
    file = repo / deployment.version_file
    if not file.is_file():
        raise ModelVersionFileError(missing_message(repo, deployment))
    return parse(file.read_text(), deployment.version_file, deployment=folder)


def deployments_in(repo: Path, env: str) -> list[str]:
    """Return the deployment folders (stable and canary) that have a version file in `env`, sorted."""
    root = repo / "overlays" / env / "models"
    return sorted(p.parent.name for p in root.glob(f"*/{VERSION_FILE_NAME}")) if root.is_dir() else []


def missing_message(repo: Path, deployment: Deployment) -> str:
    """Say that `deployment` has no version file and which deployments of its environment do."""
    env = deployment.env
    known = deployments_in(repo, env)
    what = (
        f"no canary of model {deployment.model!r}"
        if deployment.canary
        else f"unknown model {deployment.model!r}"
    )
    hint = ": add the canary folder first (docs/adding-a-model.md, Canary)" if deployment.canary else ""
    return (
        f"{what} in {env}: {deployment.version_file} does not exist "
        f"(deployments in {env}: {', '.join(known) or 'none'}){hint}"
    )


def read_deployed(path: Path) -> tuple[str, str]:
    """Return (`data.model`, `data.version`) of a version file, or of its ConfigMap mounted as a folder.

    `path` is either the YAML file as git has it (`overlays/<env>/models/<deployment>/model-version.yaml`)
    or a folder where the ConfigMap is mounted as a volume (one file per key: `model`, `version`),
    which is how the Sync hook Job reads what Argo CD just synced.
    """
    if path.is_dir():
        values = {}
        for key in ("model", "version"):
            file = path / key
            if not file.is_file():
                raise ModelVersionFileError(
                    f"{path}: no file {key!r}: mount the whole model-version ConfigMap there "
                    "(data.model and data.version become the files model and version)"
                )
            values[key] = file.read_text().strip()
        if values["model"].endswith(CANARY_SUFFIX) or not values["model"]:
            raise ModelVersionFileError(
                f"{path}/model is {values['model']!r}: set data.model to the registered model name"
            )
        check_version_string(values["version"], f"{path}/version")
        return values["model"], values["version"]
    if not path.is_file():
        raise ModelVersionFileError(
            f"version file {path} does not exist: pass "
            f"overlays/<env>/models/<deployment>/{VERSION_FILE_NAME} "
            "or the folder the model-version ConfigMap is mounted at"
        )
    parsed = parse(path.read_text(), str(path))
    return parsed.model, parsed.version
