//go:build tools

// Package tools pins the kubectl command that build.sh compiles: the same Kubernetes release as the
// local control plane (tools/cluster/kubernetes), so that the harnesses and the demo need no kubectl of
// the machine's.
package tools

import _ "k8s.io/kubernetes/cmd/kubectl"
