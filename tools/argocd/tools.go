//go:build tools

// Package tools pins the Argo CD command that build.sh compiles: one multi-call binary whose symlinks
// argocd-application-controller and argocd-repo-server run the real Argo CD against the project's control
// plane in the GitOps tests (tests/fixtures/argocd.py).
package tools

import _ "github.com/argoproj/argo-cd/v3/cmd"
