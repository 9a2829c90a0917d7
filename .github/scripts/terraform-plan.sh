#!/usr/bin/env bash
# Plans one environment into a saved plan file, shows the plan in the job
# summary (where a reviewer reads it before approving the apply), and reports
# whether it changes anything (step output `changes`).
#
# Run from the repository root after `terraform init` in
# infra/terraform/envs/$1, with the read-only plan role's credentials.
# -lock=false: the plan role cannot write the lock file; the apply locks, and
# Terraform refuses a saved plan whose state has changed since.
#
#   terraform-plan.sh ENV   writes infra/terraform/envs/ENV/ENV.tfplan
set -euo pipefail

env=${1:?usage: terraform-plan.sh ENV}
stack="infra/terraform/envs/${env}"
plan_file="${env}.tfplan"
# Keeps the summary under GitHub's 1 MiB limit per step.
summary_limit=900000

status=0
terraform -chdir="$stack" plan -input=false -lock=false -no-color \
  -detailed-exitcode -out="$plan_file" || status=$?
case $status in
  0) changes=false ;;
  2) changes=true ;;
  *) exit "$status" ;;
esac

shown=$(terraform -chdir="$stack" show -no-color "$plan_file")
if ((${#shown} > summary_limit)); then
  shown="…(truncated; the full plan is in this step's log)
${shown: -summary_limit}"
fi

if [[ -n ${GITHUB_STEP_SUMMARY:-} ]]; then
  fence='```'
  {
    printf '### Terraform plan: envs/%s\n\n' "$env"
    printf 'Commit %s; changes: **%s**. The apply runs exactly this saved plan.\n\n' \
      "${RELEASE_SHA:-${GITHUB_SHA:-unknown}}" "$changes"
    printf '<details><summary>plan</summary>\n\n%s\n%s\n%s\n</details>\n' "$fence" "$shown" "$fence"
  } >>"$GITHUB_STEP_SUMMARY"
fi
if [[ -n ${GITHUB_OUTPUT:-} ]]; then
  printf 'changes=%s\n' "$changes" >>"$GITHUB_OUTPUT"
fi
echo "plan of ${env}: changes=${changes}" >&2
