#!/usr/bin/env bash
# Stops a job whose assumed role belongs to another AWS account than the one
# the repository names (variable AWS_ACCOUNT_ID), before it changes anything.
set -euo pipefail

actual=$(aws sts get-caller-identity --query Account --output text)
if [[ -n ${EXPECTED_ACCOUNT:-} && $actual != "$EXPECTED_ACCOUNT" ]]; then
  echo "::error::the role is in account ${actual}, but AWS_ACCOUNT_ID is ${EXPECTED_ACCOUNT}"
  exit 1
fi
echo "AWS account ${actual}"
