#!/usr/bin/env bash
# Fetch the upstream CustomResourceDefinitions that `mlops validate` checks against, at
# the versions the platform pins (the same files CI keeps in ../shared/crds).
#
# Usage: scripts/fetch-crds.sh [DEST]        (default DEST: ../shared/crds)
# Then:  mlops validate --crds DEST          (or export MLOPS_CRDS_DIR=DEST)
# Needs network access to raw.githubusercontent.com; never runs in tests.
set -euo pipefail

dest=${1:-"$(cd "$(dirname "$0")/../.." && pwd)/shared/crds"}
raw=https://raw.githubusercontent.com

# folder | upstream repository | tag | path in the repository | files
sources=(
  "argo-cd-v3.5.1|argoproj/argo-cd|v3.5.1|manifests/crds|application-crd.yaml applicationset-crd.yaml appproject-crd.yaml"
  "argo-workflows-v4.1.2|argoproj/argo-workflows|v4.1.2|manifests/base/crds/full|argoproj.io_clusterworkflowtemplates.yaml argoproj.io_cronworkflows.yaml argoproj.io_workfloweventbindings.yaml argoproj.io_workflows.yaml argoproj.io_workflowtemplates.yaml"
  "external-secrets-v2.9.0|external-secrets/external-secrets|v2.9.0|config/crds/bases|external-secrets.io_clustersecretstores.yaml external-secrets.io_externalsecrets.yaml external-secrets.io_secretstores.yaml"
  "karpenter-v1.14.1|aws/karpenter-provider-aws|v1.14.1|pkg/apis/crds|karpenter.k8s.aws_ec2nodeclasses.yaml karpenter.sh_nodeclaims.yaml karpenter.sh_nodepools.yaml"
  "keda-v2.20.2|kedacore/keda|v2.20.2|config/crd/bases|keda.sh_scaledobjects.yaml keda.sh_triggerauthentications.yaml"
  "prometheus-operator-v0.93.0|prometheus-operator/prometheus-operator|v0.93.0|example/prometheus-operator-crd|monitoring.coreos.com_podmonitors.yaml monitoring.coreos.com_probes.yaml monitoring.coreos.com_prometheusrules.yaml monitoring.coreos.com_servicemonitors.yaml"
  "training-operator-v1.9.0|kubeflow/training-operator|v1.9.0|manifests/base/crds|kubeflow.org_pytorchjobs.yaml"
)

for source in "${sources[@]}"; do
  IFS='|' read -r folder repo tag path files <<<"$source"
  mkdir -p "$dest/$folder"
  for file in $files; do
    curl -fsSL --retry 3 -o "$dest/$folder/$file" "$raw/$repo/$tag/$path/$file"
  done
  echo "fetched $folder"
done
