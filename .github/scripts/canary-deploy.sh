#!/usr/bin/env bash
# Ships one build to one environment: pushes the API image to ECR, publishes
# a new version of each Lambda function, hands the shift of each `live` alias
# to CodeDeploy (its BeforeAllowTraffic hook smoke-tests the new version before
# any traffic shifts; then a canary whose alarms, scoped to the new version,
# roll it back), waits for both deployments and smoke-tests the HTTP API. When
# one function's deployment fails, the other function of the release is
# rolled back too, so the two never run different releases.
#
# Run from the repository root after `terraform init` in
# infra/terraform/envs/$LUDEX_ENV, with AWS credentials in the environment.
#
#   LUDEX_ENV          dev | staging | prod
#   RELEASE_SHA        the commit being shipped; also the (immutable) image tag
#   API_IMAGE_ARCHIVE  `docker save` archive holding ludex-api:$RELEASE_SHA
#   INGEST_ZIP         the cargo-lambda ZIP of the ingest function
#   DEPLOYMENT_CONFIG  optional CodeDeploy deployment config; by default each
#                      deployment group's own (Terraform: canary 10 %, 5 minutes)
set -euo pipefail

: "${LUDEX_ENV:?}" "${RELEASE_SHA:?}" "${API_IMAGE_ARCHIVE:?}" "${INGEST_ZIP:?}"
DEPLOYMENT_CONFIG=${DEPLOYMENT_CONFIG:-}

tf_output() {
  terraform -chdir="infra/terraform/envs/${LUDEX_ENV}" output -raw "$1"
}

log() {
  printf '%s\n' "$*" >&2
}

api_function=$(tf_output api_function_name)
api_alias=$(tf_output api_function_alias_name)
ingest_function=$(tf_output ingest_function_name)
ingest_alias=$(tf_output ingest_function_alias_name)
ecr_url=$(tf_output ecr_repository_url)
api_url=$(tf_output http_api_url)
api_url=${api_url%/}
codedeploy_app=$(tf_output codedeploy_app_name)
api_group=$(tf_output codedeploy_api_deployment_group_name)
ingest_group=$(tf_output codedeploy_ingest_deployment_group_name)
hook_function=$(tf_output codedeploy_hook_function_name)

# Push the image once per environment. Tags are immutable, so a re-run finds
# the tag already there and reuses it rather than failing on the push.
push_api_image() {
  local registry=${ecr_url%%/*} repository=${ecr_url#*/}
  if ! aws ecr describe-images --repository-name "$repository" \
    --image-ids "imageTag=${RELEASE_SHA}" >/dev/null 2>&1; then
    aws ecr get-login-password | docker login --username AWS --password-stdin "$registry" >&2
    docker load --input "$API_IMAGE_ARCHIVE" >&2
    docker tag "ludex-api:${RELEASE_SHA}" "${ecr_url}:${RELEASE_SHA}"
    docker push "${ecr_url}:${RELEASE_SHA}" >&2
    docker logout "$registry" >&2
  else
    log "${ecr_url}:${RELEASE_SHA} is already in ECR; reusing it"
  fi
  local digest
  digest=$(aws ecr describe-images --repository-name "$repository" \
    --image-ids "imageTag=${RELEASE_SHA}" \
    --query 'imageDetails[0].imageDigest' --output text)
  printf '%s@%s\n' "$ecr_url" "$digest"
}

# Prints the version the alias serves now.
alias_version() {
  aws lambda get-alias --function-name "$1" --name "$2" \
    --query FunctionVersion --output text
}

# Updates the code, publishes it as a new version and prints that version.
# Unchanged code publishes nothing new, and the printed version is then the
# one the alias already serves.
publish_version() {
  local function=$1 version
  shift
  aws lambda wait function-updated-v2 --function-name "$function"
  version=$(aws lambda update-function-code --function-name "$function" \
    --publish "$@" --query Version --output text)
  if [[ $version == "\$LATEST" ]]; then
    aws lambda wait function-updated-v2 --function-name "$function"
    version=$(aws lambda publish-version --function-name "$function" \
      --description "$RELEASE_SHA" --query Version --output text)
  fi
  aws lambda wait published-version-active --function-name "$function" --qualifier "$version"
  printf '%s\n' "$version"
}

# Starts a CodeDeploy deployment that moves the alias from the current to the
# target version and prints its id. The AppSpec is JSON (the hook parses it).
start_deployment() {
  local group=$1 function=$2 alias=$3 current=$4 target=$5 appspec revision
  appspec=$(jq -cn --arg function "$function" --arg alias "$alias" \
    --arg current "$current" --arg target "$target" --arg hook "$hook_function" '{
      version: 0.0,
      Resources: [{($function): {
        Type: "AWS::Lambda::Function",
        Properties: {Name: $function, Alias: $alias, CurrentVersion: $current, TargetVersion: $target}
      }}],
      Hooks: [{BeforeAllowTraffic: $hook}]
    }')
  revision=$(jq -cn --arg content "$appspec" \
    '{revisionType: "AppSpecContent", appSpecContent: {content: $content}}')
  local config=()
  if [[ -n $DEPLOYMENT_CONFIG ]]; then
    config=(--deployment-config-name "$DEPLOYMENT_CONFIG")
  fi
  aws deploy create-deployment \
    --application-name "$codedeploy_app" \
    --deployment-group-name "$group" \
    "${config[@]}" \
    --description "ludex ${RELEASE_SHA} to ${LUDEX_ENV}" \
    --revision "$revision" \
    --query deploymentId --output text
}

# Puts every shifted alias back on its previous version, stopping a deployment
# still in progress first (CodeDeploy then rolls it back itself as well).
roll_back_all() {
  local id entry function alias previous
  for id in "${deployments[@]}"; do
    aws deploy stop-deployment --deployment-id "$id" --auto-rollback-enabled >/dev/null 2>&1 || true
  done
  for entry in "${shifted[@]}"; do
    read -r function alias previous <<<"$entry"
    aws lambda update-alias --function-name "$function" --name "$alias" \
      --function-version "$previous" \
      --routing-config '{"AdditionalVersionWeights": {}}' >/dev/null
  done
}

smoke_test() {
  local curl_opts=(-fsS --max-time 15 --retry 5 --retry-delay 3 --retry-all-errors)
  curl "${curl_opts[@]}" "${api_url}/healthz" >/dev/null &&
    curl "${curl_opts[@]}" "${api_url}/games?limit=1" >/dev/null
}

image_uri=$(push_api_image)
log "API image: ${image_uri}"

api_current=$(alias_version "$api_function" "$api_alias")
ingest_current=$(alias_version "$ingest_function" "$ingest_alias")
api_target=$(publish_version "$api_function" --image-uri "$image_uri")
ingest_target=$(publish_version "$ingest_function" --zip-file "fileb://${INGEST_ZIP}")
log "${api_function}: ${api_alias} ${api_current} -> ${api_target}"
log "${ingest_function}: ${ingest_alias} ${ingest_current} -> ${ingest_target}"

# Both canaries run side by side; each group's alarms can roll its own back.
deployments=()
shifted=()
if [[ $api_target != "$api_current" ]]; then
  deployments+=("$(start_deployment "$api_group" "$api_function" "$api_alias" "$api_current" "$api_target")")
  shifted+=("${api_function} ${api_alias} ${api_current}")
fi
if [[ $ingest_target != "$ingest_current" ]]; then
  deployments+=("$(start_deployment "$ingest_group" "$ingest_function" "$ingest_alias" "$ingest_current" "$ingest_target")")
  shifted+=("${ingest_function} ${ingest_alias} ${ingest_current}")
fi

failed=0
for id in "${deployments[@]}"; do
  log "waiting for CodeDeploy deployment ${id}"
  if ! aws deploy wait deployment-successful --deployment-id "$id"; then
    failed=1
    aws deploy get-deployment --deployment-id "$id" \
      --query 'deploymentInfo.{status: status, error: errorInformation, rollback: rollbackInfo}' \
      --output json >&2
    break
  fi
done
if ((failed)); then
  # CodeDeploy rolled the failed function back; the other one must not keep the new release.
  log "a canary failed; rolling back every function of this release"
  roll_back_all
  exit 1
fi

if ! smoke_test; then
  # CodeDeploy finished the shift, so put the aliases back by hand.
  log "smoke test against ${api_url} failed; pointing the aliases back at their previous versions"
  roll_back_all
  exit 1
fi
log "smoke test passed: ${api_url}"

if [[ -n ${GITHUB_OUTPUT:-} ]]; then
  printf 'url=%s\n' "$api_url" >>"$GITHUB_OUTPUT"
fi
