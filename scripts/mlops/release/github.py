"""Open a pull request through the GitHub REST API (used by prod promotes and rollbacks).

Token: `GITHUB_TOKEN`. API base: `GITHUB_API_URL` (default https://api.github.com; GitHub
Enterprise uses https://HOST/api/v3, and the tests point it at a local stand-in server).
Repository: `GITHUB_REPOSITORY` (`owner/name`), else parsed from the git remote's URL.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import httpx

from mlops.conventions.errors import MlopsError

DEFAULT_API_URL = "https://api.github.com"
_REMOTE_RE = re.compile(r"github[^/:]*[:/](?P<owner>[^/]+)/(?P<name>[^/]+?)(?:\.git)?/?$")


class GitHubError(MlopsError):
    """The GitHub API refused or could not be reached."""


@dataclass
class PullRequest:
    """An opened (or already open) pull request."""

    number: int
    url: str
    created: bool


def repository_from_remote(url: str) -> str | None:
    """Return `owner/name` from a GitHub remote URL (https or ssh), or None for other hosts."""
    match = _REMOTE_RE.search(url)
    return f"{match['owner']}/{match['name']}" if match else None


def _api(api_url: str | None) -> str:
    return (api_url or os.environ.get("GITHUB_API_URL") or DEFAULT_API_URL).rstrip("/")


def _headers(token: str) -> dict[str, str]:
    return {
        "Authorization": f"Bearer {token}",
        "Accept": "application/vnd.github+json",
        "X-GitHub-Api-Version": "2022-11-28",
    }


def find_open_pull_request(
    *, token: str, repository: str, head: str, api_url: str | None = None
) -> PullRequest | None:
    """Return the open pull request from branch `head`, or None when there is none."""
    api = _api(api_url)
    owner = repository.split("/", 1)[0]
    try:
        with httpx.Client(base_url=api, headers=_headers(token), timeout=30) as client:
            found = client.get(
                f"/repos/{repository}/pulls", params={"head": f"{owner}:{head}", "state": "open"}
            )
    except httpx.HTTPError as exc:
        raise GitHubError(
            f"cannot reach the GitHub API at {api}: {exc}: check GITHUB_API_URL and the network"
        ) from exc
    if found.status_code != 200:
        raise GitHubError(
            f"GitHub API {api} refused to list pull requests of {repository}: HTTP {found.status_code}: "
            "check that GITHUB_TOKEN may read pull requests"
        )
    pulls = found.json()
    if not pulls:
        return None
    return PullRequest(number=pulls[0]["number"], url=pulls[0]["html_url"], created=False)


def open_pull_request(
    *, token: str, repository: str, head: str, base: str, title: str, body: str, api_url: str | None = None
) -> PullRequest:
    """Open a PR from `head` into `base`; when one is already open for `head`, return that one."""
    api = _api(api_url)
    headers = _headers(token)
    owner = repository.split("/", 1)[0]
    try:
        with httpx.Client(base_url=api, headers=headers, timeout=30) as client:
            resp = client.post(
                f"/repos/{repository}/pulls", json={"title": title, "head": head, "base": base, "body": body}
            )
            if resp.status_code == 201:
                data = resp.json()
                return PullRequest(number=data["number"], url=data["html_url"], created=True)
            if resp.status_code == 422 and "already exists" in resp.text:
                found = client.get(
                    f"/repos/{repository}/pulls", params={"head": f"{owner}:{head}", "state": "open"}
                )
                if found.status_code == 200 and found.json():
                    data = found.json()[0]
                    return PullRequest(number=data["number"], url=data["html_url"], created=False)
    except httpx.HTTPError as exc:
        raise GitHubError(
            f"cannot reach the GitHub API at {api}: {exc}: check GITHUB_API_URL and the network"
        ) from exc
    message = resp.text[:300]
    try:
        message = resp.json().get("message", message)
    except ValueError:
        pass
    raise GitHubError(
        f"GitHub API {api} refused to open a pull request {head} -> {base} in {repository}: "
        f"HTTP {resp.status_code} {message}: check that GITHUB_TOKEN may create pull requests"
    )
