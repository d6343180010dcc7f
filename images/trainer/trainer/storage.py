"""Local paths and `s3://` URIs behind one small interface (boto3; honours AWS_ENDPOINT_URL)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from trainer.errors import TrainerError


def is_s3(uri: str) -> bool:
    """Whether ``uri`` names an S3 object or prefix."""
    return uri.startswith("s3://")


def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if not parsed.netloc:
        raise TrainerError(f"{uri}: an S3 URI needs a bucket, e.g. s3://mlops-dev-datasets/path")
    return parsed.netloc, parsed.path.lstrip("/")


def _client() -> Any:
    import boto3

    # boto3 reads AWS_ENDPOINT_URL itself (moto in tests, Pod Identity credentials in the cluster).
    return boto3.client("s3")


class Location:
    """A directory: a local path or an ``s3://bucket/prefix``; paths below it are '/'-separated."""

    def __init__(self, uri: str) -> None:
        self.uri = uri.rstrip("/")
        self.s3 = is_s3(uri)
        if self.s3:
            self.bucket, self.prefix = _split(self.uri)
            self._s3: Any = None
        else:
            self.path = Path(uri)

    def _key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    @property
    def client(self) -> Any:
        """The boto3 S3 client, made on first use."""
        if self._s3 is None:
            self._s3 = _client()
        return self._s3

    def child(self, relative: str) -> str:
        """URI of ``relative`` below this location."""
        return f"{self.uri}/{relative}"

    def exists(self, relative: str) -> bool:
        """Whether the file ``relative`` exists."""
        if not self.s3:
            return (self.path / relative).is_file()
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(relative))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return False
            raise
        return True

    def subdirs(self) -> list[str]:
        """Names of the directories directly below this location."""
        if not self.s3:
            return sorted(p.name for p in self.path.iterdir() if p.is_dir()) if self.path.is_dir() else []
        names = []
        paginator = self.client.get_paginator("list_objects_v2")
        prefix = f"{self.prefix}/" if self.prefix else ""
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix, Delimiter="/"):
            for common in page.get("CommonPrefixes", []):
                names.append(common["Prefix"][len(prefix) :].rstrip("/"))
        return sorted(names)

    def put_file(self, local: Path, relative: str) -> None:
        """Copy a local file to ``relative``."""
        if self.s3:
            self.client.upload_file(str(local), self.bucket, self._key(relative))
            return
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        shutil.copyfile(local, tmp)
        os.replace(tmp, target)

    def put_text(self, text: str, relative: str) -> None:
        """Write ``text`` to ``relative``."""
        if self.s3:
            self.client.put_object(Bucket=self.bucket, Key=self._key(relative), Body=text.encode("utf-8"))
            return
        target = self.path / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, target)

    def put_dir(self, local: Path, relative: str) -> None:
        """Copy every file below the local directory to ``relative/``."""
        for path in sorted(local.rglob("*")):
            if path.is_file():
                self.put_file(path, f"{relative}/{path.relative_to(local).as_posix()}")

    def get_file(self, relative: str, local: Path) -> Path:
        """Copy ``relative`` to the local file ``local``."""
        local.parent.mkdir(parents=True, exist_ok=True)
        if self.s3:
            self.client.download_file(self.bucket, self._key(relative), str(local))
        else:
            shutil.copyfile(self.path / relative, local)
        return local

    def get_dir(self, relative: str, local: Path) -> Path:
        """Copy every file below ``relative/`` into the local directory ``local``."""
        local.mkdir(parents=True, exist_ok=True)
        if not self.s3:
            shutil.copytree(self.path / relative, local, dirs_exist_ok=True)
            return local
        prefix = self._key(relative).rstrip("/") + "/"
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                target = local / item["Key"][len(prefix) :]
                target.parent.mkdir(parents=True, exist_ok=True)
                self.client.download_file(self.bucket, item["Key"], str(target))
        return local

    def delete_dir(self, relative: str) -> None:
        """Remove ``relative/`` and everything below it."""
        if not self.s3:
            shutil.rmtree(self.path / relative, ignore_errors=True)
            return
        prefix = self._key(relative).rstrip("/") + "/"
        paginator = self.client.get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self.bucket, Prefix=prefix):
            keys = [{"Key": item["Key"]} for item in page.get("Contents", [])]
            if keys:
                self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": keys})


def check_file(uri: str, what: str, flag: str) -> None:
    """Fail with a clear message when the file ``uri`` (local or S3) does not exist."""
    if is_s3(uri):
        bucket, key = _split(uri)
        parent, _, name = key.rpartition("/")
        if not _exists(Location(f"s3://{bucket}/{parent}" if parent else f"s3://{bucket}"), name, uri):
            raise TrainerError(f"{flag} {uri}: no such {what} in S3; check the bucket and key")
    elif not Path(uri).is_file():
        hint = "it is a directory; give the JSONL file" if Path(uri).is_dir() else "no such file"
        raise TrainerError(f"{flag} {uri}: {hint} ({what})")


def check_model_dir(uri: str, flag: str) -> None:
    """Fail with a clear message unless ``uri`` is a Hugging Face model directory (has config.json)."""
    if is_s3(uri):
        if not _exists(Location(uri), "config.json", uri):
            raise TrainerError(
                f"{flag} {uri}: no config.json under this S3 prefix; give the prefix of a model saved "
                "in Hugging Face format, or 'tiny'"
            )
        return
    path = Path(uri)
    if not path.is_dir():
        raise TrainerError(
            f"{flag} {uri}: no such directory; give a Hugging Face model directory, an s3:// prefix "
            "of one, or 'tiny'"
        )
    if not (path / "config.json").is_file():
        raise TrainerError(
            f"{flag} {uri}: no config.json in this directory; it is not a model saved in Hugging Face format"
        )


def _exists(location: Location, relative: str, uri: str) -> bool:
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        return location.exists(relative)
    except (ClientError, BotoCoreError) as exc:
        raise TrainerError(f"{uri}: cannot read from S3 ({exc}); check credentials and the bucket") from None


def fetch_file(uri: str, local: Path) -> Path:
    """A local copy of the file ``uri`` (the path itself when it is local)."""
    if not is_s3(uri):
        return Path(uri)
    bucket, key = _split(uri)
    local.parent.mkdir(parents=True, exist_ok=True)
    _client().download_file(bucket, key, str(local))
    return local


def fetch_dir(uri: str, local: Path) -> Path:
    """A local copy of the directory ``uri`` (the path itself when it is local)."""
    if not is_s3(uri):
        return Path(uri)
    bucket, key = _split(uri)
    return Location(f"s3://{bucket}").get_dir(key, local)
