#!/bin/sh
# git-bot: clone the GitOps repository with the mounted token, then `mlops promote ... --automated`.
#
# Environment:
#   GIT_REPO_URL    the GitOps repository (https://github.com/OWNER/REPO.git); required
#   GIT_BRANCH      the branch Argo CD follows (default: main)
#   GIT_TOKEN_FILE  the mounted secret with the token (default: /var/run/secrets/git-bot/token);
#                   required for an https remote
#   GIT_BOT_NAME / GIT_BOT_EMAIL  the commit identity (default: mlops-git-bot)
#   MLFLOW_TRACKING_URI            the registry mlops promote checks
#   MLFLOW_ARTIFACTS_DESTINATION   that server's --artifacts-destination (s3://mlops-<env>-mlflow-artifacts):
#                                  maps its mlflow-artifacts:/ URIs to the S3 path vLLM copies from
# Arguments are passed to `mlops promote` (e.g. --env dev --model support-chat --version 7
# --workflow NAME); --automated is always added, so a version a rollback held back is refused.
# Arguments starting with `canary` run `mlops canary ...` instead (the canary-analysis
# CronWorkflow: `canary analyze --env dev --model support-chat`; PROMETHEUS_URL says where).
set -eu

: "${GIT_REPO_URL:?GIT_REPO_URL is not set: the GitOps repository to clone}"
GIT_BRANCH="${GIT_BRANCH:-main}"
GIT_TOKEN_FILE="${GIT_TOKEN_FILE:-/var/run/secrets/git-bot/token}"
WORKDIR="${WORKDIR:-${TMPDIR:-/tmp}/gitops}"
export GIT_TOKEN_FILE GIT_TERMINAL_PROMPT=0

git config --global user.name "${GIT_BOT_NAME:-mlops-git-bot}"
git config --global user.email "${GIT_BOT_EMAIL:-mlops-git-bot@users.noreply.github.com}"

if [ -r "$GIT_TOKEN_FILE" ]; then
    # The token stays in the mounted file: not in the remote URL, not in argv, not in git config.
    # The helper next to this script reads it when git asks for credentials.
    git config --global credential.helper "$(cd "$(dirname "$0")" && pwd)/git-credential-token"
    GITHUB_TOKEN="$(cat "$GIT_TOKEN_FILE")"
    export GITHUB_TOKEN  # prod promotes open their pull request with it
else
    case "$GIT_REPO_URL" in
        https://*) echo "git-bot: token file $GIT_TOKEN_FILE is missing: mount the git-bot-token secret" >&2; exit 2 ;;
    esac
fi

rm -rf "$WORKDIR"
git clone --quiet --single-branch --branch "$GIT_BRANCH" "$GIT_REPO_URL" "$WORKDIR"
cd "$WORKDIR"
if [ "${1:-}" = "canary" ]; then
    exec mlops --repo "$WORKDIR" "$@" --remote origin --branch "$GIT_BRANCH"
fi
exec mlops --repo "$WORKDIR" promote --remote origin --branch "$GIT_BRANCH" "$@" --automated
