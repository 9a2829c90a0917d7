#!/usr/bin/env bash
# Supplies the two inputs of infra/terraform/envs/$LUDEX_ENV that belong to
# release.yml rather than to Terraform: the ingest ZIP and the API image.
# Terraform ignores later changes to both once the functions exist (release.yml
# ships code through CodeDeploy), so a plan or apply in CI passes the image the
# API function runs now and, when no ZIP was built in this job, a placeholder.
#
# Run from the repository root after `terraform init`, with AWS credentials.
#   LUDEX_ENV      dev | prod
#   API_IMAGE_URI  optional: the image to use when the function does not exist yet
set -euo pipefail

: "${LUDEX_ENV:?}"
stack="infra/terraform/envs/${LUDEX_ENV}"
package="target/lambda/ludex-ingest-lambda/bootstrap.zip"

if [[ ! -f $package ]]; then
  mkdir -p "$(dirname "$package")"
  python3 - "$package" <<'PY'
import sys
import zipfile

with zipfile.ZipFile(sys.argv[1], "w") as archive:
    entry = zipfile.ZipInfo("bootstrap")
    entry.external_attr = 0o755 << 16
    archive.writestr(entry, "#!/bin/sh\necho 'placeholder: release.yml ships the ingest function' >&2\nexit 1\n")
PY
  echo "wrote a placeholder ${package}" >&2
fi

image=${API_IMAGE_URI:-}
if function=$(terraform -chdir="$stack" output -raw api_function_name 2>/dev/null) && [[ -n $function ]]; then
  image=$(aws lambda get-function --function-name "$function" --query Code.ImageUri --output text)
fi
if [[ -z $image ]]; then
  echo "no API function yet and API_IMAGE_URI is empty: see docs/ci-cd.md, one-time bootstrap" >&2
  exit 1
fi
echo "api_image_uri=${image}" >&2
if [[ -n ${GITHUB_ENV:-} ]]; then
  printf 'TF_VAR_api_image_uri=%s\n' "$image" >>"$GITHUB_ENV"
fi
