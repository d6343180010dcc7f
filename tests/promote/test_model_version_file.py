from __future__ import annotations

import pytest
from mlops.conventions.errors import MlopsError
from mlops.repository.model_version_file import check_version_string, parse, weights_digest_problem

D1, D2, D3 = ("sha256:" + c * 64 for c in "abc")

ORIGINAL = """\
# The model version this environment serves. Edited by `mlops promote` / `mlops rollback`.
apiVersion: v1
kind: ConfigMap
metadata:
  name: model-version
  labels:
    app.kubernetes.io/part-of: support-chat
data:
  model: support-chat
  version: "1"                # MLflow registered model version
  weightsUri: s3://mlops-dev-mlflow-artifacts/1/abc/artifacts/model   # where the HF-format weights are
"""


def test_edit_changes_only_the_version_lines_and_keeps_comments_and_order() -> None:
    current = parse(ORIGINAL, "f.yaml", model="support-chat")
    text = current.with_version(
        "12", "s3://mlops-dev-mlflow-artifacts/1/def/artifacts/model", "def", ["3"], weights_digest=D1
    )
    old, new = ORIGINAL.splitlines(), text.splitlines()
    assert new[:9] == old[:9]  # header comment, kind, metadata, data.model untouched
    assert new[9] == 'version: "12"               # MLflow registered model version'.rjust(len(new[9]))
    assert new[10].startswith("  weightsUri: s3://mlops-dev-mlflow-artifacts/1/def/artifacts/model ")
    assert new[10].endswith("# where the HF-format weights are")
    assert new[11:] == [f"  weightsDigest: {D1}", "  mlflowRun: def", "  heldBack: '3'"]
    again = parse(text, "f.yaml", model="support-chat")
    assert (again.version, again.weights_digest, again.run_id, again.held_back) == ("12", D1, "def", ["3"])


def test_clearing_the_hold_removes_the_key() -> None:
    held = parse(ORIGINAL, "f.yaml").with_version("2", "s3://b/model", "r2", ["5", "7"], weights_digest=D1)
    state = parse(held, "f.yaml")
    assert state.held_back == ["5", "7"]
    cleared = state.with_version("5", "s3://c/model", "r5", ["7"], weights_digest=D2)
    assert parse(cleared, "f.yaml").held_back == ["7"]
    assert parse(cleared, "f.yaml").weights_digest == D2
    assert "heldBack" not in parse(cleared, "f.yaml").with_version(
        "7", "s3://d/model", None, [], weights_digest=D3
    )


@pytest.mark.parametrize(
    "digest", [None, "", "sha256:abc", "sha256:" + "A" * 64, "md5:" + "a" * 64, "x\nheldBack: 1"]
)
def test_an_edit_never_writes_a_digest_the_fetch_would_refuse(digest: str | None) -> None:
    with pytest.raises(MlopsError, match=r"f.yaml: data.weightsDigest: "):
        parse(ORIGINAL, "f.yaml").with_version("2", "s3://b/model", "r2", [], weights_digest=digest)


def test_a_digest_that_is_not_a_string_is_named() -> None:
    with pytest.raises(
        MlopsError, match=r"f.yaml: data.weightsDigest is int 7: it is a string, sha256:<64 hex>"
    ):
        parse(ORIGINAL + "  weightsDigest: 7\n", "f.yaml")


def test_none_is_a_digest_only_in_bootstrap_mode() -> None:
    assert weights_digest_problem("none", bootstrapping=True) is None
    assert weights_digest_problem(D1, bootstrapping=False) is None
    assert "only for a folder in bootstrap mode" in str(weights_digest_problem("none", bootstrapping=False))
    assert "missing" in str(weights_digest_problem(None, bootstrapping=True))


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a: [1\n", r"f.yaml: not valid YAML at line 2: expected .*: fix the file"),
        ("- 1\n", r"f.yaml: expected a ConfigMap object, found CommentedSeq"),
        (ORIGINAL.replace("kind: ConfigMap", "kind: Secret"), r"apiVersion/kind is 'v1'/'Secret'"),
        (ORIGINAL.replace('version: "1"', 'version: ""'), r"missing data.version"),
        (
            ORIGINAL.replace('version: "1"', 'version: "v1"'),
            r"data.version 'v1' is not a registered model version",
        ),
        (ORIGINAL.replace("  heldBack", "").replace("weightsUri", "weightsUrl"), r"missing data.weightsUri"),
        (ORIGINAL + '  heldBack: "3,x"\n', r"data.heldBack entry 'x' is not a registered model version"),
        (ORIGINAL.split("\ndata:")[0], r"has no data mapping"),
        (
            ORIGINAL.replace("model: support-chat", "model: support-chat-canary"),
            r"f.yaml: data.model is 'support-chat-canary': a name ending in '-canary' is a model's",
        ),
    ],
)
def test_malformed_files_are_named_with_the_field(text: str, message: str) -> None:
    with pytest.raises(MlopsError, match=message):
        parse(text, "f.yaml", model="support-chat")


@pytest.mark.parametrize("bad", ["0", "-1", "1.0", "latest", "", "01"])
def test_version_strings(bad: str) -> None:
    assert check_version_string("17") == "17"
    with pytest.raises(MlopsError, match="not a registered model version"):
        check_version_string(bad)


# A file as a person on Windows with a 4-space editor left it: CRLF, 4-space indentation, comments,
# a single-quoted weights URI and a comment after the hold.
CRLF_FOUR_SPACES = (
    "# hand-kept: CRLF line endings and 4-space indentation\r\n"
    "apiVersion: v1\r\n"
    "kind: ConfigMap\r\n"
    "metadata:\r\n"
    "    name: model-version\r\n"
    "data:\r\n"
    "    model: support-chat   # the registered model\r\n"
    '    version: "7"          # MLflow registered model version\r\n'
    "    weightsUri: 's3://b/1/aaa/artifacts/model'\r\n"
    "    mlflowRun: aaa\r\n"
    '    heldBack: "3"   # rolled back on Monday\r\n'
    "    # a comment after the data\r\n"
)


def test_an_edit_changes_only_the_changed_values_bytes_of_a_crlf_four_space_file() -> None:
    state = parse(CRLF_FOUR_SPACES, "f.yaml", model="support-chat")

    text = state.with_version("12", "s3://b/1/bbb/artifacts/model", "bbb", ["3", "7"], weights_digest=D1)

    assert text == CRLF_FOUR_SPACES.replace(
        '    version: "7"          #', '    version: "12"         #'
    ).replace("1/aaa/artifacts", "1/bbb/artifacts").replace(
        "mlflowRun: aaa", f"weightsDigest: {D1}\r\n    mlflowRun: bbb"
    ).replace(
        'heldBack: "3"   #',
        'heldBack: "3,7" #',  # the comment keeps its column
    )


def test_keys_added_and_removed_take_the_file_s_indentation_and_line_endings() -> None:
    start = CRLF_FOUR_SPACES.replace("    mlflowRun: aaa\r\n", "").replace(
        '    heldBack: "3"   # rolled back on Monday\r\n', ""
    )
    state = parse(start, "f.yaml", model="support-chat")

    added = state.with_version("8", "s3://b/1/ccc/artifacts/model", "ccc", ["7"], weights_digest=D1)

    assert added.endswith(
        f"    weightsUri: 's3://b/1/ccc/artifacts/model'\r\n    weightsDigest: {D1}\r\n    mlflowRun: ccc\r\n"
        "    heldBack: '7'\r\n    # a comment after the data\r\n"
    )
    assert "\n" not in added.replace("\r\n", "")
    removed = parse(added, "f.yaml").with_version(
        "9", "s3://b/1/ddd/artifacts/model", None, [], weights_digest=D2
    )
    assert removed == start.replace('"7"          #', '"9"          #').replace("1/aaa/", "1/ddd/").replace(
        "artifacts/model'\r\n", f"artifacts/model'\r\n    weightsDigest: {D2}\r\n"
    )
